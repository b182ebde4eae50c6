// The orchestrator end to end against the embedded backend and the dev models (in this process, random
// ports on 127.0.0.1): the three protocols, every task with the reference's output sizes, determinism
// alone vs batched, inpainting keeps known cells, and bad inputs naming the field.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import sharp from "sharp";
import { Code, ConnectError } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import {
  FieldViolationSchema,
  GenerateRequestSchema,
  ImageFormat,
  Task,
  type GenerateEvent,
  type ImageResult,
} from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { Orchestrator } from "../../../gpu-backend/src/service/orchestrator";
import { chooseCropSize, i2iCropSizes } from "../../../gpu-backend/src/model/crops";
import { createGeneratePipeline } from "../../../gpu-backend/src/tasks/generate";
import type { DenoisingTask } from "../../../gpu-backend/src/tasks/denoising-task";
import { StepBatcher } from "../../../gpu-backend/src/batcher/step-batcher";
import { vqEncodeImage } from "../../../gpu-backend/src/engine/vq";
import { decodeImage, resizeToMultipleOf16 } from "../../../gpu-backend/src/model/image-codec";
import { decodeMask, maskToGrid, countRegenerate } from "../../../gpu-backend/src/model/mask-grid";
import { gridForPixels } from "../../../gpu-backend/src/model/layout";
import { Tokenizer } from "../../../gpu-backend/src/model/tokenizer";
import { DEFAULT_LIMITS } from "../../../gpu-backend/src/tasks/limits";
import { DEV_MODEL_REPOSITORY } from "../../../gpu-backend/src/cli/build-dev-models";
import { auth, clientFor, collect, errorOf, FLAVOURS, startDevStack, TOKEN, type DevStack } from "./support";

type GenerateRequest = MessageInitShape<typeof GenerateRequestSchema>;

let stack: DevStack;
let orch: Orchestrator;

beforeAll(async () => {
  stack = await startDevStack();
  orch = stack.orch;
});

afterAll(async () => {
  await stack?.close();
});

async function png(width: number, height: number, seed: number, alpha = false): Promise<Uint8Array> {
  const ch = alpha ? 4 : 3;
  const raw = Buffer.alloc(width * height * ch);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * ch;
      raw[o] = (x * 3 + seed * 40) & 255;
      raw[o + 1] = (y * 5 + seed * 17) & 255;
      raw[o + 2] = ((x ^ y) + seed) & 255;
      if (alpha) raw[o + 3] = 255;
    }
  return sharp(raw, { raw: { width, height, channels: ch } }).png().toBuffer();
}

/** A mask image: `inside(x, y)` marks pixels to regenerate, as alpha 0 (withAlpha) or white. */
async function maskPng(width: number, height: number, inside: (x: number, y: number) => boolean, withAlpha: boolean): Promise<Uint8Array> {
  const ch = withAlpha ? 4 : 3;
  const raw = Buffer.alloc(width * height * ch);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * ch;
      const r = inside(x, y);
      if (withAlpha) {
        raw.fill(0, o, o + 3);
        raw[o + 3] = r ? 0 : 255;
      } else raw.fill(r ? 255 : 0, o, o + 3);
    }
  return sharp(raw, { raw: { width, height, channels: ch } }).png().toBuffer();
}

function resultOf(events: GenerateEvent[]): ImageResult {
  const last = events[events.length - 1];
  if (last?.event.case !== "result") throw new Error(`no result (last event ${last?.event.case})`);
  return last.event.value;
}

async function generate(req: GenerateRequest, flavour: (typeof FLAVOURS)[number] = "connect"): Promise<GenerateEvent[]> {
  return collect(clientFor(flavour, orch.url).generate(req, { headers: auth(TOKEN) }));
}

async function sizeOf(bytes: Uint8Array): Promise<[number, number]> {
  const m = await sharp(bytes).metadata();
  return [m.width!, m.height!];
}

