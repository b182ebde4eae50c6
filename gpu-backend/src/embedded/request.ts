// Turns a ModelInferRequest into a validated request for one model version, in Triton's order and with
// Triton's messages and codes: request parameters (infer_handler.cc SetInferenceRequestMetadata), input
// data (InferGRPCToInput), then normalization (core infer_request.cc Normalize: requested outputs, input
// count, batch size, datatype, shape, byte size / BYTES framing).

import { serializeBytes } from "../triton/codec";
import { ELEMENT_SIZE, datatypeOfConfig, elementCount, isDataType, type DataType } from "../triton/datatypes";
import { Status } from "../triton/errors";
import type { ModelConfig, ModelInput } from "../triton/model-config";
import type { InferParameterMsg, InferTensorContentsMsg, ModelInferRequestMsg } from "../triton/proto";
import type { RawTensor } from "./executor";

export class RpcError extends Error {
  override name = "RpcError";
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

export const invalidArg = (msg: string) => new RpcError(Status.INVALID_ARGUMENT, msg);

export type SequenceId = bigint | string;

export interface RequestParams {
  /** 0n / "" = not in a sequence. */
  sequenceId: SequenceId;
  sequenceStart: boolean;
  sequenceEnd: boolean;
  priority: number;
  timeoutUs: number;
  custom: Record<string, string | number | boolean>;
}

export interface PreparedRequest {
  id: string;
  /** "[request id: <id>] " as Triton prefixes many messages. */
  logPrefix: string;
  /** Tensors as fed to the model (full shapes, reshape applied), by input name. */
  inputs: Map<string, RawTensor>;
  /** Batch size for batching models; 1 for non-batching models (what statistics count). */
  batchSize: number;
  /** Output names to return, in config order. */
  requested: string[];
  params: RequestParams;
  /** Non-batch shapes and datatypes: requests with equal keys can share a dynamic batch. */
  batchKey: string;
}

const DTYPE_STRING_INVALID = "INVALID";

export function logPrefixOf(id: string): string {
  return `[request id: ${id || "<id_unknown>"}] `;
}

function dims(list: readonly number[]): string {
  return `[${list.join(",")}]`;
}

/** Request parameters, typed as Triton requires. */
export function parseParameters(params: Record<string, InferParameterMsg> | undefined): RequestParams {
  const out: RequestParams = { sequenceId: 0n, sequenceStart: false, sequenceEnd: false, priority: 0, timeoutUs: 0, custom: {} };
  for (const [key, p] of Object.entries(params ?? {})) {
    const choice = p.parameter_choice;
    if (key === "sequence_id") {
      if (choice === "int64_param") out.sequenceId = BigInt(p.int64_param as string | number);
      else if (choice === "string_param") out.sequenceId = p.string_param as string;
      else throw invalidArg("invalid value type for 'sequence_id' parameter, expected int64_param or string_param.");
    } else if (key === "sequence_start" || key === "sequence_end") {
      if (choice !== "bool_param") throw invalidArg(`invalid value type for '${key}' parameter, expected bool_param.`);
      if (key === "sequence_start") out.sequenceStart = p.bool_param === true;
      else out.sequenceEnd = p.bool_param === true;
    } else if (key === "priority") {
      if (choice === "int64_param") {
        const v = BigInt(p.int64_param as string | number);
        if (v < 0n) throw invalidArg("invalid value for 'priority', expected value >= 0.");
        out.priority = Number(v);
      } else if (choice === "uint64_param") out.priority = Number(BigInt(p.uint64_param as string | number));
      else throw invalidArg("invalid value type for 'priority' parameter, expected int64_param or uint64_param.");
    } else if (key === "timeout") {
      if (choice !== "int64_param") throw invalidArg("invalid value type for 'timeout' parameter, expected int64_param.");
      out.timeoutUs = Number(BigInt(p.int64_param as string | number));
    } else if (key.startsWith("triton_")) {
      if (key !== "triton_enable_empty_final_response") {
        throw invalidArg(
          "parameter keys starting with 'triton_' are reserved for Triton usage. Only the following keys starting with 'triton_' are allowed: triton_enable_empty_final_response",
        );
      }
      if (choice !== "bool_param") throw invalidArg(`invalid value type for '${key}' parameter, expected bool_param.`);
    } else {
      if (choice === "int64_param") out.custom[key] = Number(p.int64_param);
      else if (choice === "bool_param") out.custom[key] = p.bool_param as boolean;
      else if (choice === "string_param") out.custom[key] = p.string_param as string;
      else if (choice === "double_param") out.custom[key] = p.double_param as number;
      else throw invalidArg(`invalid value type for '${key}' parameter, expected int64_param, bool_param, or string_param.`);
    }
  }
  return out;
}

function hasContents(c: Partial<InferTensorContentsMsg> | null | undefined): c is Partial<InferTensorContentsMsg> {
  if (!c) return false;
  return Object.values(c).some((v) => Array.isArray(v) && v.length > 0);
}

function le(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

/** Typed `contents` to raw bytes, with Triton's datatype checks (InferGRPCToInputHelper). */
function rawFromContents(name: string, model: string, dt: string, c: Partial<InferTensorContentsMsg>): Uint8Array {
  let found: Uint8Array | undefined;
  const take = (tensorDt: string, make: () => Uint8Array) => {
    if (found !== undefined) {
      throw invalidArg(`unexpected explicit tensor data for input tensor '${name}' for model '${model}', binary data was already supplied.`);
    }
    if (tensorDt !== dt) {
      throw invalidArg(`unexpected explicit tensor data for input tensor '${name}' for model '${model}' of type '${tensorDt}', expected datatype '${dt}'`);
    }
    found = make();
  };
  const n = <T>(a: T[] | undefined) => (a ?? []).length > 0;
  if (n(c.bool_contents)) take("BOOL", () => Uint8Array.from(c.bool_contents as boolean[], (b) => (b ? 1 : 0)));
  if (n(c.int_contents)) {
    const v = c.int_contents as number[];
    if (dt === "INT8") take("INT8", () => le(Int8Array.from(v)));
    else if (dt === "INT16") take("INT16", () => le(Int16Array.from(v)));
    else take("INT32", () => le(Int32Array.from(v)));
  }
  if (n(c.int64_contents)) take("INT64", () => le(BigInt64Array.from(c.int64_contents as (string | number)[], (x) => BigInt(x))));
  if (n(c.uint_contents)) {
    const v = c.uint_contents as number[];
    if (dt === "UINT8") take("UINT8", () => Uint8Array.from(v));
    else if (dt === "UINT16") take("UINT16", () => le(Uint16Array.from(v)));
    else take("UINT32", () => le(Uint32Array.from(v)));
  }
  if (n(c.uint64_contents)) take("UINT64", () => le(BigUint64Array.from(c.uint64_contents as (string | number)[], (x) => BigInt(x))));
  if (n(c.fp32_contents)) take("FP32", () => le(Float32Array.from(c.fp32_contents as number[])));
  if (n(c.fp64_contents)) take("FP64", () => le(Float64Array.from(c.fp64_contents as number[])));
  if (n(c.bytes_contents)) take("BYTES", () => serializeBytes(c.bytes_contents as Uint8Array[]));
  return found ?? new Uint8Array(0);
}

/** Triton's ValidateBytesInputs for one buffer. */
function validateBytes(prefix: string, name: string, model: string, raw: Uint8Array, count: number): void {
  const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let pos = 0;
  let checked = 0;
  while (pos < raw.byteLength) {
    const remaining = raw.byteLength - pos;
    if (remaining < 4) {
      throw invalidArg(
        `${prefix}incomplete string length indicator for inference input '${name}' for model '${model}', expecting 4 bytes but only ${remaining} bytes available. Please make sure the string length indicator is in one buffer.`,
      );
    }
    const len = dv.getUint32(pos, true);
    checked++;
    if (checked > count) {
      throw invalidArg(`${prefix}unexpected number of string elements ${checked} for inference input '${name}' for model '${model}', expecting ${count}`);
    }
    pos += 4 + len;
  }
  if (pos > raw.byteLength || checked !== count) {
    throw invalidArg(`${prefix}expected ${count} string elements for inference input '${name}' for model '${model}', got ${checked}`);
  }
}

/** Validates `msg` against the model config and returns the prepared request. */
export function prepareRequest(msg: ModelInferRequestMsg, config: ModelConfig): PreparedRequest {
  const model = config.name;
  const id = msg.id ?? "";
  const P = logPrefixOf(id);
  const params = parseParameters(msg.parameters);

  // Inputs as added to the request (name, datatype, shape) and their data.
  const given = new Map<string, { datatype: string; shape: number[]; raw: Uint8Array }>();
  for (const io of msg.inputs) {
    if (given.has(io.name)) throw invalidArg(`${P}input '${io.name}' already exists in request`);
    given.set(io.name, { datatype: io.datatype, shape: io.shape.map(Number), raw: new Uint8Array(0) });
  }
  const requestedSet = new Set<string>();
  for (const o of msg.outputs) {
    if (requestedSet.has(o.name)) throw invalidArg(`${P}output '${o.name}' already exists in request`);
    requestedSet.add(o.name);
  }
  let rawIndex = 0;
  for (const io of msg.inputs) {
    const entry = given.get(io.name) as { datatype: string; shape: number[]; raw: Uint8Array };
    if (hasContents(io.contents) && msg.raw_input_contents.length > 0) {
      throw invalidArg(`contents field must not be specified when using raw_input_contents for '${io.name}' for model '${msg.model_name}'`);
    } else if (hasContents(io.contents)) {
      entry.raw = rawFromContents(io.name, msg.model_name, io.datatype, io.contents);
    } else if (rawIndex < msg.raw_input_contents.length) {
      entry.raw = msg.raw_input_contents[rawIndex++];
    } else {
      throw invalidArg(`unable to find data for input tensor '${io.name}' for model '${msg.model_name}' in request.`);
    }
  }

  // Requested outputs must exist in the config; none requested = all, in config order.
  const outputNames = config.output.map((o) => o.name);
  for (const name of requestedSet) {
    if (!outputNames.includes(name)) throw invalidArg(`unexpected inference output '${name}' for model '${model}'`);
  }
  const requested = requestedSet.size === 0 ? outputNames : outputNames.filter((n) => requestedSet.has(n));

  // Input count.
  const required = config.input.filter((i) => !i.optional);
  if (given.size > config.input.length || given.size < required.length) {
    const missing = required.filter((i) => !given.has(i.name)).map((i) => `'${i.name}'`);
    const got = given.size === 0 ? "[]" : `[${[...given.keys()].map((n) => `'${n}'`).join(",")}]`;
    const missingStr = missing.length ? `[${missing.join(",")}]` : "]";
    if (required.length === config.input.length) {
      throw invalidArg(
        `${P}expected ${config.input.length} inputs but got ${given.size} inputs for model '${model}'. Got input(s) ${got}, but missing required input(s) ${missingStr}. Please provide all required input(s).`,
      );
    }
    throw invalidArg(
      `${P}expected number of inputs between ${required.length} and ${config.input.length} but got ${given.size} inputs for model '${model}'. Got input(s) ${got}, but missing required input(s) ${missingStr}. Please provide all required input(s).`,
    );
  }

  const inputConfig = (name: string): ModelInput => {
    const c = config.input.find((i) => i.name === name);
    if (!c) throw invalidArg(`unexpected inference input '${name}' for model '${model}'`);
    return c;
  };

  // Batch size.
  let batch = 0;
  const mbs = config.max_batch_size;
  if (mbs > 0) {
    for (const [name, g] of given) {
      inputConfig(name);
      if (g.shape.length === 0) throw invalidArg(`${P}input '${name}' has no shape but model requires batch dimension for '${model}'`);
      if (batch === 0) batch = g.shape[0];
      else if (g.shape[0] !== batch) throw invalidArg(`${P}input '${name}' batch size does not match other inputs for '${model}'`);
    }
  }
  if (batch > mbs) throw invalidArg(`${P}inference request batch-size must be <= ${mbs} for '${model}'`);

  const inputs = new Map<string, RawTensor>();
  const keyParts: string[] = [];
  for (const [name, g] of given) {
    const c = inputConfig(name);
    const expectDt = datatypeOfConfig(c.data_type);
    const gotDt = isDataType(g.datatype) ? g.datatype : DTYPE_STRING_INVALID;
    if (gotDt !== expectDt) {
      throw invalidArg(`${P}inference input '${name}' data-type is '${gotDt}', but model '${model}' expects '${expectDt}'`);
    }
    const dt = expectDt as DataType;
    const shape = mbs > 0 ? g.shape.slice(1) : g.shape;
    let match = shape.length === c.dims.length;
    if (match) {
      for (let i = 0; i < shape.length; i++) {
        if (shape[i] === -1) {
          throw invalidArg(`${P}All input dimensions should be specified for input '${name}' for model '${model}', got ${dims(g.shape)}`);
        }
        if (c.dims[i] !== -1 && c.dims[i] !== shape[i]) {
          match = false;
          break;
        }
      }
    }
    if (!match || shape.some((d) => d < 0)) {
      const full = mbs > 0 ? [-1, ...c.dims] : c.dims;
      const note =
        mbs > 0
          ? "NOTE: Setting a non-zero max_batch_size in the model config requires a batch dimension to be prepended to each input shape. If you want to specify the full shape including the batch dim in your input dims config, try setting max_batch_size to zero. See the model configuration docs for more info on max_batch_size."
          : "";
      throw invalidArg(`${P}unexpected shape for input '${name}' for model '${model}'. Expected ${dims(full)}, got ${dims(g.shape)}. ${note}`);
    }
    let modelShape = shape;
    if (c.reshape) {
      const vars = c.dims.map((d, i) => (d === -1 ? shape[i] : undefined)).filter((v): v is number => v !== undefined);
      modelShape = c.reshape.shape.map((d) => (d === -1 ? (vars.shift() as number) : d));
    }
    const fullShape = mbs > 0 ? [batch, ...modelShape] : modelShape;
    const count = elementCount(fullShape);
    if (dt === "BYTES") validateBytes(P, name, model, g.raw, count);
    else {
      const expected = count * ELEMENT_SIZE[dt];
      if (g.raw.byteLength !== expected) {
        throw invalidArg(`${P}input byte size mismatch for input '${name}' for model '${model}'. Expected ${expected}, got ${g.raw.byteLength}`);
      }
    }
    inputs.set(name, { datatype: dt, shape: fullShape, raw: g.raw });
    keyParts.push(`${name}:${dt}:${modelShape.join("x")}`);
  }

  return {
    id,
    logPrefix: P,
    inputs,
    batchSize: mbs > 0 ? batch : 1,
    requested,
    params,
    batchKey: keyParts.sort().join("|"),
  };
}

/** Whether the request belongs to a sequence (non-zero / non-empty correlation id). */
export function inSequence(p: RequestParams): boolean {
  return typeof p.sequenceId === "string" ? p.sequenceId !== "" : p.sequenceId !== 0n;
}
