// Edits are reserved and charged at the size the orchestrator produces (issue 12 item 4): the edge's mirror
// of the crop table (edge/src/lib/output-size.ts) is pinned to the orchestrator's own
// (gpu-backend/src/model/crops.ts), and every kind of edit commits exactly what it reserved, with an image
// of the size both predicted (the stand-in sizes its outputs with the orchestrator's module).
import { describe, expect, it } from "vitest";
import { chooseCropSize, floorTo16 as orchestratorFloorTo16, i2iCropSizes } from "../../gpu-backend/src/model/crops";
import { cropSizeFor, editWork, floorTo16, I2I_CROP_SIZES } from "../../edge/src/lib/output-size";
import { accountStub, bearer, call, createKey, dataUrl, json, png } from "./support/helpers";

describe("the edge's output-size table", () => {
  it("is the orchestrator's crop list, size for size", () => {
    expect(I2I_CROP_SIZES.map((s) => [...s])).toEqual(i2iCropSizes().map((s) => [...s]));
    expect(I2I_CROP_SIZES.length).toBeGreaterThan(20);
  });

  it("chooses the orchestrator's crop size and painting size for every input shape", () => {
    // every side 16..8192 in steps that hit squares, extreme ratios and odd sizes
    const sides = [16, 17, 31, 32, 48, 63, 64, 100, 127, 255, 256, 300, 480, 511, 512, 513, 640, 720, 1000, 1024, 1080, 1920, 2048, 3000, 4096, 8192];
    let checked = 0;
    for (const w of sides) {
      for (const h of sides) {
        expect([...cropSizeFor(w, h)], `${w}x${h}`).toEqual([...chooseCropSize(w, h, i2iCropSizes())]);
        expect([...floorTo16(w, h)], `${w}x${h}`).toEqual([...orchestratorFloorTo16(w, h)]);
        checked++;
      }
    }
    expect(checked).toBe(sides.length ** 2);
    expect([...cropSizeFor(1920, 1080)]).toEqual([672, 384]);
    expect([...cropSizeFor(32, 32)]).toEqual([512, 512]);
  });

  it("says what each task works on: image-to-image at the last input's crop, painting at the image floored to 16", () => {
    expect(editWork("edit", [{ width: 1920, height: 1080 }])).toEqual({ width: 672, height: 384, inputPixels: 672 * 384 });
    expect(editWork("style", [{ width: 100, height: 300 }, { width: 300, height: 100 }])).toEqual({ width: 864, height: 288, inputPixels: 2 * 864 * 288 });
    expect(editWork("inpaint", [{ width: 1000, height: 700 }])).toEqual({ width: 992, height: 688, inputPixels: 0 });
    expect(editWork("outpaint", [{ width: 64, height: 64 }])).toEqual({ width: 64, height: 64, inputPixels: 0 });
  });
});

interface EditAnswer {
  size: string;
  data: { b64_json: string }[];
  usage: { billing_units: number };
}

describe("edits reserve and charge at the output size", () => {
  it("commits what it reserved, for image-to-image, style and painting, with an image of the predicted size", async () => {
    const k = await createKey();
    const cases: { body: Record<string, unknown>; size: string; milli: number }[] = [
      // 64x48 -> crop 576x448 (258 048 px): output + the input as the model reads it, x 2 steps
      { body: { prompt: "make it red", task: "edit", image: dataUrl(await png(64, 48)) }, size: "576x448", milli: Math.ceil((2 * 576 * 448 * 2) / 1000) },
      // style: the output takes the last image's crop (288x864 -> 864x288 for a 300x100 reference)
      { body: { prompt: "in this style", task: "style", image: [dataUrl(await png(100, 300)), dataUrl(await png(300, 100))] }, size: "864x288", milli: Math.ceil((3 * 864 * 288 * 2) / 1000) },
      // inpaint: the image floored to multiples of 16, the canvas itself is the output
      {
        body: { prompt: "fill", task: "inpaint", image: dataUrl(await png(70, 40)), mask: dataUrl(await png(70, 40, (x) => (x < 30 ? 0 : 255))) },
        size: "64x32",
        milli: Math.ceil((64 * 32 * 2) / 1000),
      },
    ];
    for (const c of cases) {
      const res = await call("/v1/images/edits", json({ ...c.body, steps: 2 }, bearer(k.key)));
      expect(res.status, c.size).toBe(200);
      const body = (await res.json()) as EditAnswer;
      expect(body.size).toBe(c.size);
      const jobId = res.headers.get("x-dimoo-job-id")!;
      const [row] = await accountStub(k.account_id).ledger(jobId);
      expect(row, c.size).toMatchObject({ status: "committed", reserved_milli: c.milli, committed_milli: c.milli });
      expect(body.usage.billing_units).toBe(c.milli / 1000);
    }
  });
});

