// Start-up warm-up: before the host takes traffic, one small request of each task family runs through the
// service's own port, at the sequence lengths callers hit first (text-to-image at 256, 512 and 1024 square,
// the API's default; an edit and an inpaint, whose square inputs crop to 512x512; a question, whose square
// image crops to 1024x1024). The first run of a length is the slow one: onnxruntime plans memory and picks
// kernels per shape on the dev models, and on a real Triton a model's first call pays CUDA/cuBLAS set-up
// that its model_warmup may not cover, while the tokenizer, codec and service code are compiled lazily.
// Going through the real port means every layer on the path is warmed, and nothing here is special-cased.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import sharp from "sharp";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { DimooService, Task, type GenerateRequestSchema, type UnderstandRequestSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { EngineHealth } from "../engine/runners";
import type { Logger } from "./log";

export type FirstCall =
  | { name: string; kind: "generate"; request: MessageInitShape<typeof GenerateRequestSchema> }
  | { name: string; kind: "understand"; request: MessageInitShape<typeof UnderstandRequestSchema> };

export interface WarmUpOptions {
  /** Denoising steps per warm-up generation (the step loop is the same at every step). Default 2. */
  steps?: number;
  /** Text-to-image sizes to warm; default 256x256, 512x512, 1024x1024. */
  sizes?: readonly (readonly [number, number])[];
}

const DEFAULT_SIZES = [[256, 256], [512, 512], [1024, 1024]] as const;

/** A smooth test card: deterministic, compresses well, and not one flat colour (which some codecs special-case). */
async function testCard(side: number): Promise<Uint8Array> {
  const px = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++)
    for (let x = 0; x < side; x++) {
      const i = (y * side + x) * 3;
      px[i] = (x * 255) / side;
      px[i + 1] = (y * 255) / side;
      px[i + 2] = 128;
    }
  return new Uint8Array(await sharp(px, { raw: { width: side, height: side, channels: 3 } }).png().toBuffer());
}

/** White square in the middle of black: the region an inpaint regenerates. */
async function centreMask(side: number): Promise<Uint8Array> {
  const px = Buffer.alloc(side * side);
  for (let y = side / 4; y < (3 * side) / 4; y++) px.fill(255, y * side + side / 4, y * side + (3 * side) / 4);
  return new Uint8Array(await sharp(px, { raw: { width: side, height: side, channels: 1 } }).png().toBuffer());
}

/** The requests a newcomer sends first, one per task family and common length. */
export async function firstCallRequests(opts: WarmUpOptions = {}): Promise<FirstCall[]> {
  const steps = opts.steps ?? 2;
  const photo = await testCard(256);
  const out: FirstCall[] = (opts.sizes ?? DEFAULT_SIZES).map(([width, height]) => ({
    name: `text-to-image ${width}x${height}`,
    kind: "generate" as const,
    request: { task: Task.TEXT_TO_IMAGE, prompt: "a red circle on a white background", width, height, steps, seed: 1n },
  }));
  out.push(
    { name: "edit 256x256 photo", kind: "generate", request: { task: Task.EDIT, editType: "edit_replace", prompt: "make the sky blue", images: [photo], steps, seed: 1n } },
    { name: "inpaint 256x256 photo", kind: "generate", request: { task: Task.INPAINT, prompt: "a red circle", images: [photo], mask: await centreMask(256), steps, seed: 1n } },
    { name: "understand 256x256 photo", kind: "understand", request: { question: "What colour is the top left corner?", images: [photo], maxTokens: 16, steps, seed: 1n } },
  );
  return out;
}

/**
 * Waits until every model the orchestrator uses is ready: an orchestrator may start before its Triton (a
 * separate process or container) listens, and a warm-up against an absent engine would warm nothing.
 * Resolves false when `timeoutMs` passes or `signal` fires first.
 */
export async function engineReady(engine: EngineHealth, signal: AbortSignal, timeoutMs = 15 * 60_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (!signal.aborted && Date.now() < until) {
    const models = await engine.models(AbortSignal.any([signal, AbortSignal.timeout(2000)])).catch(() => []);
    if (models.length > 0 && models.every((m) => m.ready)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

/**
 * Runs the first-call requests against the orchestrator at `url`, one after another (they share the host
 * with nothing yet). A failure is logged and the next request goes on: warming is an optimisation, and a
 * host whose engine cannot serve a family says so in Health and in that family's own errors.
 */
export async function warmUp(url: string, token: string, log: Logger, opts: WarmUpOptions = {}): Promise<{ ms: number; failed: number }> {
  const dimoo = createClient(DimooService, createConnectTransport({ baseUrl: url, httpVersion: "1.1" }));
  const headers = { authorization: `Bearer ${token}` };
  const t0 = performance.now();
  let failed = 0;
  for (const call of await firstCallRequests(opts)) {
    const t = performance.now();
    const requestId = `warm-up-${call.name.replace(/\W+/g, "-")}`;
    try {
      if (call.kind === "generate") for await (const _ of dimoo.generate({ ...call.request, requestId }, { headers })) void _;
      else for await (const _ of dimoo.understand({ ...call.request, requestId }, { headers })) void _;
      log.debug("warmed", { family: call.name, ms: Math.round(performance.now() - t) });
    } catch (e) {
      failed++;
      log.warn("warm-up request failed", { family: call.name, error: e instanceof Error ? e.message : String(e) });
    }
  }
  return { ms: performance.now() - t0, failed };
}
