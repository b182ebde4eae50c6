// The sequence_batching section of the cached transformer's config.pbtxt (dimoo_transformer_cached), for
// the embedded backend and for stock Triton alike, and the check of a config's implicit state against the
// graph it serves.
//
// - Strategy `oldest` with max_candidate_sequences = the sequences held at once: with max_batch_size 0 the
//   `direct` strategy has one slot per instance, so a second request would wait in Triton's backlog until
//   the first one ENDs (and the step batcher, which steps both, would wait forever). Each execution still
//   runs one request (B = 1); states live per slot.
// - One state per contract state (engine/contract.ts): dims [-1, -1, width] (K and L vary per sequence),
//   and a zero initial_state of [1, 1, width]. Triton gives a sequence's first request a state of that
//   shape whatever the initial_state says (variable dims become 1), so the two must agree; the graph
//   broadcasts it to [K, L, width] and the first step, always a refresh, overwrites every row.
// - use_same_buffer_for_input_output: one buffer per state instead of an input and an output copy (the
//   TensorRT backend copies the state into its own input binding before it runs, so the output may reuse
//   the input's memory). use_growable_memory is left off: the state does not grow after the first step,
//   and a growable buffer's size is rounded up to the CUDA allocation granularity, which Triton then
//   compares against the state's shape.

import { cachedTransformerStates, TRANSFORMER_CACHED_STATE, type StateSpec } from "../../engine/contract";
import { CODEBOOK_SIZE } from "../../model/tokens";
import { pbEnum, pbOne, pbText, type PbParsed } from "../../triton/pbtxt";
import type { PbMessage } from "../../triton/pbtxt-writer";
import { ONNX_FOR_TRITON } from "./data-types";
import type { OnnxIO, OnnxValueInfo } from "./onnx-io";

/** What the state of one cached-transformer build looks like. */
export interface CachedStateLayout {
  nLayers: number;
  /** n_kv_heads * head_dim. */
  kvWidth: number;
  /** Model-config data type of every state: TYPE_BF16 (TensorRT) or TYPE_FP32 (onnxruntime dev model). */
  dataType: "TYPE_BF16" | "TYPE_FP32";
}

export interface SequenceOptions {
  /** Sequences (requests) whose state one instance holds at once. */
  maxSequences: number;
  /** A sequence with no request for this long is released with its state. */
  idleMicroseconds: number;
}

export function stateWidth(s: StateSpec, layout: CachedStateLayout): number {
  return s.input === TRANSFORMER_CACHED_STATE.logits.input ? CODEBOOK_SIZE : layout.kvWidth;
}

export function cachedSequenceBatching(layout: CachedStateLayout, o: SequenceOptions): PbMessage {
  const dataType = pbEnum(layout.dataType);
  return {
    max_sequence_idle_microseconds: o.idleMicroseconds,
    oldest: { max_candidate_sequences: o.maxSequences, max_queue_delay_microseconds: 0 },
    state: cachedTransformerStates(layout.nLayers).map((s) => ({
      input_name: s.input,
      output_name: s.output,
      data_type: dataType,
      dims: [-1, -1, stateWidth(s, layout)],
      initial_state: [{ data_type: dataType, dims: [1, 1, stateWidth(s, layout)], zero_data: true, name: "empty" }],
      use_same_buffer_for_input_output: true,
    })),
  };
}

/**
 * Problems of the config's sequence_batching against the graph: every state's input and output exist
 * with its dtype and rank, its initial_state has the shape Triton gives a first request, and control
 * inputs are graph inputs. Returns the graph inputs and outputs the section accounts for.
 */
export function checkSequenceBatching(config: PbParsed, io: OnnxIO, model: string): { problems: string[]; inputs: Set<string>; outputs: Set<string> } {
  const problems: string[] = [];
  const inputs = new Set<string>();
  const outputs = new Set<string>();
  const sb = pbOne<PbParsed>(config, "sequence_batching");
  if (!sb) return { problems, inputs, outputs };
  const find = (list: OnnxValueInfo[], name: string) => list.find((v) => v.name === name);
  const expectTensor = (kind: string, v: OnnxValueInfo | undefined, name: string, dt: string, rank: number) => {
    if (!v) return problems.push(`${model}: ${kind} ${name} is not a graph ${kind.split(" ").pop()}`);
    if (ONNX_FOR_TRITON[dt] !== v.dtype) problems.push(`${model}: ${kind} ${name} is ${dt} in the config but ${v.dtype} in the graph`);
    if (v.dims.length !== rank) problems.push(`${model}: ${kind} ${name} has rank ${v.dims.length} in the graph, ${rank} per the config`);
  };
  for (const st of (sb.state ?? []) as PbParsed[]) {
    const dt = pbText(pbOne(st, "data_type"));
    const dims = ((st.dims ?? []) as number[]).map(Number);
    const input = String(pbOne(st, "input_name"));
    const output = String(pbOne(st, "output_name"));
    inputs.add(input);
    outputs.add(output);
    expectTensor("state input", find(io.inputs, input), input, dt, dims.length);
    expectTensor("state output", find(io.outputs, output), output, dt, dims.length);
    for (const v of [find(io.inputs, input), find(io.outputs, output)])
      v?.dims.forEach((g, i) => {
        if (dims[i] !== -1 && typeof g === "number" && g !== dims[i]) problems.push(`${model}: state ${v.name} dim ${i} is ${dims[i]} in the config but ${g} in the graph`);
      });
    const init = pbOne<PbParsed>(st, "initial_state");
    if (init) {
      const first = dims.map((d) => (d === -1 ? 1 : d));
      const got = ((init.dims ?? []) as number[]).map(Number);
      if (got.join() !== first.join()) problems.push(`${model}: initial_state of ${input} is [${got}], but Triton gives a first request the shape [${first}]`);
    }
  }
  for (const ci of (sb.control_input ?? []) as PbParsed[]) {
    const name = String(pbOne(ci, "name"));
    inputs.add(name);
    if (!find(io.inputs, name)) problems.push(`${model}: control input ${name} is not a graph input`);
  }
  return { problems, inputs, outputs };
}
