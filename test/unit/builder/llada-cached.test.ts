// The cached transformer (ML-Cache) ONNX graph in onnxruntime-node, on the dev config (real vocabulary,
// d_model 64, 2 layers, 4 heads), with the implicit state carried from step to step as Triton carries it:
// a refresh step equals the stateless engine's step; a step that recomputes every position equals a
// refresh whatever state it starts from; partial steps in a row equal the plain-TypeScript reference of
// the cached forward (cached-reference.ts), state included. Tolerances: llada-support.ts.

import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import {
  cachedTransformerStates,
  TRANSFORMER_CACHED_INPUTS,
  TRANSFORMER_CACHED_OUTPUTS,
  TRANSFORMER_CACHED_STATE,
} from "../../../gpu-backend/src/engine/contract";
import { cachedStepTensors, refreshRecompute, type CachedStep } from "../../../gpu-backend/src/builder/llada/cached-call";
import { buildCachedTransformerGraph } from "../../../gpu-backend/src/builder/llada/cached-graph";
import { cachedStepReference, zeroCachedState, type CachedState } from "../../../gpu-backend/src/builder/llada/cached-reference";
import { callTensors, emptyMode } from "../../../gpu-backend/src/builder/llada/call";
import { devTransformerConfig, headDim, type LladaConfig } from "../../../gpu-backend/src/builder/llada/config";
import { buildTransformerGraph } from "../../../gpu-backend/src/builder/llada/graph";
import { memoryResolver } from "../../../gpu-backend/src/builder/llada/model-file";
import { seededLladaWeights, type LladaWeights } from "../../../gpu-backend/src/builder/llada/weights";
import { ONNX_DTYPES } from "../../../gpu-backend/src/builder/onnx/graph-builder";
import { quantileRanks as quantileRanksOf } from "../../../gpu-backend/src/lib/quantile";
import { CODEBOOK_SIZE } from "../../../gpu-backend/src/model/tokens";
import { recomputePositions, selectedPositions } from "../../../gpu-backend/src/sampling/ml-cache";
import { batch, expectTokens, f32, imageSequence, maxAbsDiff, tokens, TOL, type Outputs } from "./llada-support";

type State = Record<string, ort.Tensor>;

/** Triton's first request of a sequence: each state is its [1, 1, width] zero initial_state. */
function initialState(cfg: LladaConfig): State {
  const kv = cfg.nKvHeads * headDim(cfg);
  const out: State = {};
  for (const s of cachedTransformerStates(cfg.nLayers)) {
    const width = s === TRANSFORMER_CACHED_STATE.logits ? CODEBOOK_SIZE : kv;
    out[s.input] = new ort.Tensor("float32", new Float32Array(width), [1, 1, width]);
  }
  return out;
}

/** Runs one step on `state`; returns the outputs and the next state (outputs fed back as inputs). */
async function step(session: ort.InferenceSession, cfg: LladaConfig, s: CachedStep, state: State, override: State = {}): Promise<{ out: Outputs; state: State }> {
  const feeds: State = { ...state };
  for (const [k, t] of Object.entries(cachedStepTensors(s))) feeds[k] = new ort.Tensor(t.type, t.data, t.dims);
  Object.assign(feeds, override);
  const out = (await session.run(feeds)) as Outputs & Record<string, ort.Tensor>;
  const next: State = {};
  for (const spec of cachedTransformerStates(cfg.nLayers)) next[spec.input] = out[spec.output];
  return { out, state: next };
}

function sameBits(a: ArrayBufferView, b: ArrayBufferView): boolean {
  return Buffer.compare(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)) === 0;
}

/** Graph state vs reference state: keys and values per layer, logits. */
function stateDiff(cfg: LladaConfig, graph: State, ref: CachedState): { kv: number; logits: number } {
  let kv = 0;
  for (let l = 0; l < cfg.nLayers; l++) {
    kv = Math.max(kv, maxAbsDiff(graph[TRANSFORMER_CACHED_STATE.key(l).input].data as Float32Array, ref.keys[l]));
    kv = Math.max(kv, maxAbsDiff(graph[TRANSFORMER_CACHED_STATE.value(l).input].data as Float32Array, ref.values[l]));
  }
  return { kv, logits: maxAbsDiff(graph[TRANSFORMER_CACHED_STATE.logits.input].data as Float32Array, ref.logits) };
}

