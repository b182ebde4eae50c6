// Model configuration handling of the embedded backend: parse config.pbtxt, fill in Triton's defaults
// (NormalizeModelConfig / NormalizeInstanceGroup), validate with Triton's messages, and auto-complete or
// check inputs/outputs against the loaded model (what Triton's onnxruntime backend does at load).

import { datatypeOfConfig } from "../triton/datatypes";
import type { ModelConfig, ModelInput, ModelOutput } from "../triton/model-config";
import type { IOInfo } from "./executor";
import { parseTextProto } from "../triton/pbtxt";

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Triton's SEQUENCE_IDLE_DEFAULT_MICROSECONDS. */
export const SEQUENCE_IDLE_DEFAULT_US = 1_000_000;

export type BackendKind = "onnxruntime" | "identity";

export function parseModelConfig(text: string): ModelConfig {
  return parseTextProto(text, "inference.ModelConfig") as ModelConfig;
}

/** An empty config (all proto3 defaults) for a model directory without config.pbtxt. */
export function emptyModelConfig(): ModelConfig {
  return parseModelConfig("");
}

export function backendOf(config: ModelConfig): BackendKind {
  const b = config.backend;
  const p = config.platform;
  if (b === "onnxruntime" || p === "onnxruntime_onnx") return "onnxruntime";
  if (b === "identity") return "identity";
  throw new ConfigError(
    `unsupported backend '${b || p || "(none)"}' for model '${config.name}': the embedded backend serves platform 'onnxruntime_onnx' (backend 'onnxruntime') and backend 'identity'`,
  );
}

function validateIO(io: ModelInput | ModelOutput, maxBatchSize: number, prefix: string): void {
  if (!io.name) throw new ConfigError(`${prefix}must specify 'name'`);
  const p = `${prefix}'${io.name}' `;
  if (io.data_type === "TYPE_INVALID") throw new ConfigError(`${p}must specify 'data_type'`);
  if (io.dims.length === 0) throw new ConfigError(`${p}must specify 'dims'`);
  if (io.reshape && io.reshape.shape.length === 0 && maxBatchSize === 0) {
    throw new ConfigError(`${p}cannot have empty reshape for non-batching model as scalar tensors are not supported`);
  }
  for (const d of io.dims) {
    if (d < 1 && d !== -1) throw new ConfigError(`${p}dimension must be integer >= 1, or -1 to indicate a variable-size dimension`);
  }
  if (io.reshape) {
    for (const d of io.reshape.shape) {
      if (d < 1 && d !== -1) throw new ConfigError(`${p}reshape dimensions must be integer >= 1, or -1 to indicate a variable-size dimension`);
    }
    const fixed = (dims: number[]) => dims.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
    const vars = (dims: number[]) => dims.filter((d) => d === -1).length;
    if (vars(io.dims) !== vars(io.reshape.shape)) throw new ConfigError(`${p}has different number of variable-size dimensions for dims and reshape`);
    if (fixed(io.dims) !== fixed(io.reshape.shape)) throw new ConfigError(`${p}has different size for dims and reshape`);
  }
}

/**
 * Fills in Triton's defaults and validates. `dirName` is the model directory name (the model's name).
 * Inputs and outputs may still be empty here; `completeFromModel` fills them from the loaded model.
 */
