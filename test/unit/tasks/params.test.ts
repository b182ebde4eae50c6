import { describe, expect, it } from "vitest";
import { create } from "@bufbuild/protobuf";
import { GenerateRequestSchema, ImageFormat, Task, UnderstandRequestSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { validateGenerateParams } from "../../../gpu-backend/src/tasks/params";
import { validateUnderstandParams } from "../../../gpu-backend/src/tasks/understand";
import { deadlineAt } from "../../../gpu-backend/src/service/deadline";
import { DEFAULT_LIMITS } from "../../../gpu-backend/src/tasks/limits";
import { OrchestratorError } from "../../../gpu-backend/src/errors";

const img = new Uint8Array([1, 2, 3]);
const gen = (init: Parameters<typeof create<typeof GenerateRequestSchema>>[1]) => validateGenerateParams(create(GenerateRequestSchema, init), DEFAULT_LIMITS);
const field = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(OrchestratorError);
    return (e as OrchestratorError).field;
  }
  throw new Error("no error");
};

describe("validateGenerateParams", () => {
  it("fills the reference defaults", () => {
    const t2i = gen({ task: Task.TEXT_TO_IMAGE, prompt: "a cat" });
    expect([t2i.width, t2i.height, t2i.steps, t2i.guidanceScale, t2i.temperature, t2i.format]).toEqual([1024, 1024, 64, 4, 1, "png"]);
    expect(typeof t2i.seed).toBe("bigint");
    const edit = gen({ task: Task.EDIT, editType: "add", prompt: "a hat", images: [img] });
    expect([edit.editType, edit.guidanceScale, edit.imageGuidanceScale, edit.imageCount]).toEqual(["edit_add", 2.5, 4, 1]);
    const paint = gen({ task: Task.INPAINT, prompt: "x", images: [img], mask: img, guidanceScale: 0 });
    expect([paint.guidanceScale, paint.needsMask]).toEqual([0, true]);
    expect(gen({ task: Task.STYLE, images: [img, img] }).editType).toBe("image_ref_transfer");
    expect(gen({ task: Task.MULTIVIEW, editType: "left", images: [img] }).editType).toBe("multi_view_left");
    expect(gen({ task: Task.CONTROL, editType: "depth_control", prompt: "x", images: [img] }).editType).toBe("depth_control");
    expect(gen({ task: Task.DENSE, editType: "canny_pred", prompt: "x", images: [img] }).editType).toBe("canny_pred");
    expect(gen({ task: Task.DENSE, editType: "depth", prompt: "x", images: [img] }).editType).toBe("depth_pred");
    expect(gen({ task: Task.DENSE, editType: "normal_dense", images: [img] }).editType).toBe("normal_dense");
    expect(gen({ task: Task.SUBJECT, prompt: "x", images: [img] }).editType).toBe("subject_driven");
    expect(gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", seed: 5n, outputFormat: ImageFormat.JPEG }).quality).toBe(90);
  });

  it("names the offending field", () => {
    expect(field(() => gen({ prompt: "x" }))).toBe("task");
    expect(field(() => gen({ task: 77 as Task, prompt: "x" }))).toBe("task");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "" }))).toBe("prompt");
    // canny_pred takes the user's prompt (the reference's generic branch); canny_dense has a fixed one.
    expect(field(() => gen({ task: Task.DENSE, editType: "canny_pred", prompt: " ", images: [img] }))).toBe("prompt");
    expect(field(() => gen({ task: Task.DENSE, editType: "color_pred", prompt: "x", images: [img] }))).toBe("edit_type");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 1000 }))).toBe("width");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", height: 4096 }))).toBe("height");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 2048, height: 2048 }))).toBe("width");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", steps: 1000 }))).toBe("steps");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", guidanceScale: -1 }))).toBe("guidance_scale");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", temperature: Number.NaN }))).toBe("temperature");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", images: [img] }))).toBe("images");
    expect(field(() => gen({ task: Task.EDIT, editType: "edit_add", prompt: "x" }))).toBe("images[0]");
    expect(field(() => gen({ task: Task.STYLE, images: [img] }))).toBe("images[1]");
    expect(field(() => gen({ task: Task.EDIT, editType: "paint", prompt: "x", images: [img] }))).toBe("edit_type");
    expect(field(() => gen({ task: Task.INPAINT, prompt: "x", images: [img] }))).toBe("mask");
    expect(field(() => gen({ task: Task.EDIT, editType: "edit_add", prompt: "x", images: [img], mask: img }))).toBe("mask");
    expect(field(() => gen({ task: Task.EDIT, editType: "edit_add", prompt: "x", images: [new Uint8Array(0)] }))).toBe("images[0]");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", outputFormat: 9 as ImageFormat }))).toBe("output_format");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", outputQuality: 101 }))).toBe("output_quality");
    expect(field(() => gen({ task: Task.TEXT_TO_IMAGE, prompt: "x".repeat(DEFAULT_LIMITS.maxPromptChars + 1) }))).toBe("prompt");
  });
});

