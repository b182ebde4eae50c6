// config.pbtxt for every model, derived from the engine contract (gpu-backend/src/engine/contract.ts):
//   - dev models:        platform onnxruntime_onnx, CPU instances (model-repository/<m>/config.pbtxt)
//   - production models: platform tensorrt_plan (model-repository/<m>/configs/tensorrt.pbtxt, selected
//     with `tritonserver --model-config-name=tensorrt`, and <out>/<m>/config.pbtxt from build:engines)
// and a check of a config against the inputs/outputs (and implicit state) of the ONNX graph it serves.

import {
  TRANSFORMER_CACHED_INPUTS,
  TRANSFORMER_CACHED_MODEL,
  TRANSFORMER_CACHED_OUTPUTS,
  TRANSFORMER_INPUTS,
  TRANSFORMER_MODEL,
  TRANSFORMER_OUTPUTS,
  VQ_DECODER_INPUTS,
  VQ_DECODER_MODEL,
  VQ_DECODER_OUTPUTS,
  VQ_ENCODER_INPUTS,
  VQ_ENCODER_MODEL,
  VQ_ENCODER_OUTPUTS,
  type TensorSpec,
} from "../../engine/contract";
import { ONNX_FOR_TRITON, TRITON_TYPES } from "./data-types";
import type { OnnxIO, OnnxValueInfo } from "./onnx-io";
import { pbEnum, pbOne, pbText, type PbParsed } from "../../triton/pbtxt";
import { toPbtxt, type PbMessage } from "../../triton/pbtxt-writer";
import { DIMOO_TRANSFORMER_CONFIG, devTransformerConfig, headDim, type LladaConfig } from "../llada/config";
import { cachedSequenceBatching, checkSequenceBatching, type CachedStateLayout } from "./sequence-state";
import {
  cachedTransformerProfiles,
  TRANSFORMER_CACHED_LIMITS,
  transformerProfiles,
  vqDecoderProfile,
  vqEncoderProfile,
  VQ_DECODER_PROFILE_DEFAULTS,
  VQ_ENCODER_PROFILE_DEFAULTS,
  type CachedTransformerLimits,
  type OptimizationProfile,
  type VqProfileOptions,
} from "../../engine/profiles";

export const MODEL_NAMES = [TRANSFORMER_MODEL, TRANSFORMER_CACHED_MODEL, VQ_ENCODER_MODEL, VQ_DECODER_MODEL] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

export interface ModelContract {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** True when every tensor's first dim is the request batch (Triton max_batch_size > 0). */
  batched: boolean;
}

export const MODEL_CONTRACTS: Record<ModelName, ModelContract> = {
  [TRANSFORMER_MODEL]: { inputs: Object.values(TRANSFORMER_INPUTS), outputs: Object.values(TRANSFORMER_OUTPUTS), batched: false },
  [VQ_ENCODER_MODEL]: { inputs: Object.values(VQ_ENCODER_INPUTS), outputs: Object.values(VQ_ENCODER_OUTPUTS), batched: true },
  [VQ_DECODER_MODEL]: { inputs: Object.values(VQ_DECODER_INPUTS), outputs: Object.values(VQ_DECODER_OUTPUTS), batched: true },
  [TRANSFORMER_CACHED_MODEL]: { inputs: Object.values(TRANSFORMER_CACHED_INPUTS), outputs: Object.values(TRANSFORMER_CACHED_OUTPUTS), batched: false },
};

/** The cached transformer's state for a transformer config and a state dtype. */
export function cachedStateLayout(cfg: LladaConfig, dataType: CachedStateLayout["dataType"]): CachedStateLayout {
  return { nLayers: cfg.nLayers, kvWidth: cfg.nKvHeads * headDim(cfg), dataType };
}

/** Idle release of a cached sequence: dev steps run on a CPU (seconds each at 1024x1024), production on a GPU. */
export const DEV_CACHED_IDLE_MICROSECONDS = 120_000_000;
export const CACHED_IDLE_MICROSECONDS = 30_000_000;