export function normalizeModelConfig(config: ModelConfig, dirName: string): ModelConfig {
  const c = structuredClone(config);
  if (!c.name) c.name = dirName;
  if (c.name !== dirName) {
    throw new ConfigError(`unexpected model name '${c.name}' in config.pbtxt of model directory '${dirName}' (they must match)`);
  }
  if (c.platform === "onnxruntime_onnx" && !c.backend) c.backend = "onnxruntime";
  if (c.backend === "onnxruntime" && !c.platform) c.platform = "onnxruntime_onnx";
  const backend = backendOf(c);
  if (c.ensemble_scheduling) throw new ConfigError(`ensemble scheduling is not supported by the embedded backend (model '${c.name}')`);
  if (c.model_transaction_policy?.decoupled) throw new ConfigError(`decoupled models are not supported by the embedded backend (model '${c.name}')`);
  if (backend === "onnxruntime" && !c.default_model_filename) c.default_model_filename = "model.onnx";

  if (!c.version_policy || !c.version_policy.policy_choice) {
    c.version_policy = { latest: { num_versions: 1 }, policy_choice: "latest" };
  }
  if (c.max_batch_size < 0) throw new ConfigError(`'max_batch_size' must be non-negative value for ${c.name}`);

  for (const io of c.input) validateIO(io, c.max_batch_size, "model input ");
  for (const io of c.output) validateIO(io, c.max_batch_size, "model output ");

  if (c.dynamic_batching) {
    const db = c.dynamic_batching;
    if (db.preferred_batch_size.length === 0 && c.max_batch_size > 0) db.preferred_batch_size = [c.max_batch_size];
    for (const s of db.preferred_batch_size) {
      if (s < 1) throw new ConfigError(`dynamic batching preferred size must be positive for ${c.name}`);
      if (s > c.max_batch_size) throw new ConfigError(`dynamic batching preferred size must be <= max batch size for ${c.name}`);
    }
  }
  if (c.sequence_batching) {
    const sb = c.sequence_batching;
    if (!sb.max_sequence_idle_microseconds) sb.max_sequence_idle_microseconds = SEQUENCE_IDLE_DEFAULT_US;
    if (sb.oldest && sb.oldest.preferred_batch_size.length === 0 && c.max_batch_size > 0) sb.oldest.preferred_batch_size = [c.max_batch_size];
    validateSequenceControls(c);
    for (const st of sb.state) {
      if (!st.input_name || !st.output_name) throw new ConfigError(`state of model '${c.name}' must specify 'input_name' and 'output_name'`);
      if (st.data_type === "TYPE_INVALID") throw new ConfigError(`state '${st.input_name}' of model '${c.name}' must specify 'data_type'`);
      if (st.use_growable_memory && !st.use_same_buffer_for_input_output) {
        throw new ConfigError(`In order to 'use_growable_memory', you must also enable 'use_single_buffer' for state input name '${st.input_name}'.`);
      }
      if (st.initial_state.length > 1) {
        throw new ConfigError(`initial_state field for state input '${st.input_name}' must contain exactly one or zero element. Found '${st.initial_state.length}' elements.`);
      }
      const init = st.initial_state[0];
      if (init) {
        if (init.data_type !== st.data_type) {
          throw new ConfigError(`The data type used for 'initial_state' field of state '${st.input_name}' does not match the state data type.`);
        }
        if (!init.name) throw new ConfigError(`Field 'name' must be set when using initial_state for state input '${st.input_name}'.`);
        if (init.dims.some((d) => d < 0)) throw new ConfigError(`'initial_state' field for state input name '${st.input_name}' contains variable dimensions.`);
        if (!init.state_data) throw new ConfigError(`initial_state setting expects state'${st.input_name}' to have state_data set`);
      }
    }
  }

  // Optimization defaults Triton adds for non-ensemble models.
  const opt = (c.optimization ?? {}) as Record<string, unknown>;
  opt.input_pinned_memory ??= { enable: true };
  opt.output_pinned_memory ??= { enable: true };
  c.optimization = opt;

  // Instance groups: default one group; KIND_AUTO becomes KIND_CPU (no GPUs here); count defaults to 2 for
  // onnxruntime CPU instances and 1 otherwise, as in Triton.
  if (c.instance_group.length === 0) {
    c.instance_group = [{ name: c.name, kind: "KIND_CPU", count: 0, gpus: [], profile: [], passive: false, host_policy: "", secondary_devices: [], rate_limiter: null }];
  }
  c.instance_group.forEach((g, i) => {
    if (!g.name) g.name = `${c.name}_${i}`;
    if (g.kind === "KIND_AUTO") g.kind = "KIND_CPU";
    if (g.count < 1) g.count = g.kind === "KIND_CPU" && backend === "onnxruntime" ? 2 : 1;
  });
  return c;
}

