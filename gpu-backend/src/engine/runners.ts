// What the orchestrator needs from the engines, as interfaces: run one packed transformer step, VQ-encode,
// VQ-decode, report readiness. TritonEngine (triton-engine.ts) implements them over the Triton client;
// tests and benchmarks plug in fakes. Everything above this layer (batcher, tasks, service) sees only these.
import type { CachedCall, CachedEngineOutputs } from "./cached-call";
import type { EngineOutputs, PackedCall } from "./packer";

export interface EngineCallOptions {
  /** Names the call in Triton's logs and traces. */
  requestId: string;
  signal?: AbortSignal;
}

export interface TransformerRunner {
  /** Runs one packed transformer call. */
  runTransformer(call: PackedCall, opts: EngineCallOptions & { signal: AbortSignal }): Promise<EngineOutputs>;
  /** The stateful model, where the engine serves it. */
  readonly cached?: CachedTransformerRunner;
}

export interface VqRunner {
  /** pixels [1,3,H,W] uint8 (planar RGB) → codes [1,H/16,W/16], codebook indices 0..8191. */
  encode(pixels: Uint8Array, height: number, width: number, opts: EngineCallOptions): Promise<Int32Array>;
  /** codes [1,h,w] → pixels [1,3,16h,16w] uint8 (planar RGB). */
  decode(codes: Int32Array, h: number, w: number, opts: EngineCallOptions): Promise<Uint8Array>;
}

export interface ModelStatus {
  name: string;
  ready: boolean;
}

export interface EngineHealth {
  /** Readiness of every model the orchestrator uses; throws or returns ready=false when unreachable. */
  models(signal?: AbortSignal): Promise<ModelStatus[]>;
}

/** The stateful transformer (ML-Cache): one request's cached step per call, in its own engine sequence. */
export interface CachedTransformerRunner {
  runCachedStep(call: CachedCall, opts: EngineCallOptions & { signal: AbortSignal }): Promise<CachedEngineOutputs>;
}
