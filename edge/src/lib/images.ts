// Input image inspection without decoding: format sniffing and dimensions from PNG/JPEG/WebP headers,
// plus data-URL parsing. Used to validate uploads (type, size, mask shape) and to quote billing units.
import { fromBase64 } from "./encoding";

export type ImageType = "png" | "jpeg" | "webp";

export interface ImageInfo {
  type: ImageType;
  width: number;
  height: number;
}

export function sniffType(b: Uint8Array): ImageType | undefined {
  if (b.length >= 8 && b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) return "png";
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return "jpeg";
  if (b.length >= 12 && b[0] === 0x52 && b[1] === 0x49 && b[2] === 0x46 && b[3] === 0x46 && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return "webp";
  return undefined;
}

const u16be = (b: Uint8Array, o: number) => (b[o] << 8) | b[o + 1];
const u16le = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
const u24le = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8) | (b[o + 2] << 16);
const u32be = (b: Uint8Array, o: number) => ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0;

/** Format and size of an encoded image, or undefined when the bytes are not a PNG, JPEG or WebP. */
export function imageInfo(b: Uint8Array): ImageInfo | undefined {
  const type = sniffType(b);
  if (type === "png") {
    if (b.length < 24) return undefined;
    return { type, width: u32be(b, 16), height: u32be(b, 20) };
  }
  if (type === "jpeg") {
    let o = 2;
    while (o + 9 < b.length) {
      if (b[o] !== 0xff) {
        o++;
        continue;
      }
      const marker = b[o + 1];
      if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
        o += 2;
        continue;
      }
      const len = u16be(b, o + 2);
      const sof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (sof) return { type, height: u16be(b, o + 5), width: u16be(b, o + 7) };
      o += 2 + len;
    }
    return undefined;
  }
  if (type === "webp") {
    const chunk = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (chunk === "VP8 " && b.length >= 30) return { type, width: u16le(b, 26) & 0x3fff, height: u16le(b, 28) & 0x3fff };
    if (chunk === "VP8L" && b.length >= 25) {
      const bits = (b[21] | (b[22] << 8) | (b[23] << 16) | (b[24] << 24)) >>> 0;
      return { type, width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
    }
    if (chunk === "VP8X" && b.length >= 30) return { type, width: u24le(b, 24) + 1, height: u24le(b, 27) + 1 };
    return undefined;
  }
  return undefined;
}

/** Decodes `data:image/...;base64,...`; returns undefined for anything else. */
export function parseDataUrl(url: string): Uint8Array | undefined {
  const m = /^data:([a-z]+\/[a-z0-9.+-]+)?(;[a-z0-9-]+=[^;,]+)*;base64,(.*)$/is.exec(url);
  if (!m) return undefined;
  try {
    return fromBase64(m[3]);
  } catch {
    return undefined;
  }
}