/** Config dims of a contract tensor: numeric symbols stay, named ones become -1; the batch dim is dropped for batched models. */
export function configDims(spec: TensorSpec, batched: boolean): number[] {
  const dims = batched ? spec.dims.slice(1) : spec.dims;
  return dims.map((d) => (/^\d+$/.test(d) ? Number(d) : -1));
}

function ioEntries(specs: TensorSpec[], batched: boolean): PbMessage[] {
  return specs.map((s) => ({ name: s.name, data_type: pbEnum(TRITON_TYPES[s.dtype]), dims: configDims(s, batched) }));
}

const HEADER = (what: string) =>
  `# ${what}\n# Generated from gpu-backend/src/engine/contract.ts by gpu-backend/src/builder/repository/model-config.ts;\n# do not edit by hand (test/unit/builder/build-repository.test.ts checks it is current).\n`;

export function renderConfig(cfg: PbMessage, what: string): string {
  return `${HEADER(what)}${toPbtxt(cfg)}\n`;
}

// ---- dev (onnxruntime) -----------------------------------------------------------------------------

export const DEV_VQ_MAX_BATCH = 8;

/**
 * The dev ONNX model config: CPU instances, dynamic batching for the VQ models. `transformer` sets the
 * cached model's state widths (the dev config by default; scripts/bench-ml-cache.ts serves wider ones).
 */
export function devModelConfig(model: ModelName, transformer: LladaConfig = devTransformerConfig()): PbMessage {
  const c = MODEL_CONTRACTS[model];
  return {
    name: model,
    platform: "onnxruntime_onnx",
    max_batch_size: c.batched ? DEV_VQ_MAX_BATCH : 0,
    input: ioEntries(c.inputs, c.batched),
    output: ioEntries(c.outputs, c.batched),
    instance_group: [{ kind: pbEnum("KIND_CPU"), count: 1 }],
    dynamic_batching: c.batched ? { max_queue_delay_microseconds: 1000 } : undefined,
    sequence_batching:
      model === TRANSFORMER_CACHED_MODEL
        ? cachedSequenceBatching(cachedStateLayout(transformer, "TYPE_FP32"), { maxSequences: TRANSFORMER_CACHED_LIMITS.maxSequences, idleMicroseconds: DEV_CACHED_IDLE_MICROSECONDS })
        : undefined,
  };
}

export function renderDevModelConfig(model: ModelName, transformer?: LladaConfig): string {
  return renderConfig(devModelConfig(model, transformer), `${model}: tiny dev model served by onnxruntime (CPU). Production: configs/tensorrt.pbtxt.`);
}

// ---- production (TensorRT) -------------------------------------------------------------------------

export interface TrtConfigOptions {
  transformerProfiles?: OptimizationProfile[];
  /** The transformer whose cached engine is built (default LLaDA-8B / DiMOO), and that engine's limits. */
  transformerConfig?: LladaConfig;
  cachedLimits?: CachedTransformerLimits;
  vqEncoder?: VqProfileOptions;
  vqDecoder?: VqProfileOptions;
  /** VQ instances per GPU (each holds its own activation memory). */
  vqInstances?: number;
  vqQueueDelayMicroseconds?: number;
}

export interface TrtModelConfig {
  config: PbMessage;
  /** Warmup data files, written to `<model>/warmup/<name>` (Triton's `input_data_file`). */
  warmupFiles: Record<string, Uint8Array>;
  profiles: OptimizationProfile[];
}

/** Little-endian int32 values (seq_lens is INT32 in the contract), as Triton reads an input_data_file. */
function int32Bytes(values: number[]): Uint8Array {
  return new Uint8Array(Int32Array.from(values).buffer);
}

/**
 * A transformer engine's config: unbatched (the orchestrator packs the rows), one GPU instance that
 * lists every optimization profile, and ON_PROFILE_CHANGE allocation (each profile's context holds only
 * its own activation memory).
 */
function transformerEngineConfig(base: PbMessage, c: ModelContract, profiles: OptimizationProfile[], extra: PbMessage): PbMessage {
  return {
    ...base,
    max_batch_size: 0,
    input: ioEntries(c.inputs, false),
    output: ioEntries(c.outputs, false),
    instance_group: [{ kind: pbEnum("KIND_GPU"), count: 1, profile: profiles.map((_, i) => String(i)) }],
    ...extra.sequence_batching && { sequence_batching: extra.sequence_batching },
    parameters: [{ key: "execution_context_allocation_strategy", value: { string_value: "ON_PROFILE_CHANGE" } }],
    ...extra.model_warmup && { model_warmup: extra.model_warmup },
  };
}

