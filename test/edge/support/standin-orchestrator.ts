// STAND-IN ORCHESTRATOR (test support only, never shipped). A real connect-node server that implements
// proto/gen's dimoo.v1.DimooService with deterministic fake images, so the edge's generation path can be
// tested over the real wire protocol (Connect over HTTP/1.1, service token, streaming, error details)
// while the real orchestrator (`npm run start:orchestrator`) is being written. See ./orchestrator.ts for
// the one-line swap.
//
// Behaviour knobs:
//   - per instance: `mode: "ok" | "unhealthy" | "slow-health"` (Health reports ready=false, or answers
//     ready after 2.5 s: a host too busy to answer Health in time) and a fixed service token;
//   - per request, via directives inside the prompt/question (stand-in only):
//       [standin:fail=unavailable|internal|invalid|exhausted]  fail with that gRPC status
//       [standin:fail_after=N]                                  fail after N progress steps (default 0)
//       [standin:delay=MS]                                      sleep MS per step
//   - HTTP side doors for tests: GET /__standin/calls (call log), DELETE /__standin/calls (reset),
//     GET /__standin/image.png (a 64x48 PNG, for image_url fetch tests), /__standin/redirect.png (a 302 to
//     it) and /__standin/slow.png (a PNG whose body stalls after its first bytes).
import http from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { createHash } from "node:crypto";
import sharp from "sharp";
import { chooseCropSize, floorTo16, i2iCropSizes } from "../../../gpu-backend/src/model/crops";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  DimooService,
  FieldViolationSchema,
  GenerateEventSchema,
  ImageFormat,
  RetryInfoSchema,
  Task,
  UnderstandEventSchema,
  type GenerateEvent,
  type GenerateRequest,
  type UnderstandEvent,
  type UnderstandRequest,
} from "../../../proto/gen/dimoo/v1/dimoo_pb";

export interface StandInOptions {
  token: string;
  mode?: "ok" | "unhealthy" | "slow-health";
  name?: string;
  port?: number;
}

export interface StandInCall {
  method: "Generate" | "Understand" | "Health" | "Capabilities";
  server: string;
  authorized: boolean;
  requestId?: string;
  task?: string;
  prompt?: string;
  seed?: string;
  width?: number;
  height?: number;
  steps?: number;
  images?: number;
  maskBytes?: number;
  editType?: string;
  rawDecode?: boolean;
  outputFormat?: string;
  previewEvery?: number;
  mlCache?: { enabled: boolean; cacheRatio?: number; warmupRatio?: number; refreshInterval?: number };
  tenant?: { id: string; weight: number };
  outcome?: "ok" | "error" | "cancelled";
}

export interface StandInOrchestrator {
  url: string;
  name: string;
  calls: StandInCall[];
  close(): Promise<void>;
}

interface Directives {
  fail?: "unavailable" | "internal" | "invalid" | "exhausted";
  failAfter: number;
  delayMs: number;
}

function directives(text: string): Directives {
  const fail = /\[standin:fail=(unavailable|internal|invalid|exhausted)\]/.exec(text)?.[1] as Directives["fail"];
  const failAfter = Number(/\[standin:fail_after=(\d+)\]/.exec(text)?.[1] ?? 0);
  const delayMs = Number(/\[standin:delay=(\d+)\]/.exec(text)?.[1] ?? 0);
  return { fail, failAfter, delayMs };
}

function failure(kind: NonNullable<Directives["fail"]>): ConnectError {
  switch (kind) {
    case "unavailable":
      return new ConnectError("stand-in: engine unavailable", Code.Unavailable);
    case "internal":
      return new ConnectError("stand-in: engine crashed", Code.Internal);
    case "invalid":
      return new ConnectError("stand-in: prompt rejected", Code.InvalidArgument, undefined, [
        { desc: FieldViolationSchema, value: { field: "prompt", description: "rejected by the stand-in" } },
      ]);
    case "exhausted":
      return new ConnectError("stand-in: queue full", Code.ResourceExhausted, undefined, [
        { desc: RetryInfoSchema, value: { retryAfterMs: 2000 } },
      ]);
  }
}

