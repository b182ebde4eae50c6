// dimoo.v1.DimooService: auth, validation by the task families, admission into the step batcher, event
// streaming, health.
// Wire errors are produced in one place (errors.ts); logs carry ids, sizes, codes and timings only.
import { randomUUID, timingSafeEqual, createHash } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, type ConnectRouter, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import {
  AcceptedSchema,
  CapabilitiesResponseSchema,
  DimooService,
  GenerateEventSchema,
  HealthResponseSchema,
  ImageFormat,
  ModelHealthSchema,
  ProgressSchema,
  UnderstandEventSchema,
  UsageSchema,
  type GenerateEvent,
  type GenerateRequest,
  type UnderstandEvent,
  type UnderstandRequest,
} from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { DRAINING_MESSAGE, type StepBatcher } from "../batcher/step-batcher";
import type { EngineHealth } from "../engine/runners";
import { codeOf, deadlineExceeded, invalidArgument, toOrchestratorError, unavailable } from "../errors";
import type { Limits } from "../tasks/limits";
import { SUPPORTED_TASKS } from "../tasks/params";
import type { GeneratePipeline, GenerateSpec, ImageTask, TextTask, UnderstandPipeline, UnderstandSpec } from "../tasks/task";
import { AsyncQueue } from "./async-queue";
import type { InflightCalls } from "./inflight-calls";
import { deadlineAt } from "./deadline";
import { toConnectError } from "./errors";
import type { Logger } from "./log";
import { codeName, type OrchestratorMetrics } from "./metrics";

/** The service's parts; the task families' own spec and task types flow through to their callbacks. */
export interface ServiceDeps<
  GS extends GenerateSpec = GenerateSpec,
  GT extends ImageTask = ImageTask,
  US extends UnderstandSpec = UnderstandSpec,
  UT extends TextTask = TextTask,
> {
  token: string;
  limits: Limits;
  batcher: StepBatcher;
  generate: GeneratePipeline<GS, GT>;
  understand: UnderstandPipeline<US, UT>;
  health: EngineHealth;
  metrics: OrchestratorMetrics;
  log: Logger;
  modelName: string;
  /** Whether the engine serves the stateful model (ML-Cache) now. */
  mlCache?: () => boolean;
  /** Whether the host wants traffic now (false while it warms up); Health is ready only when it does. */
  serving?: () => boolean;
  /** Open Generate/Understand calls, counted for the drain. */
  inflight?: InflightCalls;
}

/** Whether the host takes new work: a draining or warming host is alive, but the edge should not choose it. */
export function acceptsWork(deps: Pick<ServiceDeps, "batcher" | "serving">): boolean {
  return !deps.batcher.isDraining && (deps.serving?.() ?? true);
}

/** Ready, as Health and /readyz both report it: taking work, and every engine model loaded. */
export function hostReady(deps: Pick<ServiceDeps, "batcher" | "serving">, models: readonly { ready: boolean }[]): boolean {
  return acceptsWork(deps) && models.length > 0 && models.every((m) => m.ready);
}

const digest = (s: string) => createHash("sha256").update(s).digest();

/** The caller's request id (travels into logs and Triton request ids), or a fresh one. */
function requestIdOf(id: string): string {
  if (!id) return randomUUID();
  if (id.length > 128 || !/^[\x21-\x7e]+$/.test(id)) throw invalidArgument("request_id", "must be 1-128 printable ASCII characters without spaces");
  return id;
}

/** Refuses every call without `authorization: Bearer <token>` (constant-time comparison). */
export function authInterceptor(token: string, metrics?: OrchestratorMetrics): Interceptor {
  const want = digest(token);
  return (next) => async (req) => {
    const h = req.header.get("authorization") ?? "";
    const got = h.startsWith("Bearer ") ? h.slice(7).trim() : "";
    if (!got || !timingSafeEqual(digest(got), want)) {
      metrics?.errors.inc({ code: codeName(Code.Unauthenticated) });
      metrics?.requests.inc({ method: req.method.name, code: codeName(Code.Unauthenticated) });
      throw new ConnectError("missing or invalid service token", Code.Unauthenticated);
    }
    return next(req);
  };
}