/**
 * The tensorrt_plan config. Transformer: max_batch_size 0 (the orchestrator packs branch rows itself),
 * one GPU instance using every optimization profile with ON_PROFILE_CHANGE allocation (each profile's
 * context holds only its own activation memory) and one warmup per profile at its opt length. Cached
 * transformer: the same with its two profiles and sequence_batching (sequence-state.ts), and no warmup
 * (Triton's warmup requests belong to no sequence). VQ models: dynamic batching up to the profile's max
 * batch, STATIC allocation (one profile), warmup at opt size.
 */
export function trtModelConfig(model: ModelName, opts: TrtConfigOptions = {}): TrtModelConfig {
  const c = MODEL_CONTRACTS[model];
  const base: PbMessage = { name: model, platform: "tensorrt_plan" };
  if (model === TRANSFORMER_MODEL) {
    const profiles = opts.transformerProfiles ?? transformerProfiles();
    const warmupFiles: Record<string, Uint8Array> = {};
    const warmups: PbMessage[] = profiles.map((p, i) => {
      const L = p.shapes[TRANSFORMER_INPUTS.inputIds.name].opt[1];
      const file = `seq_lens_${L}`;
      warmupFiles[file] = int32Bytes([L]);
      const inputs: PbMessage[] = c.inputs.map((s) => {
        const dims = s.name === TRANSFORMER_INPUTS.inputIds.name ? [1, L] : s.dims.map(() => 1);
        const value: PbMessage = { data_type: pbEnum(TRITON_TYPES[s.dtype]), dims };
        if (s.name === TRANSFORMER_INPUTS.seqLens.name) value.input_data_file = file;
        else value.zero_data = true;
        return { key: s.name, value };
      });
      return { name: `profile${i}_${p.name}_L${L}`, batch_size: 1, count: 1, inputs };
    });
    return {
      profiles,
      warmupFiles,
      config: transformerEngineConfig(base, c, profiles, { model_warmup: warmups }),
    };
  }
  if (model === TRANSFORMER_CACHED_MODEL) {
    const limits = opts.cachedLimits ?? TRANSFORMER_CACHED_LIMITS;
    const layout = cachedStateLayout(opts.transformerConfig ?? DIMOO_TRANSFORMER_CONFIG, "TYPE_BF16");
    const profiles = cachedTransformerProfiles(layout, limits);
    return {
      profiles,
      warmupFiles: {},
      config: transformerEngineConfig(base, c, profiles, {
        sequence_batching: cachedSequenceBatching(layout, { maxSequences: limits.maxSequences, idleMicroseconds: CACHED_IDLE_MICROSECONDS }),
      }),
    };
  }
  const isEnc = model === VQ_ENCODER_MODEL;
  const vq = isEnc ? (opts.vqEncoder ?? VQ_ENCODER_PROFILE_DEFAULTS) : (opts.vqDecoder ?? VQ_DECODER_PROFILE_DEFAULTS);
  const profile = isEnc ? vqEncoderProfile(vq) : vqDecoderProfile(vq);
  const input = c.inputs[0];
  const optShape = profile.shapes[input.name].opt.slice(1);
  return {
    profiles: [profile],
    warmupFiles: {},
    config: {
      ...base,
      max_batch_size: vq.maxBatch,
      input: ioEntries(c.inputs, true),
      output: ioEntries(c.outputs, true),
      instance_group: [{ kind: pbEnum("KIND_GPU"), count: opts.vqInstances ?? 1 }],
      dynamic_batching: { max_queue_delay_microseconds: opts.vqQueueDelayMicroseconds ?? 2000 },
      parameters: [{ key: "execution_context_allocation_strategy", value: { string_value: "STATIC" } }],
      model_warmup: [
        {
          name: `${input.name}_1x${optShape.join("x")}`,
          batch_size: 1,
          count: 1,
          inputs: [{ key: input.name, value: { data_type: pbEnum(TRITON_TYPES[input.dtype]), dims: optShape, zero_data: true } }],
        },
      ],
    },
  };
}