/** Deterministic RGB pixels from the seed and the prompt: a two-colour gradient. */
function pixels(width: number, height: number, seed: bigint, prompt: string): Buffer {
  const h = createHash("sha256").update(`${seed}:${prompt}`).digest();
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const t = (x + y) / Math.max(1, width + height - 2);
      const o = (y * width + x) * 3;
      raw[o] = Math.round(h[0] * (1 - t) + h[3] * t);
      raw[o + 1] = Math.round(h[1] * (1 - t) + h[4] * t);
      raw[o + 2] = Math.round(h[2] * (1 - t) + h[5] * t);
    }
  }
  return raw;
}

async function encode(raw: Buffer, width: number, height: number, format: ImageFormat): Promise<{ bytes: Uint8Array; mime: string }> {
  const img = sharp(raw, { raw: { width, height, channels: 3 } });
  switch (format) {
    case ImageFormat.WEBP:
      return { bytes: await img.webp().toBuffer(), mime: "image/webp" };
    case ImageFormat.JPEG:
      return { bytes: await img.jpeg().toBuffer(), mime: "image/jpeg" };
    default:
      return { bytes: await img.png().toBuffer(), mime: "image/png" };
  }
}

/** The real orchestrator's rule (gpu-backend/src/service/dimoo-service.ts): 1-128 printable ASCII, no spaces. */
function checkRequestId(id: string, call: StandInCall): void {
  if (id.length > 128 || !/^[\x21-\x7e]+$/.test(id)) {
    call.outcome = "error";
    throw new ConnectError("bad request id", Code.InvalidArgument, undefined, [
      { desc: FieldViolationSchema, value: { field: "request_id", description: "must be 1-128 printable ASCII characters without spaces" } },
    ]);
  }
}

function bearer(ctx: HandlerContext): string | undefined {
  const h = ctx.requestHeader.get("authorization") ?? "";
  return h.startsWith("Bearer ") ? h.slice(7) : undefined;
}

