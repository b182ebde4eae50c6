import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { i2iCropSizes, mmuCropSizes } from "../../../gpu-backend/src/model/crops";
import { chwToHwc, resizeToMultipleOf16, varCenterCrop, type RgbImage } from "../../../gpu-backend/src/model/image-codec";
import { crop, resize, type ResampleFilter } from "../../../gpu-backend/src/model/resample";

const HERE = dirname(fileURLToPath(import.meta.url));
// Recorded with Pillow (see "source" in the file): byte-exact parity is the point of resample.ts.
const goldens = JSON.parse(readFileSync(join(HERE, "fixtures/pil-resample-goldens.json"), "utf8"));

/** The synthetic test image of the goldens, planar RGB. */
function synth(w: number, h: number): RgbImage {
  const data = new Uint8Array(3 * w * h);
  for (let c = 0; c < 3; c++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) data[c * w * h + y * w + x] = (x * 7 + y * 13 + c * 50 + ((x * y) % 31) * 3) % 256;
  return { width: w, height: h, data };
}

function sha(img: RgbImage): string {
  return createHash("sha256").update(chwToHwc(img.data, img.width, img.height, 3)).digest("hex");
}

describe("Pillow-exact resampling", () => {
  for (const g of goldens.resize) {
    it(`${g.w}x${g.h} -> ${g.ow}x${g.oh} ${g.filter}`, () => {
      const src = synth(g.w, g.h);
      const out = resize({ ...src, channels: 3 }, g.ow, g.oh, g.filter as ResampleFilter);
      expect(sha(out)).toBe(g.sha256);
    });
  }

  for (const g of goldens.crop) {
    it(`var_center_crop ${g.w}x${g.h} with the ${g.list} list -> ${g.ow}x${g.oh}`, () => {
      const out = varCenterCrop(synth(g.w, g.h), g.list === "i2i" ? i2iCropSizes() : mmuCropSizes());
      expect([out.width, out.height]).toEqual([g.ow, g.oh]);
      expect(sha(out)).toBe(g.sha256);
    });
  }

  it("LANCZOS floor to a multiple of 16 (painting)", () => {
    const g = goldens.floor16;
    const out = resizeToMultipleOf16(synth(g.w, g.h));
    expect([out.width, out.height]).toEqual([g.ow, g.oh]);
    expect(sha(out)).toBe(g.sha256);
  });

  it("same size is an exact copy; crop picks the right window", () => {
    const src = { ...synth(20, 10), channels: 3 };
    const same = resize(src, 20, 10, "bicubic");
    expect(same.data).toEqual(src.data);
    expect(same.data).not.toBe(src.data);
    const c = crop(src, 3, 2, 4, 5);
    expect(c.data[0]).toBe(src.data[2 * 20 + 3]);
    expect(c.data[4 * 5 + 0]).toBe(src.data[200 + 2 * 20 + 3]);
    expect(() => crop(src, 18, 0, 4, 5)).toThrow();
  });
});