export function renderTrtModelConfig(model: ModelName, opts: TrtConfigOptions = {}): { text: string; warmupFiles: Record<string, Uint8Array>; profiles: OptimizationProfile[] } {
  const t = trtModelConfig(model, opts);
  return {
    text: renderConfig(t.config, `${model}: TensorRT engine (model.plan) written by \`npm run build:engines\`.`),
    warmupFiles: t.warmupFiles,
    profiles: t.profiles,
  };
}

// ---- config vs ONNX --------------------------------------------------------------------------------

/** Problems between a parsed config.pbtxt and the ONNX graph's inputs/outputs (empty = consistent). */
export function checkConfigAgainstOnnx(config: PbParsed, io: OnnxIO): string[] {
  const mbs = Number(pbOne<number>(config, "max_batch_size") ?? 0);
  const model = String(pbOne(config, "name") ?? "?");
  const sequence = checkSequenceBatching(config, io, model);
  const problems = [...sequence.problems];
  for (const [kind, entries, actual] of [
    ["input", (config.input ?? []) as PbParsed[], io.inputs],
    ["output", (config.output ?? []) as PbParsed[], io.outputs],
  ] as const) {
    const byName = new Map<string, OnnxValueInfo>(actual.map((v) => [v.name, v]));
    const seen = new Set<string>();
    for (const e of entries) {
      const name = String(pbOne(e, "name"));
      seen.add(name);
      const v = byName.get(name);
      if (!v) {
        problems.push(`${model}: config ${kind} ${name} is not a graph ${kind}`);
        continue;
      }
      const dt = pbText(pbOne(e, "data_type"));
      if (ONNX_FOR_TRITON[dt] !== v.dtype) problems.push(`${model}: ${kind} ${name} is ${dt} in the config but ${v.dtype} in the graph`);
      const dims = ((e.dims ?? []) as number[]).map(Number);
      const want = mbs > 0 ? [-1, ...dims] : dims;
      if (mbs > 0 && typeof v.dims[0] === "number") problems.push(`${model}: ${kind} ${name} has a fixed first dim ${v.dims[0]} but the config batches it`);
      if (want.length !== v.dims.length) {
        problems.push(`${model}: ${kind} ${name} has rank ${v.dims.length} in the graph, ${want.length} per the config${mbs > 0 ? " (batch dim included)" : ""}`);
        continue;
      }
      want.forEach((d, i) => {
        const g = v.dims[i];
        if (d === -1 && typeof g === "number") problems.push(`${model}: ${kind} ${name} dim ${i} is fixed (${g}) in the graph but -1 in the config`);
        if (d !== -1 && g !== d) problems.push(`${model}: ${kind} ${name} dim ${i} is ${d} in the config but ${g ?? "?"} in the graph`);
      });
    }
    const implicit = kind === "input" ? sequence.inputs : sequence.outputs;
    for (const v of actual) if (!seen.has(v.name) && !implicit.has(v.name)) problems.push(`${model}: graph ${kind} ${v.name} is missing from the config`);
  }
  return problems;
}

// ---- committed repository files --------------------------------------------------------------------

/**
 * The files committed under model-repository/ (paths relative to it): each model's dev config.pbtxt, its
 * production configs/tensorrt.pbtxt (default build options; `tritonserver --model-config-name=tensorrt`
 * selects it) and the transformer's warmup data. The test suite checks the committed copies are current.
 */
export function committedRepositoryFiles(): Record<string, string | Uint8Array> {
  const files: Record<string, string | Uint8Array> = {};
  for (const m of MODEL_NAMES) {
    files[`${m}/config.pbtxt`] = renderDevModelConfig(m);
    const trt = renderTrtModelConfig(m);
    files[`${m}/configs/tensorrt.pbtxt`] = trt.text;
    for (const [f, bytes] of Object.entries(trt.warmupFiles)) files[`${m}/warmup/${f}`] = bytes;
  }
  return files;
}