describe("ML-Cache parameters", () => {
  it("fill the reference defaults for every image family", () => {
    expect(gen({ task: Task.TEXT_TO_IMAGE, prompt: "x" }).mlCache).toBeUndefined();
    expect(gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", mlCache: { enabled: false } }).mlCache).toBeUndefined();
    expect(gen({ task: Task.TEXT_TO_IMAGE, prompt: "x", mlCache: { enabled: true } }).mlCache).toEqual({ cacheRatio: 0.9, warmupRatio: 0.3, refreshInterval: 5 });
    expect(gen({ task: Task.INPAINT, prompt: "x", images: [img], mask: img, mlCache: { enabled: true, cacheRatio: 0.8 } }).mlCache?.cacheRatio).toBe(0.8);
    expect(gen({ task: Task.EDIT, prompt: "x", images: [img], mlCache: { enabled: true, refreshInterval: 3 } }).mlCache).toEqual({ cacheRatio: 0.9, warmupRatio: 0.3, refreshInterval: 3 });
  });

  it("name the offending field", () => {
    const t2i = { task: Task.TEXT_TO_IMAGE, prompt: "x" } as const;
    expect(field(() => gen({ task: Task.EDIT, prompt: "x", images: [img], mlCache: { enabled: true, cacheRatio: -0.1 } }))).toBe("ml_cache.cache_ratio");
    expect(field(() => gen({ ...t2i, mlCache: { enabled: true, cacheRatio: 1 } }))).toBe("ml_cache.cache_ratio");
    expect(field(() => gen({ ...t2i, mlCache: { enabled: true, cacheRatio: Number.NaN } }))).toBe("ml_cache.cache_ratio");
    expect(field(() => gen({ ...t2i, mlCache: { enabled: true, warmupRatio: 1.5 } }))).toBe("ml_cache.warmup_ratio");
    expect(field(() => gen({ ...t2i, mlCache: { enabled: true, refreshInterval: 1 } }))).toBe("ml_cache.refresh_interval");
    // 64 steps, warm-up 0.3: at most 64 - 19 - 1 = 44.
    expect(gen({ ...t2i, mlCache: { enabled: true, refreshInterval: 44 } }).mlCache?.refreshInterval).toBe(44);
    expect(field(() => gen({ ...t2i, mlCache: { enabled: true, refreshInterval: 45 } }))).toBe("ml_cache.refresh_interval");
    expect(field(() => gen({ ...t2i, steps: 2, mlCache: { enabled: true } }))).toBe("ml_cache.refresh_interval");
  });
});

describe("validateUnderstandParams", () => {
  const und = (init: Parameters<typeof create<typeof UnderstandRequestSchema>>[1]) => validateUnderstandParams(create(UnderstandRequestSchema, init), DEFAULT_LIMITS);
  it("fills defaults and checks the block arithmetic", () => {
    const p = und({ question: "what?", images: [img] });
    expect([p.maxTokens, p.blockLength, p.steps, p.temperature, p.guidanceScale]).toEqual([256, 32, 256, 0, 0]);
    expect(field(() => und({ question: " ", images: [img] }))).toBe("question");
    expect(field(() => und({ question: "q", images: [] }))).toBe("images[0]");
    expect(field(() => und({ question: "q", images: [img], maxTokens: 10, blockLength: 4 }))).toBe("block_length");
    expect(field(() => und({ question: "q", images: [img], maxTokens: 1024, blockLength: 512 }))).toBe("block_length");
    expect(field(() => und({ question: "q", images: [img], maxTokens: 8, blockLength: 4, steps: 3 }))).toBe("steps");
    expect(field(() => und({ question: "q", images: [img], maxTokens: 5000 }))).toBe("max_tokens");
    expect(field(() => und({ question: "q".repeat(DEFAULT_LIMITS.maxPromptChars + 1), images: [img] }))).toBe("question");
  });
});

describe("deadlineAt", () => {
  it("takes the tightest of request, caller and host, finishing just before the caller's timer", () => {
    const L = { ...DEFAULT_LIMITS, defaultDeadlineMs: 60_000, maxDeadlineMs: 120_000 };
    expect(deadlineAt(0, undefined, L, 1000)).toBe(61_000);
    expect(deadlineAt(5000, undefined, L, 1000)).toBe(6000);
    expect(deadlineAt(999_999, undefined, L, 1000)).toBe(121_000);
    expect(deadlineAt(5000, 2000, L, 1000)).toBe(2900);
  });
});
