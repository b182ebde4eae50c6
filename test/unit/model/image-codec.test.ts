import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import {
  chwToHwc,
  decodeImage,
  encodeImage,
  encodePreview,
  hwcToChw,
  prepareImageToImageInput,
  prepareUnderstandingInput,
  probeImage,
  resizeToMultipleOf16,
  type RgbImage,
} from "../../../gpu-backend/src/model/image-codec";

const LIMIT = { field: "image", maxPixels: 4_000_000 };

function gradient(w: number, h: number): RgbImage {
  const data = new Uint8Array(3 * w * h);
  for (let i = 0; i < w * h; i++) {
    data[i] = (i * 3) % 256;
    data[w * h + i] = (i * 7) % 256;
    data[2 * w * h + i] = (i * 11) % 256;
  }
  return { width: w, height: h, data };
}

async function expectInvalid(p: Promise<unknown>, field: string, re: RegExp): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InvalidArgument);
  expect((err as InvalidArgument).field).toBe(field);
  expect((err as InvalidArgument).message).toMatch(re);
}

describe("decodeImage", () => {
  it("PNG round trip is lossless, planar RGB", async () => {
    const img = gradient(17, 9);
    const png = await encodeImage(img);
    expect(Array.from(png.slice(1, 4))).toEqual([0x50, 0x4e, 0x47]); // "PNG"
    const back = await decodeImage(png, LIMIT);
    expect(back.width).toBe(17);
    expect(back.height).toBe(9);
    expect(back.data).toEqual(img.data);
  });

  it("JPEG and WebP decode to the right size, close to the source", async () => {
    const img = gradient(32, 16);
    for (const format of ["jpeg", "webp"] as const) {
      const bytes = await encodeImage(img, { format, quality: 100 });
      expect((await probeImage(bytes, LIMIT)).format).toBe(format);
      const back = await decodeImage(bytes, LIMIT);
      expect([back.width, back.height]).toEqual([32, 16]);
    }
  });

  it("drops alpha without compositing and expands greyscale", async () => {
    const rgba = await sharp({ create: { width: 3, height: 2, channels: 4, background: { r: 10, g: 20, b: 30, alpha: 0 } } }).png().toBuffer();
    const a = await decodeImage(new Uint8Array(rgba), LIMIT);
    expect([a.data[0], a.data[6], a.data[12]]).toEqual([10, 20, 30]);
    const grey = await sharp(Buffer.from([0, 100, 200, 255]), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace("b-w").png().toBuffer();
    expect((await sharp(grey).metadata()).channels).toBe(1);
    const g = await decodeImage(new Uint8Array(grey), LIMIT);
    expect(Array.from(g.data)).toEqual([0, 100, 200, 255, 0, 100, 200, 255, 0, 100, 200, 255]);
  });

  it("rejects bytes that are not an image, naming the field", async () => {
    await expectInvalid(decodeImage(new TextEncoder().encode("definitely not an image"), { field: "init_image", maxPixels: 1e6 }), "init_image", /not a decodable image/);
    await expectInvalid(decodeImage(new Uint8Array(0), LIMIT), "image", /empty/);
  });

  it("rejects a truncated file whose header is fine", async () => {
    const png = await encodeImage(gradient(64, 64));
    await expectInvalid(decodeImage(png.slice(0, Math.floor(png.length / 2)), LIMIT), "image", /could not be decoded/);
  });

  it("rejects unsupported formats (GIF, TIFF)", async () => {
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: "red" } }).gif().toBuffer();
    await expectInvalid(decodeImage(new Uint8Array(gif), LIMIT), "image", /unsupported image format "gif"/);
    const tiff = await sharp({ create: { width: 4, height: 4, channels: 3, background: "red" } }).tiff().toBuffer();
    await expectInvalid(decodeImage(new Uint8Array(tiff), { field: "mask", maxPixels: 1e6 }), "mask", /unsupported image format "tiff"/);
  });

  it("rejects images over the pixel limit from the header", async () => {
    const png = await encodeImage(gradient(40, 30));
    await expectInvalid(decodeImage(png, { field: "image", maxPixels: 40 * 30 - 1 }), "image", /40x30 = 1200 pixels exceeds the limit of 1199/);
    expect((await decodeImage(png, { field: "image", maxPixels: 1200 })).width).toBe(40);
  });
});

describe("input preparation", () => {
  it("image-to-image and understanding crops land on the reference sizes", () => {
    const img = gradient(192, 108); // 16:9
    const a = prepareImageToImageInput(img);
    expect([a.width, a.height]).toEqual([672, 384]);
    const b = prepareUnderstandingInput(img);
    expect([b.width, b.height]).toEqual([1344, 768]);
    expect(b.data.length).toBe(3 * 1344 * 768);
  });

  it("painting floors to multiples of 16 and rejects tiny images", () => {
    const r = resizeToMultipleOf16(gradient(50, 33));
    expect([r.width, r.height]).toEqual([48, 32]);
    expect(() => resizeToMultipleOf16(gradient(15, 40), "image")).toThrow(InvalidArgument);
    const same = gradient(32, 16);
    expect(resizeToMultipleOf16(same).data).toEqual(same.data);
  });
});

describe("encodeImage / encodePreview", () => {
  it("encodes each format and validates quality", async () => {
    const img = gradient(24, 24);
    const jpeg = await encodeImage(img, { format: "jpeg", quality: 50 });
    expect(Array.from(jpeg.slice(0, 2))).toEqual([0xff, 0xd8]);
    const webp = await encodeImage(img, { format: "webp", quality: 50 });
    expect(new TextDecoder().decode(webp.slice(8, 12))).toBe("WEBP");
    await expect(encodeImage(img, { format: "jpeg", quality: 0 })).rejects.toThrow(InvalidArgument);
    await expect(encodeImage(img, { format: "jpeg", quality: 101 })).rejects.toThrow(/quality/);
    const small = await encodeImage(img, { format: "jpeg", quality: 10 });
    const big = await encodeImage(img, { format: "jpeg", quality: 100 });
    expect(small.length).toBeLessThan(big.length);
  });

  it("preview shrinks to the longest side, never enlarges", async () => {
    const p = await encodePreview(gradient(400, 100), { maxSide: 64 });
    const m = await sharp(p).metadata();
    expect([m.width, m.height, m.format]).toEqual([64, 16, "webp"]);
    const q = await encodePreview(gradient(20, 10), { maxSide: 64, format: "png" });
    const n = await sharp(q).metadata();
    expect([n.width, n.height, n.format]).toEqual([20, 10, "png"]);
  });

  it("HWC <-> CHW are inverses", () => {
    const chw = gradient(5, 3).data;
    expect(hwcToChw(chwToHwc(chw, 5, 3, 3), 5, 3, 3)).toEqual(chw);
    expect(chwToHwc(chw, 5, 3, 3)[1]).toBe(chw[15]);
  });
});