describe("cached transformer graph (dev config)", () => {
  const cfg: LladaConfig = { ...devTransformerConfig(), maxPositions: 512 };
  let w: LladaWeights;
  let cached: ort.InferenceSession;
  let stateless: ort.InferenceSession;

  beforeAll(async () => {
    w = seededLladaWeights(cfg, 7);
    const resolver = memoryResolver(w);
    cached = await ort.InferenceSession.create(buildCachedTransformerGraph(cfg, resolver, { weightDtype: "FLOAT" }).toBytes());
    stateless = await ort.InferenceSession.create(buildTransformerGraph(cfg, resolver, { weightDtype: "FLOAT" }).toBytes());
  });

  it("has exactly the contract's inputs, outputs and state, and only TensorRT-friendly ops", () => {
    const g = buildCachedTransformerGraph({ ...cfg, maxPositions: 64 }, memoryResolver(w), { weightDtype: "FLOAT" });
    const dt = { INT64: "INT64", INT32: "INT32", UINT8: "UINT8", FP32: "FLOAT" } as const;
    const contract = (specs: object) =>
      Object.values(specs).map((s: { name: string; dtype: "INT64" | "INT32" | "UINT8" | "FP32"; dims: string[] }) => [s.name, dt[s.dtype], s.dims.map((d) => (/^\d+$/.test(d) ? Number(d) : d))]);
    const states = cachedTransformerStates(cfg.nLayers);
    expect(states.map((s) => s.input)).toEqual(["key_cache_in_00", "value_cache_in_00", "key_cache_in_01", "value_cache_in_01", "logit_cache_in"]);
    const kv = cfg.nKvHeads * headDim(cfg);
    const width = (i: number) => (i === states.length - 1 ? CODEBOOK_SIZE : kv);
    expect(g.inputs.map((i) => [i.name, i.dtype, i.dims])).toEqual([
      ...contract(TRANSFORMER_CACHED_INPUTS),
      ...states.map((s, i) => [s.input, "FLOAT", ["K_in", "L_in", width(i)]]),
    ]);
    expect(g.outputs.map((i) => [i.name, i.dtype, i.dims])).toEqual([
      ...contract(TRANSFORMER_CACHED_OUTPUTS),
      ...states.map((s, i) => [s.output, "FLOAT", ["K", "L", width(i)]]),
    ]);
    const ops = new Set(g.nodes.map((n) => n.op));
    for (const bad of ["Range", "NonZero", "If", "Loop", "Einsum", "Scan", "TopK"]) expect(ops.has(bad)).toBe(false);
    // no state name is a prefix of another (Triton has confused such names)
    const names = states.flatMap((s) => [s.input, s.output]);
    for (const a of names) for (const b of names) if (a !== b) expect(b.startsWith(a), `${b} extends ${a}`).toBe(false);
  });

  it("a refresh step equals the stateless engine's step: same tokens, confidence and max logits", async () => {
    const L = 24;
    const lens = [24, 17];
    const ids = batch(lens, L, 11);
    const M = 10;
    const pos = (k: number, m: number) => (m * 7 + k * 3) % lens[k];
    const targets = [0, 1].flatMap((k) => Array.from({ length: M }, (_, m) => pos(k, m)));
    const uniforms = Array.from({ length: M }, (_, m) => ((m * 0.618034) % 1) * 0.98 + 0.01);
    for (const temperature of [1, 0.7, 0]) {
      const ref = (await stateless.run(
        Object.fromEntries(
          Object.entries(
            callTensors({
              R: 2,
              L,
              ...ids,
              image: { G: 1, K: 2, M, targets: targets.map((p, i) => Math.floor(i / M) * L + p), weights: [5, -4], uniforms, temperature: [temperature] },
              text: emptyMode(),
            }),
          ).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]),
        ),
      )) as Outputs;
      const { out } = await step(cached, cfg, { K: 2, L, ...ids, ...refreshRecompute(2, L), targets, M, weights: [5, -4], uniforms, temperature }, initialState(cfg));
      expect(out.image_tokens.dims).toEqual([M]);
      expect(out.max_logit.dims).toEqual([2, L]);
      expect(tokens(out, "image_tokens")).toEqual(tokens(ref, "image_tokens"));
      const confDiff = maxAbsDiff(f32(out, "image_confidence"), f32(ref, "image_confidence"));
      expect(confDiff).toBeLessThan(1e-6);
      const atTargets = targets.map((p, i) => f32(out, "max_logit")[Math.floor(i / M) * L + p]);
      const maxDiff = maxAbsDiff(atTargets, f32(ref, "image_max_logit"));
      expect(maxDiff).toBeLessThan(1e-5);
      console.log(`[llada-cached] refresh vs stateless at T=${temperature}: tokens identical, confidence max |diff| ${confDiff.toExponential(2)}, max logit ${maxDiff.toExponential(2)}`);
    }
  });

  it("an empty recompute list (a refresh) and one shifted target list give the general form's bits; its selection is the ML-Cache rule's", async () => {
    // The uncond branch: a shorter prompt before the same tail, as the orchestrator sends it.
    const L = 24;
    const lens = [24, 17];
    const shift = lens[1] - lens[0];
    const ids = batch(lens, L, 31);
    const first = [23, 21, 20, 18, 15, 12];
    const M = first.length;
    const uniforms = Array.from({ length: M }, (_, m) => ((m * 0.618034) % 1) * 0.98 + 0.01);
    const general: CachedStep = { K: 2, L, ...ids, ...refreshRecompute(2, L), targets: [...first, ...first.map((p) => p + shift)], M, weights: [5, -4], uniforms, temperature: 1 };
    const a = await step(cached, cfg, general, initialState(cfg));
    const b = await step(cached, cfg, general, initialState(cfg), {
      recompute: new ort.Tensor("int32", new Int32Array(0), [1, 0]), // a refresh: every position of every branch
      image_targets: new ort.Tensor("int32", Int32Array.from(first), [1, M]),
      image_target_shift: new ort.Tensor("int32", Int32Array.of(0, shift), [2]),
    });
    for (const name of ["image_tokens", "image_confidence", "max_logit"]) expect(sameBits(a.out[name].data as ArrayBufferView, b.out[name].data as ArrayBufferView), name).toBe(true);
    for (const name of Object.keys(a.state)) expect(sameBits(a.state[name].data as ArrayBufferView, b.state[name].data as ArrayBufferView), name).toBe(true);

    // The selection at several cache ratios (q = 1 - ratio from 0.1 to 1) against the rule over max_logit.
    for (const ratio of [0.9, 0.75, 0.5, 0.3, 0]) {
      const quantileRanks = lens.flatMap((n) => {
        const r = quantileRanksOf(n, 1 - ratio);
        return [r.lo, r.hi];
      });
      const { out } = await step(cached, cfg, { ...general, quantileRanks }, initialState(cfg));
      const codes = out.recompute_codes.data as Uint8Array;
      const values = f32(out, "quantile_values");
      expect(out.recompute_codes.dims).toEqual([2, L]);
      for (let k = 0; k < 2; k++) {
        const maxLogit = f32(out, "max_logit").subarray(k * L, k * L + lens[k]);
        const sel = { codes: codes.slice(k * L, k * L + lens[k]), low: values[2 * k], high: values[2 * k + 1] };
        expect(Array.from(selectedPositions(sel, ratio)), `ratio ${ratio} branch ${k}`).toEqual(Array.from(recomputePositions(maxLogit, ratio)));
        expect(Array.from(codes.subarray(k * L + lens[k], (k + 1) * L)).every((c) => c === 0)).toBe(true); // padding never selected
      }
    }
  });

  it("a step that recomputes every position equals a refresh, whatever state it starts from", async () => {
    const L = 20;
    const seq = imageSequence(2, L, [20, 15], 21);
    let { state } = await step(cached, cfg, seq.next(null, [5, -4], 1, 3), initialState(cfg));
    ({ state } = await step(cached, cfg, seq.next([4, 2], [5, -4], 1, 3), state));
    const all = seq.next(null, [5, -4], 1, 3);
    const carried = await step(cached, cfg, all, state);
    const fresh = await step(cached, cfg, all, initialState(cfg));
    for (const name of ["image_tokens", "image_confidence", "max_logit"]) expect(sameBits(carried.out[name].data as ArrayBufferView, fresh.out[name].data as ArrayBufferView), name).toBe(true);
    for (const name of Object.keys(fresh.state)) expect(sameBits(carried.state[name].data as ArrayBufferView, fresh.state[name].data as ArrayBufferView), name).toBe(true);
  });

  it("partial steps in a row equal the TypeScript reference of the cached forward, state included (K = 1, 2, 3)", async () => {
    const runs: Array<{ K: number; lens: number[]; weights: number[]; plan: Array<number[] | null>; T: number }> = [
      { K: 2, lens: [22, 16], weights: [5, -4], plan: [null, [5, 3], [2, 2], null, [1, 4]], T: 1 },
      { K: 3, lens: [20, 14, 18], weights: [7.5, -2.5, -4], plan: [null, [3, 1, 4], [6, 6, 2]], T: 0.8 },
      { K: 1, lens: [19], weights: [1], plan: [null, [2], [5]], T: 0 },
    ];
    let checked = 0;
    let exempt = 0;
    const worst = { kv: 0, logits: 0, maxLogit: 0, confidence: 0 };
    for (const [i, r] of runs.entries()) {
      const L = Math.max(...r.lens) + 2; // pads past every branch
      const seq = imageSequence(r.K, L, r.lens, 31 + i);
      let state = initialState(cfg);
      let refState = zeroCachedState(cfg, r.K, L);
      for (const sizes of r.plan) {
        const s = seq.next(sizes, r.weights, r.T, 2);
        const got = await step(cached, cfg, s, state);
        const ref = cachedStepReference(cfg, w, refState, s);
        const d = stateDiff(cfg, got.state, ref.state);
        worst.kv = Math.max(worst.kv, d.kv);
        worst.logits = Math.max(worst.logits, d.logits);
        worst.maxLogit = Math.max(worst.maxLogit, maxAbsDiff(f32(got.out, "max_logit"), ref.maxLogit));
        worst.confidence = Math.max(worst.confidence, maxAbsDiff(f32(got.out, "image_confidence"), ref.image.confidence));
        const t = expectTokens(tokens(got.out, "image_tokens"), ref.image, r.T === 0 ? TOL.argmaxGap : TOL.margin);
        checked += t.checked;
        exempt += t.exempt;
        state = got.state;
        refState = ref.state;
      }
    }
    expect(worst.kv).toBeLessThan(TOL.hidden);
    expect(worst.logits).toBeLessThan(TOL.logits);
    expect(worst.maxLogit).toBeLessThan(TOL.logits);
    expect(worst.confidence).toBeLessThan(TOL.confidence);
    expect(checked).toBeGreaterThan(60);
    console.log(
      `[llada-cached] 11 steps vs reference: K/V cache max |diff| ${worst.kv.toExponential(2)}, logit cache ${worst.logits.toExponential(2)}, max logit ${worst.maxLogit.toExponential(2)}, confidence ${worst.confidence.toExponential(2)}; ${checked} tokens checked exactly, ${exempt} exempt`,
    );
  });

  it("a partial step keeps the cached rows of the positions it does not recompute", async () => {
    const L = 16;
    const seq = imageSequence(2, L, [16, 12], 41);
    const first = await step(cached, cfg, seq.next(null, [5, -4], 1, 4), initialState(cfg));
    const s = seq.next([3, 2], [5, -4], 1, 0);
    const second = await step(cached, cfg, s, first.state);
    const kv = cfg.nKvHeads * headDim(cfg);
    let kept = 0;
    for (let k = 0; k < 2; k++) {
      const recomputed = new Set(Array.from({ length: s.P }, (_, p) => Number(s.recompute[k * s.P + p])));
      const row = (t: State, name: string, width: number, p: number) => (t[name].data as Float32Array).subarray((k * L + p) * width, (k * L + p + 1) * width);
      for (let p = 0; p < L; p++) {
        if (recomputed.has(p)) continue;
        kept++;
        expect(sameBits(row(first.state, "logit_cache_in", CODEBOOK_SIZE, p), row(second.state, "logit_cache_in", CODEBOOK_SIZE, p)), `branch ${k} position ${p}`).toBe(true);
        expect(sameBits(row(first.state, "key_cache_in_01", kv, p), row(second.state, "key_cache_in_01", kv, p))).toBe(true);
      }
    }
    expect(kept).toBeGreaterThan(2 * L - 6);
  });

  it("serves a step without targets, and refuses a state of another length", async () => {
    const L = 12;
    const seq = imageSequence(2, L, [12, 9], 51);
    const s = { ...seq.next(null, [5, -4], 1, 0), targets: [], M: 0, uniforms: [] };
    const { out, state } = await step(cached, cfg, s, initialState(cfg));
    expect(out.image_tokens.dims).toEqual([0]);
    expect(out.max_logit.dims).toEqual([2, L]);
    const longer = { ...s, L: L + 4, inputIds: batch([12, 9], L + 4, 52).inputIds, ...refreshRecompute(2, L + 4) };
    await expect(step(cached, cfg, longer, state)).rejects.toThrow(/Expand|broadcast|invalid/i);
  });

  it("grouped-query attention (n_kv_heads < n_heads) matches the reference over a refresh and a partial step", async () => {
    const gqa: LladaConfig = { ...devTransformerConfig(), dModel: 32, nHeads: 4, nKvHeads: 2, nLayers: 1, mlpHidden: 48, maxPositions: 64 };
    const gw = seededLladaWeights(gqa, 3);
    const session = await ort.InferenceSession.create(buildCachedTransformerGraph(gqa, memoryResolver(gw), { weightDtype: "FLOAT" }).toBytes());
    const L = 14;
    const seq = imageSequence(2, L, [14, 10], 61);
    let state = initialState(gqa);
    let refState = zeroCachedState(gqa, 2, L);
    for (const sizes of [null, [4, 3]]) {
      const s = seq.next(sizes, [2, -1], 1, 2);
      const got = await step(session, gqa, s, state);
      const ref = cachedStepReference(gqa, gw, refState, s);
      expect(stateDiff(gqa, got.state, ref.state).logits).toBeLessThan(TOL.logits);
      expectTokens(tokens(got.out, "image_tokens"), ref.image, TOL.margin);
      state = got.state;
      refState = ref.state;
    }
  });

  it("the production graph keeps its state in bf16 and runs every matmul in bf16", async () => {
    const g = buildCachedTransformerGraph(cfg, memoryResolver(w), { weightDtype: "BFLOAT16" });
    for (const io of [...g.inputs, ...g.outputs].filter((v) => /_cache_/.test(v.name))) expect(io.dtype, io.name).toBe("BFLOAT16");
    const producer = new Map<string, { op: string; attrs: Record<string, unknown> }>();
    for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
    const isBf16 = (name: string) => g.initializers.get(name)?.dtype === "BFLOAT16" || (producer.get(name)?.op === "Cast" && producer.get(name)?.attrs.to === ONNX_DTYPES.BFLOAT16);
    const mm = g.nodes.filter((n) => n.op === "Gemm" || n.op === "MatMul");
    expect(mm.length).toBe(cfg.nLayers * 9 + 1);
    for (const n of mm) for (const i of n.inputs) expect(isBf16(i), `${n.op} input ${i}`).toBe(true);
    // onnxruntime type-checks the graph; only its CPU provider lacks the bf16 kernels
    await expect(ort.InferenceSession.create(g.toBytes())).rejects.toThrow(/Could not find an implementation for/);
    const fused = buildCachedTransformerGraph(cfg, memoryResolver(w), { weightDtype: "BFLOAT16", attentionSoftmax: "compute" });
    await expect(ort.InferenceSession.create(fused.toBytes())).rejects.toThrow(/Could not find an implementation for/);
  });
});
