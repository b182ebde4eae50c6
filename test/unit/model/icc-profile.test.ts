// An upload with a non-sRGB ICC profile is fed as its stored values, as PIL reads them (docs/model.md §2.2):
// the same stored pixels with and without a Display P3 profile give the same decoded image, the same
// image-to-image input and hence the same VQ codes. The profiled file is built by hand (an iCCP chunk spliced
// into a plain PNG), so the stored values are known without trusting any decoder.
import { deflateSync } from "node:zlib";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, encodeImage, prepareImageToImageInput, type RgbImage } from "../../../gpu-backend/src/model/image-codec";

const LIMIT = { field: "images[0]", maxPixels: 4_000_000 };

function crc32(bytes: Uint8Array): number {
  let c = ~0;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(Buffer.from(type, "latin1"), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** The PNG with an iCCP chunk inserted right after IHDR (8-byte signature + 25-byte IHDR chunk). */
function withIccChunk(png: Uint8Array, icc: Uint8Array): Uint8Array {
  const body = Buffer.concat([Buffer.from("P3\0\0", "latin1"), deflateSync(icc)]);
  return Buffer.concat([png.subarray(0, 33), chunk("iCCP", body), png.subarray(33)]);
}

/** Saturated colours, where a P3 -> sRGB conversion moves values most. */
function swatches(w: number, h: number): RgbImage {
  const data = new Uint8Array(3 * w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      data[i] = (x * 255) / (w - 1);
      data[w * h + i] = y % 2 ? 255 - (y * 255) / (h - 1) : 30;
      data[2 * w * h + i] = ((x + y) * 97) % 256;
    }
  }
  return { width: w, height: h, data };
}

describe("ICC profiles are ignored, as PIL does", () => {
  it("a Display P3 PNG decodes to its stored values, equal to the same values without a profile", async () => {
    const stored = swatches(96, 64);
    const plain = await encodeImage(stored);
    // A real Display P3 profile: sharp attaches its built-in one.
    const p3 = (await sharp(Buffer.from(plain)).withIccProfile("p3").png().toBuffer({ resolveWithObject: true })).data;
    const icc = (await sharp(p3).metadata()).icc;
    expect(icc && icc.length).toBeGreaterThan(100);
    const tagged = withIccChunk(plain, new Uint8Array(icc!));
    const meta = await sharp(Buffer.from(tagged)).metadata();
    expect(meta.hasProfile).toBe(true);

    // Colour management would change these values: the profile is not a no-op on this image.
    const managed = await sharp(Buffer.from(tagged)).toColourspace("srgb").raw().toBuffer();
    const { data: plainRaw } = await sharp(Buffer.from(plain)).raw().toBuffer({ resolveWithObject: true });
    expect(Buffer.compare(managed, plainRaw)).not.toBe(0);

    const fromTagged = await decodeImage(tagged, LIMIT);
    const fromPlain = await decodeImage(plain, LIMIT);
    expect(fromTagged.data).toEqual(stored.data);
    expect(fromPlain.data).toEqual(stored.data);
    // What the VQ encoder gets (the 512-list crop) is therefore identical too, so are its codes.
    expect(prepareImageToImageInput(fromTagged).data).toEqual(prepareImageToImageInput(fromPlain).data);
  });

  it("a JPEG with a P3 profile gives the pixels of the same JPEG without it", async () => {
    const stored = swatches(64, 48);
    const raw = { raw: { width: 64, height: 48, channels: 3 as const } };
    const hwc = Buffer.alloc(64 * 48 * 3);
    for (let i = 0; i < 64 * 48; i++) for (let c = 0; c < 3; c++) hwc[i * 3 + c] = stored.data[c * 64 * 48 + i];
    const plain = await sharp(hwc, raw).jpeg({ quality: 95 }).toBuffer();
    // sharp's withIccProfile converts the values it tags, so the profile is spliced in as an APP2 segment.
    const p3 = await sharp(hwc, raw).withIccProfile("p3").jpeg({ quality: 95 }).toBuffer();
    const icc = (await sharp(p3).metadata()).icc!;
    const app2 = Buffer.concat([Buffer.from("ICC_PROFILE\0", "latin1"), Buffer.from([1, 1]), icc]);
    const seg = Buffer.alloc(4);
    seg[0] = 0xff;
    seg[1] = 0xe2;
    seg.writeUInt16BE(app2.length + 2, 2);
    const tagged = Buffer.concat([plain.subarray(0, 2), seg, app2, plain.subarray(2)]);
    expect((await sharp(tagged).metadata()).hasProfile).toBe(true);
    const a = await decodeImage(tagged, LIMIT);
    const b = await decodeImage(plain, LIMIT);
    expect(a.data).toEqual(b.data);
  });
});
