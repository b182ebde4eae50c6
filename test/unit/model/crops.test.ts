import { describe, expect, it } from "vitest";
import { chooseCropSize, floorTo16, generateCropSizeList, i2iCropSizes, mmuCropSizes, planCenterCrop, pyRound } from "../../../gpu-backend/src/model/crops";

describe("crop size lists (docs/model.md §2.5, §10)", () => {
  it("512 list: 49 sizes from (1024,256) to (256,1024), all within the patch budget", () => {
    const l = generateCropSizeList(256, 32);
    expect(l.length).toBe(49);
    expect(l[0]).toEqual([1024, 256]);
    expect(l[48]).toEqual([256, 1024]);
    expect(l).toContainEqual([512, 512]);
    for (const [w, h] of l) {
      expect((w / 32) * (h / 32)).toBeLessThanOrEqual(256);
      expect(Math.max(w, h) / Math.min(w, h)).toBeLessThanOrEqual(4);
    }
    expect(i2iCropSizes()).toEqual(l);
  });

  it("1024 list: 97 sizes from (2048,512) to (512,2048)", () => {
    const l = mmuCropSizes();
    expect(l.length).toBe(97);
    expect(l[0]).toEqual([2048, 512]);
    expect(l[96]).toEqual([512, 2048]);
    expect(l).toContainEqual([1024, 1024]);
  });

  it("size choice", () => {
    expect(chooseCropSize(1920, 1080, i2iCropSizes())).toEqual([672, 384]);
    expect(chooseCropSize(1920, 1080, mmuCropSizes())).toEqual([1344, 768]);
    expect(chooseCropSize(640, 480, i2iCropSizes())).toEqual([576, 448]);
    expect(chooseCropSize(640, 480, mmuCropSizes())).toEqual([1152, 864]);
    for (const s of [7, 300, 512, 4000]) {
      expect(chooseCropSize(s, s, i2iCropSizes())).toEqual([512, 512]);
      expect(chooseCropSize(s, s, mmuCropSizes())).toEqual([1024, 1024]);
    }
  });

  it("ties go to the larger (w, h), as Python's reverse tuple sort", () => {
    // Both sizes keep ratio 1 of a 1:1 image: the larger one wins.
    expect(chooseCropSize(10, 10, [[32, 32], [64, 64]])).toEqual([64, 64]);
    expect(chooseCropSize(10, 10, [[64, 64], [32, 32]])).toEqual([64, 64]);
  });
});

describe("center crop plan", () => {
  it("halves while both sides are >= 2x, rounds half to even, crops centred", () => {
    const p = planCenterCrop(1920, 1080, [672, 384]);
    expect(p.halvings).toEqual([[960, 540]]);
    expect(p.resized).toEqual([683, 384]);
    expect([p.left, p.top]).toEqual([5, 0]);
    const q = planCenterCrop(5000, 5001, [512, 512]);
    expect(q.halvings).toEqual([[2500, 2500], [1250, 1250], [625, 625]]);
    expect(q.resized).toEqual([512, 512]);
    const up = planCenterCrop(100, 50, [512, 256]);
    expect(up.halvings).toEqual([]);
    expect(up.resized).toEqual([512, 256]);
  });

  it("pyRound is half-to-even", () => {
    expect([0.5, 1.5, 2.5, 2.4, 2.6, 3.5].map(pyRound)).toEqual([0, 2, 2, 2, 3, 4]);
  });

  it("floorTo16", () => {
    expect(floorTo16(1023, 770)).toEqual([1008, 768]);
  });
});