function validateSequenceControls(c: ModelConfig): void {
  const sb = c.sequence_batching;
  if (!sb) return;
  const seenKinds = new Set<string>();
  for (const ci of sb.control_input) {
    if (!ci.name) throw new ConfigError(`sequence batching control tensor must have a name for ${c.name}`);
    if (ci.control.length > 1) throw new ConfigError(`sequence batching control tensor '${ci.name}' is specified for multiple control kinds for ${c.name}`);
    for (const ctl of ci.control) {
      if (seenKinds.has(ctl.kind)) throw new ConfigError(`sequence batching specifies multiple ${ctl.kind} tensors for ${c.name}`);
      seenKinds.add(ctl.kind);
      const n = [ctl.int32_false_true.length, ctl.fp32_false_true.length, ctl.bool_false_true.length].filter((x) => x > 0).length;
      if (ctl.kind === "CONTROL_SEQUENCE_CORRID") {
        if (n > 0) throw new ConfigError(`sequence batching must not specify either 'int32_false_true', 'fp32_false_true' or 'bool_false_true' for ${c.name}`);
        if (ctl.data_type === "TYPE_INVALID") throw new ConfigError(`sequence batching control tensor must specify a data_type value for ${c.name}`);
      } else {
        if (n === 0) throw new ConfigError(`sequence batching must specify either 'int32_false_true', 'fp32_false_true' or 'bool_false_true' for ${c.name}`);
        if (n > 1) throw new ConfigError(`sequence batching specifies more than one from 'int32_false_true', 'fp32_false_true' and 'bool_false_true' for ${c.name}`);
        for (const [arr, key] of [
          [ctl.int32_false_true, "int32_false_true"],
          [ctl.fp32_false_true, "fp32_false_true"],
          [ctl.bool_false_true, "bool_false_true"],
        ] as const) {
          if (arr.length > 0 && arr.length !== 2) throw new ConfigError(`sequence batching control '${key}' must have exactly 2 entries for ${c.name}`);
        }
      }
    }
  }
}

/** Names of model inputs fed by the sequence batcher (state and control tensors), not by requests. */
export function implicitInputNames(c: ModelConfig): Set<string> {
  const s = new Set<string>();
  for (const st of c.sequence_batching?.state ?? []) s.add(st.input_name);
  for (const ci of c.sequence_batching?.control_input ?? []) s.add(ci.name);
  return s;
}

function ioFromModel(info: IOInfo, maxBatchSize: number): { name: string; data_type: string; dims: number[]; reshape?: { shape: number[] } } {
  const dims = maxBatchSize > 0 ? info.dims.slice(1) : info.dims.slice();
  // A tensor that is only the batch dimension (or a scalar) is [1] in the config, reshaped to [] for the model.
  if (dims.length === 0) return { name: info.name, data_type: info.configType, dims: [1], reshape: { shape: [] } };
  return { name: info.name, data_type: info.configType, dims };
}

/**
 * Completes missing inputs/outputs from the model (Triton's auto-complete) and checks the configured ones
 * against it (names, datatypes, ranks), as Triton's onnxruntime backend does when loading.
 */