describe("text-to-image 256x256, 16 steps", () => {
  const req = { task: Task.TEXT_TO_IMAGE, prompt: "a lighthouse on a cliff at dusk", width: 256, height: 256, steps: 16, seed: 1234n, previewEvery: 8 };

  it("runs end to end through native gRPC, gRPC-Web and Connect, with identical bytes", async () => {
    const runs = await Promise.all(FLAVOURS.map((f) => generate({ ...req, requestId: `t2i-${f}` }, f)));
    const results = runs.map(resultOf);
    for (const [i, events] of runs.entries()) {
      expect(events[0].event.case).toBe("accepted");
      const progress = events.filter((e) => e.event.case === "progress").map((e) => e.event.value as { step: number; totalSteps: number; maskedRemaining: number; preview: Uint8Array });
      expect(progress.map((p) => p.step)).toEqual(Array.from({ length: 16 }, (_, k) => k + 1));
      expect(progress.every((p) => p.totalSteps === 16)).toBe(true);
      expect(progress[15].maskedRemaining).toBe(0);
      expect(progress[7].preview.length).toBeGreaterThan(0); // preview every 8 steps
      const r = results[i];
      expect(r.mimeType).toBe("image/png");
      expect([r.width, r.height]).toEqual([256, 256]);
      expect(await sizeOf(r.image)).toEqual([256, 256]);
      expect(r.seed).toBe(1234n);
      expect(r.usage?.steps).toBe(16);
      expect(r.usage?.outputTokens).toBe(256);
      expect(r.usage?.engineMs).toBeGreaterThan(0);
      expect(Number(r.usage?.tokensProcessed)).toBeGreaterThan(16 * 2 * 256);
    }
    // Same request and seed → same bytes, whichever protocol (and they ran batched together).
    expect(Buffer.from(results[1].image).equals(Buffer.from(results[0].image))).toBe(true);
    expect(Buffer.from(results[2].image).equals(Buffer.from(results[0].image))).toBe(true);
  });

  it("answers a grpc-js client (native gRPC, another implementation)", async () => {
    const def = protoLoader.loadSync("proto/dimoo/v1/dimoo.proto", { longs: String, enums: String, defaults: true, oneofs: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as { dimoo: { v1: { DimooService: grpc.ServiceClientConstructor } } };
    const client = new pkg.dimoo.v1.DimooService(`127.0.0.1:${orch.port}`, grpc.credentials.createInsecure());
    try {
      const md = new grpc.Metadata();
      md.set("authorization", `Bearer ${TOKEN}`);
      const health = await new Promise<{ ready: boolean }>((resolve, reject) =>
        client.Health({}, md, (err: grpc.ServiceError | null, res: { ready: boolean }) => (err ? reject(err) : resolve(res))),
      );
      expect(health.ready).toBe(true);
      const events: { event: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        const call = client.Generate({ task: "TASK_TEXT_TO_IMAGE", prompt: "a boat", width: 64, height: 64, steps: 4, seed: "9" }, md);
        call.on("data", (e: { event: string }) => events.push(e));
        call.on("error", reject);
        call.on("end", () => resolve());
      });
      expect(events.map((e) => e.event)).toEqual(["accepted", "progress", "progress", "progress", "progress", "result"]);
    } finally {
      client.close();
    }
  });
});

describe("determinism", () => {
  it("gives identical image bytes alone and batched with other requests", async () => {
    const a = { task: Task.TEXT_TO_IMAGE, prompt: "a bowl of fruit", width: 128, height: 128, steps: 8, seed: 77n };
    const alone = resultOf(await generate({ ...a, requestId: "alone" }));
    const before = orch.stats.batchSize.sum();
    const calls0 = orch.stats.batchSize.count();
    const [together] = await Promise.all([
      generate({ ...a, requestId: "batched" }),
      generate({ task: Task.TEXT_TO_IMAGE, prompt: "a different prompt entirely", width: 128, height: 128, steps: 8, seed: 5n }),
      generate({ task: Task.TEXT_TO_IMAGE, prompt: "yet another", width: 128, height: 112, steps: 12, seed: 6n }),
    ]);
    // They really shared calls: more requests than calls since `before`.
    expect(orch.stats.batchSize.sum() - before).toBeGreaterThan(orch.stats.batchSize.count() - calls0);
    expect(Buffer.from(resultOf(together).image).equals(Buffer.from(alone.image))).toBe(true);
    // A different seed gives a different image.
    const other = resultOf(await generate({ ...a, seed: 78n }));
    expect(Buffer.from(other.image).equals(Buffer.from(alone.image))).toBe(false);
  });
});

describe("step-level continuous batching", () => {
  it("starts a new request's first step within about one step time, while another is mid-generation", async () => {
    const ac = new AbortController();
    const stamps: number[] = [];
    const long = (async () => {
      for await (const ev of clientFor("grpc", orch.url).generate(
        { task: Task.TEXT_TO_IMAGE, prompt: "a long one", width: 256, height: 256, steps: 200, seed: 1n },
        { headers: auth(TOKEN), signal: ac.signal },
      )) {
        if (ev.event.case === "progress") stamps.push(performance.now());
      }
    })().catch(() => undefined);
    try {
      while (stamps.length < 6) await new Promise((r) => setTimeout(r, 5));
      const gaps = stamps.slice(1).map((t, i) => t - stamps[i]).sort((a, b) => a - b);
      const stepMs = gaps[Math.floor(gaps.length / 2)];
      const t0 = performance.now();
      let first = 0;
      let position = -1;
      for await (const ev of clientFor("connect", orch.url).generate({ task: Task.TEXT_TO_IMAGE, prompt: "quick", width: 64, height: 64, steps: 4, seed: 2n }, { headers: auth(TOKEN) })) {
        if (ev.event.case === "accepted") position = ev.event.value.queuePosition;
        if (ev.event.case === "progress" && first === 0) first = performance.now() - t0;
      }
      expect(position).toBe(0);
      // one call in flight to wait out, then its own step (plus validation/tokenizing): about one step time
      expect(first).toBeLessThan(3 * stepMs + 250);
      expect(stamps.length).toBeLessThan(200); // the long one was still running
    } finally {
      ac.abort();
      await long;
    }
  });
});

describe("every task, with the reference's output sizes", () => {
  it("text-to-image: W x H as requested (non-square), WebP output", async () => {
    const r = resultOf(await generate({ task: Task.TEXT_TO_IMAGE, prompt: "wide", width: 192, height: 96, steps: 4, outputFormat: ImageFormat.WEBP }));
    expect(r.mimeType).toBe("image/webp");
    expect([r.width, r.height]).toEqual([192, 96]);
    expect(await sizeOf(r.image)).toEqual([192, 96]);
  });

  it("image-to-image tasks: the 512-list crop size of the input; style: the style image's crop", async () => {
    const input = await png(300, 200, 1);
    const style = await png(200, 300, 2);
    const expected = chooseCropSize(300, 200, i2iCropSizes());
    const expectedStyle = chooseCropSize(200, 300, i2iCropSizes());
    // Guidance 0 (one branch) and one step keep this affordable on the CPU dev model; the three-branch
    // dual guidance runs in the next test.
    const g0 = { guidanceScale: 0, imageGuidanceScale: 0, steps: 1 };
    const cases: [string, GenerateRequest, readonly number[]][] = [
      ["edit", { task: Task.EDIT, editType: "edit_add", prompt: "add a hat", images: [input] }, expected],
      ["edit without a kind (a plain images.edit)", { task: Task.EDIT, prompt: "make it blue", images: [input] }, expected],
      ["subject", { task: Task.SUBJECT, prompt: "the object on a beach", images: [input] }, expected],
      ["control", { task: Task.CONTROL, editType: "canny", prompt: "a house", images: [input] }, expected],
      // As the reference's README runs it: depth_pred with the caller's prompt (the generic prompt branch).
      ["dense", { task: Task.DENSE, editType: "depth", prompt: "Generate a depth map accroding to the image.", images: [input] }, expected],
      ["dense (the prompt builder's dense branch, no prompt)", { task: Task.DENSE, editType: "normal_dense", images: [input] }, expected],
      ["multiview", { task: Task.MULTIVIEW, editType: "left", images: [input] }, expected],
      ["style", { task: Task.STYLE, images: [input, style], outputFormat: ImageFormat.JPEG }, expectedStyle],
    ];
    const results = await Promise.all(cases.map(([, req], i) => generate({ ...req, ...g0, seed: BigInt(i + 1), requestId: `i2i-${i}` })));
    for (const [i, [name, , size]] of cases.entries()) {
      const r = resultOf(results[i]);
      expect([name, r.width, r.height]).toEqual([name, size[0], size[1]]);
      expect(await sizeOf(r.image)).toEqual([size[0], size[1]]);
    }
    expect(resultOf(results[cases.findIndex(([name]) => name === "style")]).mimeType).toBe("image/jpeg");
  });

  it("image-to-image with the reference's dual guidance (three branches per step)", async () => {
    const input = await png(300, 200, 1);
    const before = orch.stats.batchRows.sum();
    const r = resultOf(await generate({ task: Task.EDIT, editType: "edit_remove", prompt: "remove the stripes", images: [input], steps: 2, seed: 3n }));
    expect([r.width, r.height]).toEqual([...chooseCropSize(300, 200, i2iCropSizes())]);
    expect(orch.stats.batchRows.sum() - before).toBe(2 * 3);
  });

  it("inpainting and outpainting: the input's own size blended, or floored to /16 raw; arbitrary masks (alpha or white)", async () => {
    const image = await png(200, 150, 3);
    const circle = await maskPng(200, 150, (x, y) => (x - 100) ** 2 + (y - 75) ** 2 < 50 ** 2, true);
    const border = await maskPng(200, 150, (x) => x < 40 || x >= 160, false);
    const [inp, out, rawInp, rawOut] = await Promise.all([
      generate({ task: Task.INPAINT, prompt: "a flower", images: [image], mask: circle, steps: 4, seed: 3n }),
      generate({ task: Task.OUTPAINT, prompt: "a meadow", images: [image], mask: border, steps: 4, seed: 4n }),
      generate({ task: Task.INPAINT, prompt: "a flower", images: [image], mask: circle, steps: 4, seed: 3n, rawDecode: true }),
      generate({ task: Task.OUTPAINT, prompt: "a meadow", images: [image], mask: border, steps: 4, seed: 4n, rawDecode: true }),
    ]);
    for (const events of [inp, out]) {
      const r = resultOf(events);
      expect([r.width, r.height]).toEqual([200, 150]);
      expect(await sizeOf(r.image)).toEqual([200, 150]);
    }
    for (const events of [rawInp, rawOut]) {
      const r = resultOf(events);
      expect([r.width, r.height]).toEqual([192, 144]);
      expect(await sizeOf(r.image)).toEqual([192, 144]);
      // only masked cells are generated: far fewer output tokens than 12x9 cells
      expect(r.usage!.outputTokens).toBeGreaterThan(0);
      expect(r.usage!.outputTokens).toBeLessThan(108);
    }
  });

  it("understanding: text streamed as blocks finish, then the final text", async () => {
    const image = await png(96, 64, 4);
    const events = await collect(
      clientFor("grpc", orch.url).understand({ question: "What is in the picture?", images: [image], maxTokens: 4, blockLength: 2, steps: 2, seed: 1n }, { headers: auth(TOKEN) }),
    );
    expect(events[0].event.case).toBe("accepted");
    const last = events[events.length - 1];
    expect(last.event.case).toBe("result");
    if (last.event.case !== "result") return;
    const deltas = events.filter((e) => e.event.case === "delta").map((e) => (e.event.value as { text: string }).text);
    expect(deltas.join("")).toBe(last.event.value.text);
    expect(["stop", "length"]).toContain(last.event.value.finishReason);
    expect(last.event.value.usage!.steps).toBeGreaterThan(0);
    expect(last.event.value.usage!.steps).toBeLessThanOrEqual(2);
  });
});

describe("inpainting keeps known cells", () => {
  it("never changes a cell outside the mask, and the schedule counts masked cells only", async () => {
    const tokenizer = await Tokenizer.fromFile(`${DEV_MODEL_REPOSITORY}/dimoo_transformer/tokenizer.json`);
    const pipeline = createGeneratePipeline({ tokenizer, vq: orch.engine, limits: DEFAULT_LIMITS });
    const image = await png(160, 128, 5);
    const mask = await maskPng(160, 128, (x, y) => x > 30 && x < 100 && y > 20 && y < 90, true);
    const spec = await pipeline.validate(create(GenerateRequestSchema, { task: Task.INPAINT, prompt: "a cat", images: [image], mask, steps: 6, seed: 8n, requestId: "keep" }));
    const sched = new StepBatcher({ runner: orch.engine });
    const task = await new Promise<DenoisingTask>((resolve, reject) =>
      sched.submit({ requestId: "keep", deadlineAt: Infinity, prepare: (signal: AbortSignal) => pipeline.prepare(spec, { requestId: "keep", signal }), onDone: resolve, onError: reject }),
    );
    const src = resizeToMultipleOf16(await decodeImage(image, { field: "images[0]", maxPixels: 1e8 }));
    const known = await vqEncodeImage(orch.engine, src, { requestId: "keep-ref" });
    const regenerate = maskToGrid(await decodeMask(mask, { width: 160, height: 128, maxPixels: 1e8 }), gridForPixels(128, 160));
    const codes = task.codes();
    let changedOutside = 0;
    for (let i = 0; i < codes.length; i++) if (!regenerate[i] && codes[i] !== known.codes[i]) changedOutside++;
    expect(changedOutside).toBe(0);
    expect(task.outputTokens).toBe(countRegenerate(regenerate));
    expect(task.outputTokens).toBeGreaterThan(0);
    expect(task.outputTokens).toBeLessThan(codes.length);
  });
});

describe("bad inputs give INVALID_ARGUMENT naming the field", () => {
  const cases: [string, () => Promise<GenerateRequest>, string][] = [
    ["empty prompt", async () => ({ task: Task.TEXT_TO_IMAGE, prompt: "   ", width: 64, height: 64 }), "prompt"],
    ["prompt over the token limit", async () => ({ task: Task.TEXT_TO_IMAGE, prompt: "lorem ipsum dolor ".repeat(400), width: 64, height: 64 }), "prompt"],
    ["unsupported size", async () => ({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 100, height: 64 }), "width"],
    ["size over the limit", async () => ({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 64, height: 4096 }), "height"],
    ["unknown task", async () => ({ task: 42 as Task, prompt: "x" }), "task"],
    ["missing task", async () => ({ prompt: "x" }), "task"],
    ["not an image", async () => ({ task: Task.EDIT, editType: "edit_add", prompt: "x", images: [new TextEncoder().encode("definitely not a png")] }), "images[0]"],
    ["unsupported image format", async () => ({ task: Task.EDIT, editType: "edit_add", prompt: "x", images: [await sharp({ create: { width: 8, height: 8, channels: 3, background: "#fff" } }).gif().toBuffer()] }), "images[0]"],
    ["mask of another size", async () => ({ task: Task.INPAINT, prompt: "x", images: [await png(64, 64, 1)], mask: await maskPng(32, 32, () => true, false) }), "mask"],
    ["mask that is not an image", async () => ({ task: Task.INPAINT, prompt: "x", images: [await png(64, 64, 1)], mask: new Uint8Array([1, 2, 3]) }), "mask"],
    ["missing style image", async () => ({ task: Task.STYLE, images: [await png(64, 64, 1)] }), "images[1]"],
    ["unknown edit type", async () => ({ task: Task.EDIT, editType: "explode", prompt: "x", images: [await png(64, 64, 1)] }), "edit_type"],
    ["too many steps", async () => ({ task: Task.TEXT_TO_IMAGE, prompt: "x", width: 64, height: 64, steps: 100000 }), "steps"],
  ];
  it.each(cases)("%s", async (_name, make, field) => {
    const req = await make();
    const e = await errorOf(() => generate(req));
    const ce = ConnectError.from(e);
    expect(ce.code).toBe(Code.InvalidArgument);
    expect(ce.findDetails(FieldViolationSchema)[0]?.field).toBe(field);
    expect(ce.findDetails(FieldViolationSchema)[0]?.description.startsWith(`${field}:`)).toBe(false); // named once, by `field`
  });

  it("understanding: empty question, not an image", async () => {
    const client = clientFor("connect", orch.url);
    const cases: [Parameters<typeof client.understand>[0], string][] = [
      [{ question: "", images: [await png(32, 32, 1)] }, "question"],
      [{ question: "what?", images: [new Uint8Array([0, 1, 2])] }, "images[0]"],
      [{ question: "what?", images: [await png(32, 32, 1)], maxTokens: 6, blockLength: 4 }, "block_length"],
    ];
    for (const [req, field] of cases) {
      const e = await errorOf(() => collect(client.understand(req, { headers: auth(TOKEN) })));
      const ce = ConnectError.from(e);
      expect(ce.code).toBe(Code.InvalidArgument);
      expect(ce.findDetails(FieldViolationSchema)[0]?.field).toBe(field);
    }
  });
});