export async function startStandInOrchestrator(opts: StandInOptions): Promise<StandInOrchestrator> {
  const name = opts.name ?? "standin";
  const calls: StandInCall[] = [];
  let active = 0;

  const authorize = (ctx: HandlerContext, call: StandInCall) => {
    call.authorized = bearer(ctx) === opts.token;
    calls.push(call);
    if (!call.authorized) throw new ConnectError("missing or wrong service token", Code.Unauthenticated);
  };

  async function* generate(req: GenerateRequest, ctx: HandlerContext): AsyncGenerator<GenerateEvent> {
    const call: StandInCall = {
      method: "Generate",
      server: name,
      authorized: false,
      requestId: req.requestId,
      task: Task[req.task],
      prompt: req.prompt,
      seed: req.seed?.toString(),
      width: req.width,
      height: req.height,
      steps: req.steps,
      images: req.images.length,
      maskBytes: req.mask.length,
      editType: req.editType,
      rawDecode: req.rawDecode,
      outputFormat: ImageFormat[req.outputFormat],
      previewEvery: req.previewEvery,
      mlCache: req.mlCache && { enabled: req.mlCache.enabled, cacheRatio: req.mlCache.cacheRatio, warmupRatio: req.mlCache.warmupRatio, refreshInterval: req.mlCache.refreshInterval },
      tenant: req.tenant && { id: req.tenant.id, weight: req.tenant.weight },
    };
    authorize(ctx, call);
    checkRequestId(req.requestId, call);
    const d = directives(req.prompt);
    if (req.prompt.trim() === "") {
      call.outcome = "error";
      throw new ConnectError("prompt is empty", Code.InvalidArgument, undefined, [
        { desc: FieldViolationSchema, value: { field: "prompt", description: "must not be empty" } },
      ]);
    }
    let width = req.width || 1024;
    let height = req.height || 1024;
    if (req.task !== Task.TEXT_TO_IMAGE) {
      if (req.images.length === 0) {
        call.outcome = "error";
        throw new ConnectError("this task needs an input image", Code.InvalidArgument, undefined, [
          { desc: FieldViolationSchema, value: { field: "images", description: "at least one image is required" } },
        ]);
      }
      const meta = await sharp(req.images[0]).metadata();
      const painting = req.task === Task.INPAINT || req.task === Task.OUTPAINT;
      // the output size the orchestrator produces (gpu-backend/src/tasks): painting keeps the image floored to
      // multiples of 16, image-to-image takes the last input's size from the 512-area crop list
      if (painting) [width, height] = floorTo16(meta.width ?? width, meta.height ?? height);
      else {
        const last = await sharp(req.images[req.images.length - 1]).metadata();
        [width, height] = chooseCropSize(last.width ?? width, last.height ?? height, i2iCropSizes());
      }
      if (painting && req.mask.length > 0) {
        const m = await sharp(req.mask).metadata();
        if (m.width !== meta.width || m.height !== meta.height) {
          call.outcome = "error";
          throw new ConnectError("mask size differs from the image", Code.InvalidArgument, undefined, [
            { desc: FieldViolationSchema, value: { field: "mask", description: `mask is ${m.width}x${m.height}, image is ${meta.width}x${meta.height}` } },
          ]);
        }
      }
    }
    const steps = req.steps || 64;
    const seed = req.seed ?? BigInt(Math.floor(Math.random() * 2 ** 31));
    active++;
    try {
      yield create(GenerateEventSchema, { event: { case: "accepted", value: { queuePosition: 0, seed } } });
      const tokens = (width / 16) * (height / 16);
      for (let step = 1; step <= steps; step++) {
        if (ctx.signal.aborted) {
          call.outcome = "cancelled";
          throw new ConnectError("cancelled", Code.Canceled);
        }
        if (d.fail && step > d.failAfter) {
          call.outcome = "error";
          throw failure(d.fail);
        }
        if (d.delayMs) await sleep(d.delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
        let preview: Uint8Array = new Uint8Array();
        let pw = 0;
        let ph = 0;
        if (req.previewEvery > 0 && step % req.previewEvery === 0 && step < steps) {
          pw = Math.max(1, Math.round(width / 8));
          ph = Math.max(1, Math.round(height / 8));
          preview = (await encode(pixels(pw, ph, seed, req.prompt), pw, ph, req.outputFormat)).bytes;
        }
        yield create(GenerateEventSchema, {
          event: {
            case: "progress",
            value: {
              step,
              totalSteps: steps,
              maskedRemaining: Math.round(tokens * (1 - step / steps)),
              preview,
              previewWidth: pw,
              previewHeight: ph,
            },
          },
        });
      }
      if (d.fail) {
        call.outcome = "error";
        throw failure(d.fail);
      }
      const { bytes, mime } = await encode(pixels(width, height, seed, req.prompt), width, height, req.outputFormat);
      const promptTokens = req.prompt.split(/\s+/).filter(Boolean).length;
      call.outcome = "ok";
      yield create(GenerateEventSchema, {
        event: {
          case: "result",
          value: {
            image: bytes,
            mimeType: mime,
            width,
            height,
            seed,
            usage: {
              steps,
              tokensProcessed: BigInt((tokens + promptTokens) * steps * 2),
              engineMs: steps * 0.5,
              outputTokens: tokens,
              promptTokens,
            },
          },
        },
      });
    } finally {
      active--;
      call.outcome ??= "cancelled"; // the client went away and the stream was closed mid-way
    }
  }

  async function* understand(req: UnderstandRequest, ctx: HandlerContext): AsyncGenerator<UnderstandEvent> {
    const call: StandInCall = {
      method: "Understand",
      server: name,
      authorized: false,
      requestId: req.requestId,
      prompt: req.question,
      images: req.images.length,
      steps: req.steps,
    };
    authorize(ctx, call);
    checkRequestId(req.requestId, call);
    const d = directives(req.question);
    if (req.images.length === 0) {
      call.outcome = "error";
      throw new ConnectError("understanding needs an image", Code.InvalidArgument, undefined, [
        { desc: FieldViolationSchema, value: { field: "images", description: "at least one image is required" } },
      ]);
    }
    const sizes = await Promise.all(req.images.map(async (b) => sharp(b).metadata()));
    active++;
    try {
      yield create(UnderstandEventSchema, { event: { case: "accepted", value: { queuePosition: 0, seed: req.seed ?? 0n } } });
      const answer = `A stand-in description of ${sizes.length} image(s) (${sizes.map((s) => `${s.width}x${s.height}`).join(", ")}) for: ${req.question.replace(/\[standin:[^\]]*\]/g, "").trim()}`;
      const words = answer.split(" ");
      const maxTokens = req.maxTokens || 256;
      const emitted = words.slice(0, maxTokens);
      for (let i = 0; i < emitted.length; i++) {
        if (ctx.signal.aborted) {
          call.outcome = "cancelled";
          throw new ConnectError("cancelled", Code.Canceled);
        }
        if (d.fail && i >= d.failAfter) {
          call.outcome = "error";
          throw failure(d.fail);
        }
        if (d.delayMs) await sleep(d.delayMs, undefined, { signal: ctx.signal }).catch(() => undefined);
        yield create(UnderstandEventSchema, { event: { case: "delta", value: { text: (i ? " " : "") + emitted[i] } } });
      }
      const steps = req.steps || maxTokens;
      call.outcome = "ok";
      yield create(UnderstandEventSchema, {
        event: {
          case: "result",
          value: {
            text: emitted.join(" "),
            finishReason: emitted.length < words.length ? "length" : "stop",
            usage: {
              steps,
              tokensProcessed: BigInt(4096 * steps),
              engineMs: 1,
              outputTokens: emitted.length,
              promptTokens: req.question.split(/\s+/).filter(Boolean).length,
            },
          },
        },
      });
    } finally {
      active--;
      call.outcome ??= "cancelled";
    }
  }

  const routes = (router: ConnectRouter) => {
    router.service(DimooService, {
      generate,
      understand,
      async health(_req, ctx) {
        authorize(ctx, { method: "Health", server: name, authorized: false });
        if (opts.mode === "slow-health") await sleep(2500);
        return {
          ready: opts.mode !== "unhealthy",
          models: [{ name: "lumina-dimoo-standin", ready: opts.mode !== "unhealthy" }],
          queueDepth: 0,
          activeRequests: active,
          maxQueue: 64,
        };
      },
      async capabilities(_req, ctx) {
        authorize(ctx, { method: "Capabilities", server: name, authorized: false });
        return {
          tasks: [1, 2, 3, 4, 5, 6, 7, 8, 9],
          maxSide: 2048,
          maxPixels: 2048 * 2048,
          maxSteps: 128,
          maxPromptTokens: 512,
          maxInputPixels: 4096 * 4096,
          maxAnswerTokens: 1024,
          formats: [ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.JPEG],
          model: "lumina-dimoo-standin",
        };
      },
    });
  };

  const sampleImage = await sharp(pixels(64, 48, 7n, "sample"), { raw: { width: 64, height: 48, channels: 3 } }).png().toBuffer();
  const rpc = connectNodeAdapter({ routes });
  const server = http.createServer((req, res) => {
    if (req.url?.startsWith("/__standin/")) {
      if (req.url === "/__standin/calls" && req.method === "GET") {
        res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(calls));
      } else if (req.url === "/__standin/calls" && req.method === "DELETE") {
        calls.length = 0;
        res.writeHead(204).end();
      } else if (req.url === "/__standin/image.png") {
        res.writeHead(200, { "content-type": "image/png", "content-length": sampleImage.length }).end(sampleImage);
      } else if (req.url === "/__standin/redirect.png") {
        res.writeHead(302, { location: "/__standin/image.png" }).end();
      } else if (req.url === "/__standin/slow.png") {
        res.writeHead(200, { "content-type": "image/png", "content-length": sampleImage.length });
        res.write(sampleImage.subarray(0, 16)); // and nothing more until the client gives up
        const stop = setTimeout(() => res.end(), 30_000);
        res.on("close", () => clearTimeout(stop));
      } else {
        res.writeHead(404).end();
      }
      return;
    }
    rpc(req, res);
  });
  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    name,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