export function completeFromModel(c: ModelConfig, modelInputs: IOInfo[], modelOutputs: IOInfo[]): ModelConfig {
  const implicit = implicitInputNames(c);
  const stateOutputs = new Set((c.sequence_batching?.state ?? []).map((s) => s.output_name));
  if (c.input.length === 0) {
    const base = structuredClone((parseTextProto('input [ { name: "x" } ]', "inference.ModelConfig") as ModelConfig).input[0]);
    c.input = modelInputs
      .filter((m) => !implicit.has(m.name))
      .map((m) => ({ ...structuredClone(base), ...ioFromModel(m, c.max_batch_size) }) as ModelInput);
  }
  if (c.output.length === 0) {
    const base = structuredClone((parseTextProto('output [ { name: "x" } ]', "inference.ModelConfig") as ModelConfig).output[0]);
    c.output = modelOutputs
      .filter((m) => !stateOutputs.has(m.name))
      .map((m) => ({ ...structuredClone(base), ...ioFromModel(m, c.max_batch_size) }) as ModelOutput);
  }
  for (const io of c.input) validateIO(io, c.max_batch_size, "model input ");
  for (const io of c.output) validateIO(io, c.max_batch_size, "model output ");

  const check = (kind: "input" | "output", name: string, dataType: string, dims: number[] | undefined, model: IOInfo[]) => {
    const m = model.find((x) => x.name === name);
    if (!m) {
      throw new ConfigError(`unexpected inference ${kind} '${name}', allowed ${kind}s are: ${model.map((x) => x.name).join(", ")}`);
    }
    if (m.configType === "TYPE_INVALID") throw new ConfigError(`model ${kind} '${name}' has a datatype the embedded backend cannot carry`);
    if (m.configType !== dataType) {
      throw new ConfigError(`unexpected datatype ${dataType} for inference ${kind} '${name}', expecting ${m.configType}`);
    }
    if (dims !== undefined && m.dims.length > 0) {
      const full = c.max_batch_size > 0 ? [-1, ...dims] : dims;
      const ok = full.length === m.dims.length && full.every((d, i) => d === -1 || m.dims[i] === -1 || m.dims[i] === d);
      if (!ok) {
        throw new ConfigError(
          `model '${c.name}', tensor '${name}': the model expects ${m.dims.length} dimensions (shape [${m.dims.join(",")}]) but the model configuration specifies ${full.length} dimensions (shape [${full.join(",")}])`,
        );
      }
    }
  };
  for (const io of c.input) check("input", io.name, io.data_type, io.reshape ? io.reshape.shape : io.dims, modelInputs);
  for (const io of c.output) check("output", io.name, io.data_type, io.reshape ? io.reshape.shape : io.dims, modelOutputs);
  for (const st of c.sequence_batching?.state ?? []) {
    check("input", st.input_name, st.data_type, undefined, modelInputs);
    check("output", st.output_name, st.data_type, undefined, modelOutputs);
  }
  const fed = new Set([...c.input.map((i) => i.name), ...implicit]);
  const missing = modelInputs.filter((m) => !fed.has(m.name)).map((m) => m.name);
  if (missing.length) throw new ConfigError(`model '${c.name}' has inputs the configuration does not provide: ${missing.join(", ")}`);
  for (const io of [...c.input, ...c.output]) {
    if (io.data_type === "TYPE_BF16") throw new ConfigError(`model '${c.name}': TYPE_BF16 is not supported by the onnxruntime backend`);
  }
  return c;
}

/** Config I/O for the identity backend: output i mirrors input i. */
export function identityIO(c: ModelConfig): { inputs: IOInfo[]; outputs: IOInfo[] } {
  if (c.input.length !== c.output.length) {
    throw new ConfigError(`identity model '${c.name}' needs as many outputs as inputs (${c.input.length} inputs, ${c.output.length} outputs)`);
  }
  c.input.forEach((inp, i) => {
    const out = c.output[i];
    if (datatypeOfConfig(inp.data_type) !== datatypeOfConfig(out.data_type)) {
      throw new ConfigError(`identity model '${c.name}': output '${out.name}' must have the datatype of input '${inp.name}'`);
    }
  });
  const info = (io: ModelInput | ModelOutput): IOInfo => ({ name: io.name, configType: io.data_type, dims: io.dims });
  return { inputs: c.input.map(info), outputs: c.output.map(info) };
}