export function dimooRoutes<GS extends GenerateSpec, GT extends ImageTask, US extends UnderstandSpec, UT extends TextTask>(
  deps: ServiceDeps<GS, GT, US, UT>,
): (router: ConnectRouter) => void {
  const { batcher, metrics, limits } = deps;

  const observe = (method: string, t0: number, err: unknown, log: Logger, extra: Record<string, unknown>) => {
    const seconds = (performance.now() - t0) / 1000;
    const code = err === undefined ? "OK" : codeName(err instanceof ConnectError ? err.code : codeOf(err));
    metrics.requests.inc({ method, code });
    metrics.requestSeconds.observe(seconds, { method });
    if (err !== undefined) metrics.errors.inc({ code });
    const fields = { ...extra, code, ms: Math.round(seconds * 1000) };
    if (err === undefined) log.info("request finished", fields);
    else log.warn("request failed", { ...fields, error: err instanceof Error ? err.message.slice(0, 300) : String(err) });
  };

  /** One streaming call: its request id and logger, then metrics, the log line and the wire error at the end. */
  async function* observed<E>(
    method: string,
    rawRequestId: string,
    extra: Record<string, unknown>,
    body: (requestId: string, log: Logger) => AsyncIterable<E>,
  ): AsyncGenerator<E> {
    const t0 = performance.now();
    let log = deps.log.child({ method });
    let failure: unknown;
    let completed = false;
    deps.inflight?.enter();
    try {
      const requestId = requestIdOf(rawRequestId);
      log = log.child({ requestId });
      yield* body(requestId, log);
      completed = true;
    } catch (err) {
      failure = err;
      throw toConnectError(err);
    } finally {
      // A stream closed by the transport (caller gone) ends here without an error of its own.
      if (!completed && failure === undefined) failure = new ConnectError("caller went away", Code.Canceled);
      observe(method, t0, failure === undefined ? undefined : toConnectError(failure), log, extra);
      deps.inflight?.leave();
    }
  }

  function generate(req: GenerateRequest, ctx: HandlerContext): AsyncGenerator<GenerateEvent> {
    const extra: Record<string, unknown> = { task: req.task, width: req.width, height: req.height, steps: req.steps };
    return observed("Generate", req.requestId, extra, async function* (requestId, log) {
      // Refused before any work, so the edge can send it to another host (nothing ran, nothing is charged).
      if (batcher.isDraining) throw unavailable(DRAINING_MESSAGE);
      const spec = await deps.generate.validate({ ...req, requestId });
      Object.assign(extra, { task: spec.task, width: spec.width, height: spec.height, steps: spec.steps, seed: spec.seed });
      const deadline = deadlineAt(req.deadlineMs, ctx.timeoutMs(), limits);
      const events = new AsyncQueue<GenerateEvent>();
      const usage = create(UsageSchema, {});
      // Events leave in order even when a progress event waits for its preview.
      let chain: Promise<void> = Promise.resolve();
      const emit = (ev: GenerateEvent | Promise<GenerateEvent | undefined>) => {
        chain = chain.then(async () => {
          const e = await ev;
          if (e) events.push(e);
        });
      };
      const callCtx = { requestId, signal: ctx.signal };
      batcher.submit({
        requestId,
        deadlineAt: deadline,
        signal: ctx.signal,
        tenant: req.tenant?.id,
        weight: req.tenant?.weight,
        prepare: (signal) => deps.generate.prepare(spec, { requestId, signal }),
        onAccepted: (position) => {
          emit(create(GenerateEventSchema, { event: { case: "accepted", value: create(AcceptedSchema, { queuePosition: position, seed: spec.seed }) } }));
          if (position > 0) log.info("queued", { position });
        },
        onStep: (t, info) => {
          usage.steps = info.step;
          usage.tokensProcessed += BigInt(info.tokens);
          usage.engineMs += info.engineMs;
          const progress = create(ProgressSchema, { step: info.step, totalSteps: info.totalSteps, maskedRemaining: t.maskedRemaining });
          const wrap = () => create(GenerateEventSchema, { event: { case: "progress", value: progress } });
          if (req.previewEvery > 0 && info.step % req.previewEvery === 0 && !t.isDone()) {
            // The pipeline snapshots the task synchronously; decoding runs off the step loop.
            const p = deps.generate.preview(spec, t, callCtx).then(
              (img) => {
                progress.preview = img.bytes;
                progress.previewWidth = img.width;
                progress.previewHeight = img.height;
                return wrap();
              },
              (err) => {
                log.warn("preview failed", { error: String(err).slice(0, 200) });
                return wrap();
              },
            );
            emit(p);
          } else {
            emit(wrap());
          }
        },
        onDone: (t) => {
          usage.outputTokens = t.outputTokens;
          usage.promptTokens = t.promptTokens;
          usage.cachedSteps = t.cachedSteps;
          const remaining = Math.max(1, deadline - Date.now());
          const finished = (async () => {
            const timer = AbortSignal.timeout(remaining);
            const signal = AbortSignal.any([ctx.signal, timer]);
            const img = await Promise.race([
              deps.generate.finish(spec, t, { requestId, signal }),
              new Promise<never>((_, reject) =>
                signal.addEventListener("abort", () => reject(timer.aborted ? deadlineExceeded() : toOrchestratorError(signal.reason)), { once: true }),
              ),
            ]);
            return create(GenerateEventSchema, {
              event: {
                case: "result",
                value: { image: img.bytes, mimeType: img.mimeType, width: img.width, height: img.height, seed: spec.seed, usage },
              },
            });
          })();
          emit(finished);
          chain = chain.then(
            () => events.close(),
            (err) => events.fail(err),
          );
        },
        onError: (err) => {
          chain = chain.then(
            () => events.fail(err),
            () => events.fail(err),
          );
        },
      });
      yield* events;
    });
  }

  function understand(req: UnderstandRequest, ctx: HandlerContext): AsyncGenerator<UnderstandEvent> {
    const extra: Record<string, unknown> = { maxTokens: req.maxTokens };
    return observed("Understand", req.requestId, extra, async function* (requestId) {
      if (batcher.isDraining) throw unavailable(DRAINING_MESSAGE);
      const spec = await deps.understand.validate({ ...req, requestId });
      Object.assign(extra, { maxTokens: spec.maxTokens, seed: spec.seed });
      const deadline = deadlineAt(req.deadlineMs, ctx.timeoutMs(), limits);
      const events = new AsyncQueue<UnderstandEvent>();
      const usage = create(UsageSchema, {});
      batcher.submit({
        requestId,
        deadlineAt: deadline,
        signal: ctx.signal,
        tenant: req.tenant?.id,
        weight: req.tenant?.weight,
        prepare: (signal) => deps.understand.prepare(spec, { requestId, signal }),
        onAccepted: (position) =>
          events.push(create(UnderstandEventSchema, { event: { case: "accepted", value: { queuePosition: position, seed: spec.seed } } })),
        onStep: (t, info) => {
          usage.steps = info.step;
          usage.tokensProcessed += BigInt(info.tokens);
          usage.engineMs += info.engineMs;
          const delta = t.takeDelta();
          if (delta) events.push(create(UnderstandEventSchema, { event: { case: "delta", value: { text: delta } } }));
        },
        onDone: (t) => {
          usage.outputTokens = t.outputTokens;
          usage.promptTokens = t.promptTokens;
          const delta = t.takeDelta();
          if (delta) events.push(create(UnderstandEventSchema, { event: { case: "delta", value: { text: delta } } }));
          events.push(create(UnderstandEventSchema, { event: { case: "result", value: { text: t.text(), finishReason: t.finishReason(), usage } } }));
          events.close();
        },
        onError: (err) => events.fail(err),
      });
      yield* events;
    });
  }

  return (router: ConnectRouter) => {
    router.service(DimooService, {
      generate,
      understand,
      async health(_req, ctx) {
        let models: { name: string; ready: boolean }[] = [];
        try {
          models = await deps.health.models(AbortSignal.any([ctx.signal, AbortSignal.timeout(2000)]));
        } catch (err) {
          // Expected while the host starts (its engine may come up after it): only news once it serves.
          const level = deps.serving?.() === false ? "debug" : "warn";
          deps.log[level]("health check failed", { error: String(err).slice(0, 200) });
        }
        return create(HealthResponseSchema, {
          ready: hostReady(deps, models),
          models: models.map((m) => create(ModelHealthSchema, m)),
          queueDepth: batcher.queueDepth,
          activeRequests: batcher.activeCount,
          maxQueue: batcher.maxQueue,
        });
      },
      async capabilities() {
        return create(CapabilitiesResponseSchema, {
          tasks: SUPPORTED_TASKS,
          maxSide: limits.maxSide,
          maxPixels: limits.maxPixels,
          maxSteps: limits.maxSteps,
          maxPromptTokens: limits.maxPromptTokens,
          maxInputPixels: limits.maxInputPixels,
          maxAnswerTokens: limits.maxAnswerTokens,
          formats: [ImageFormat.PNG, ImageFormat.WEBP, ImageFormat.JPEG],
          model: deps.modelName,
          mlCache: deps.mlCache?.() ?? false,
        });
      },
    });
  };
}
