// The run-time engine adapter: the engines behind the contract, reached through the Triton client: one ModelInfer per transformer step
// (all packed requests at once), one per VQ encode/decode. Triton's errors are mapped to what the caller
// of the orchestrator should see: a dead or missing engine is UNAVAILABLE, a request Triton rejects as
// malformed is our bug (INTERNAL), timeouts and cancellations keep their codes.
import { Code } from "@connectrpc/connect";
import {
  TRANSFORMER_CACHED_INPUTS as CI,
  TRANSFORMER_CACHED_MODEL,
  TRANSFORMER_CACHED_OUTPUTS as CO,
  TRANSFORMER_INPUTS as TI,
  TRANSFORMER_MODEL,
  TRANSFORMER_OUTPUTS as TO,
  VQ_DECODER_INPUTS,
  VQ_DECODER_MODEL,
  VQ_DECODER_OUTPUTS,
  VQ_ENCODER_INPUTS,
  VQ_ENCODER_MODEL,
  VQ_ENCODER_OUTPUTS,
} from "../engine/contract";
import { int32ToInt64, int64ToInt32 } from "../lib/numeric";
import type { TritonClient } from "../triton";
import { OrchestratorError } from "../errors";
import type { CachedCall, CachedEngineOutputs } from "./cached-call";
import type { EngineOutputs, PackedCall } from "./packer";
import type { CachedTransformerRunner, EngineCallOptions, EngineHealth, ModelStatus, TransformerRunner, VqRunner } from "./runners";

export interface TritonEngineOptions {
  /** Per transformer call. */
  transformerTimeoutMs?: number;
  /** Per VQ call. */
  vqTimeoutMs?: number;
  /** Per readiness probe. */
  healthTimeoutMs?: number;
  /** Observes every engine call (model, milliseconds, ok). */
  onCall?(model: string, ms: number, ok: boolean): void;
}

export const ENGINE_MODELS = [TRANSFORMER_MODEL, VQ_ENCODER_MODEL, VQ_DECODER_MODEL] as const;

/** Maps a Triton client error (numeric gRPC `code`) to the orchestrator's status. */
export function mapEngineError(err: unknown, model: string): OrchestratorError {
  if (err instanceof OrchestratorError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null;
  const msg = `engine ${model}: ${typeof e?.message === "string" ? e.message : String(err)}`;
  if (e?.name === "AbortError") return new OrchestratorError(Code.Canceled, msg);
  if (e?.name === "TimeoutError") return new OrchestratorError(Code.DeadlineExceeded, msg);
  switch (typeof e?.code === "number" ? e.code : -1) {
    case Code.Canceled:
      return new OrchestratorError(Code.Canceled, msg);
    case Code.DeadlineExceeded:
      return new OrchestratorError(Code.DeadlineExceeded, msg);
    case Code.ResourceExhausted:
      return new OrchestratorError(Code.Unavailable, msg); // the engine is overloaded: try another host
    case Code.Unavailable:
    case Code.NotFound: // model not loaded
    case Code.FailedPrecondition:
    case Code.Aborted:
      return new OrchestratorError(Code.Unavailable, msg);
    default:
      return new OrchestratorError(Code.Internal, msg);
  }
}

export class TritonEngine implements TransformerRunner, VqRunner, EngineHealth {
  /** The stateful model, once `detectCachedModel` found it ready. */
  cached?: CachedTransformerRunner;

  constructor(
    readonly client: TritonClient,
    private readonly opts: TritonEngineOptions = {},
  ) {}

  /**
   * Looks for the stateful model (ML-Cache) once at start-up: a repository without it still serves every
   * request, uncached. Returns whether it is there.
   */
  async detectCachedModel(signal?: AbortSignal): Promise<boolean> {
    let ready = false;
    try {
      ready = await this.client.modelReady(TRANSFORMER_CACHED_MODEL, "", { signal, timeoutMs: this.opts.healthTimeoutMs ?? 2000 });
    } catch {
      ready = false;
    }
    this.cached = ready ? { runCachedStep: (call, opts) => this.runCachedStep(call, opts) } : undefined;
    return ready;
  }

  /** One cached step of a request's sequence (Triton's sequence batcher keeps the state between calls). */
  runCachedStep(call: CachedCall, { requestId, signal }: EngineCallOptions & { signal: AbortSignal }): Promise<CachedEngineOutputs> {
    return this.timed(TRANSFORMER_CACHED_MODEL, async () => {
      const { branches: K, length: L, slots: M } = call;
      const res = await this.client.infer(TRANSFORMER_CACHED_MODEL, {
        inputs: {
          [CI.inputIds.name]: { datatype: "INT32", shape: [K, L], data: call.inputIds },
          [CI.seqLens.name]: { datatype: "INT32", shape: [K], data: call.seqLens },
          [CI.recompute.name]: { datatype: "INT32", shape: [call.recomputeLists, call.recompute.length / call.recomputeLists], data: call.recompute },
          [CI.imageTargets.name]: { datatype: "INT32", shape: [call.targetLists, M], data: call.targets },
          [CI.imageTargetShift.name]: { datatype: "INT32", shape: [K], data: call.targetShift },
          [CI.imageWeights.name]: { datatype: "FP32", shape: [K], data: call.weights },
          [CI.imageUniforms.name]: { datatype: "FP32", shape: [M], data: call.uniforms },
          [CI.imageTemperature.name]: { datatype: "FP32", shape: [1], data: call.temperature },
          [CI.quantileRanks.name]: { datatype: "INT32", shape: [K, 2], data: call.quantileRanks },
        },
        // The selection only when the next step is cached: a byte per position otherwise wasted.
        outputs: [CO.imageTokens.name, CO.imageConfidence.name, ...(call.select ? [CO.recomputeCodes.name, CO.quantileValues.name] : [])],
        parameters: { sequence_id: call.sequenceId, sequence_start: call.start, sequence_end: call.end },
        requestId,
        signal,
        timeoutMs: this.opts.transformerTimeoutMs,
      });
      return {
        tokens: res.tensor(CO.imageTokens.name, "INT32").data,
        confidence: res.tensor(CO.imageConfidence.name, "FP32").data,
        ...(call.select && { codes: res.tensor(CO.recomputeCodes.name, "UINT8").data, quantile: res.tensor(CO.quantileValues.name, "FP32").data }),
      };
    });
  }

  private async timed<T>(model: string, fn: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    try {
      const r = await fn();
      this.opts.onCall?.(model, performance.now() - t0, true);
      return r;
    } catch (err) {
      this.opts.onCall?.(model, performance.now() - t0, false);
      throw mapEngineError(err, model);
    }
  }

  runTransformer(call: PackedCall, { requestId, signal }: { requestId: string; signal: AbortSignal }): Promise<EngineOutputs> {
    return this.timed(TRANSFORMER_MODEL, async () => {
      const { image: im, text: tx } = call;
      const res = await this.client.infer(TRANSFORMER_MODEL, {
        inputs: {
          [TI.inputIds.name]: { datatype: "INT32", shape: [call.rows, call.length], data: call.inputIds },
          [TI.seqLens.name]: { datatype: "INT32", shape: [call.rows], data: call.seqLens },
          [TI.imageTargets.name]: { datatype: "INT32", shape: [im.count, im.lists, im.slots], data: im.targets },
          [TI.imageBranchOffsets.name]: { datatype: "INT32", shape: [im.count, im.branches], data: im.offsets },
          [TI.imageWeights.name]: { datatype: "FP32", shape: [im.count, im.branches], data: im.weights },
          [TI.imageUniforms.name]: { datatype: "FP32", shape: [im.count, im.slots], data: im.uniforms },
          [TI.imageTemperature.name]: { datatype: "FP32", shape: [im.count], data: im.temperature },
          [TI.textTargets.name]: { datatype: "INT32", shape: [tx.count, tx.lists, tx.slots], data: tx.targets },
          [TI.textBranchOffsets.name]: { datatype: "INT32", shape: [tx.count, tx.branches], data: tx.offsets },
          [TI.textWeights.name]: { datatype: "FP32", shape: [tx.count, tx.branches], data: tx.weights },
          [TI.textUniforms.name]: { datatype: "FP32", shape: [tx.count, tx.slots], data: tx.uniforms },
          [TI.textTemperature.name]: { datatype: "FP32", shape: [tx.count], data: tx.temperature },
        },
        outputs: [TO.imageTokens.name, TO.imageConfidence.name, TO.textTokens.name, TO.textProbability.name],
        requestId,
        signal,
        timeoutMs: this.opts.transformerTimeoutMs,
      });
      return {
        imageTokens: res.tensor(TO.imageTokens.name, "INT32").data,
        imageConfidence: res.tensor(TO.imageConfidence.name, "FP32").data,
        textTokens: res.tensor(TO.textTokens.name, "INT32").data,
        textProbability: res.tensor(TO.textProbability.name, "FP32").data,
      };
    });
  }

  encode(pixels: Uint8Array, height: number, width: number, { requestId, signal }: EngineCallOptions): Promise<Int32Array> {
    return this.timed(VQ_ENCODER_MODEL, async () => {
      const res = await this.client.infer(VQ_ENCODER_MODEL, {
        inputs: { [VQ_ENCODER_INPUTS.pixels.name]: { datatype: "UINT8", shape: [1, 3, height, width], data: pixels } },
        outputs: [VQ_ENCODER_OUTPUTS.codes.name],
        requestId: `${requestId}/vq-encode`,
        signal,
        timeoutMs: this.opts.vqTimeoutMs,
      });
      return int64ToInt32(res.tensor(VQ_ENCODER_OUTPUTS.codes.name, "INT64").data);
    });
  }

  decode(codes: Int32Array, h: number, w: number, { requestId, signal }: EngineCallOptions): Promise<Uint8Array> {
    return this.timed(VQ_DECODER_MODEL, async () => {
      const res = await this.client.infer(VQ_DECODER_MODEL, {
        inputs: { [VQ_DECODER_INPUTS.codes.name]: { datatype: "INT64", shape: [1, h, w], data: int32ToInt64(codes) } },
        outputs: [VQ_DECODER_OUTPUTS.pixels.name],
        requestId: `${requestId}/vq-decode`,
        signal,
        timeoutMs: this.opts.vqTimeoutMs,
      });
      return res.tensor(VQ_DECODER_OUTPUTS.pixels.name, "UINT8").data;
    });
  }

  /**
   * Readiness of the three models; throws UNAVAILABLE when Triton cannot be reached. Also looks for the
   * stateful model again, so one that finished loading after start-up is used from then on.
   */
  async models(signal?: AbortSignal): Promise<ModelStatus[]> {
    const timeoutMs = this.opts.healthTimeoutMs ?? 2000;
    void this.detectCachedModel(signal);
    return Promise.all(
      ENGINE_MODELS.map(async (name) => {
        try {
          return { name, ready: await this.client.modelReady(name, "", { signal, timeoutMs }) };
        } catch (err) {
          const e = mapEngineError(err, name);
          if (e.code === Code.Unavailable && (err as { code?: number }).code !== Code.NotFound) throw e;
          return { name, ready: false };
        }
      }),
    );
  }
}
