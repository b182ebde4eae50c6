// The transformer ONNX graph in onnxruntime-node against the plain TypeScript reference, on the dev
// config (real 134548-id vocabulary, d_model 64, 2 layers, 4 heads, MLP 128).
//
// Tolerances: llada-support.ts.

import * as ort from "onnxruntime-node";
import { beforeAll, describe, expect, it } from "vitest";
import { TRANSFORMER_INPUTS, TRANSFORMER_OUTPUTS } from "../../../gpu-backend/src/engine/contract";
import { callTensors, emptyMode, type ModeInputs, type TransformerCall } from "../../../gpu-backend/src/builder/llada/call";
import { devTransformerConfig, type LladaConfig } from "../../../gpu-backend/src/builder/llada/config";
import { buildTransformerGraph, DEBUG_OUTPUTS } from "../../../gpu-backend/src/builder/llada/graph";
import { memoryResolver } from "../../../gpu-backend/src/builder/llada/model-file";
import { transformerReference, type TransformerReferenceResult } from "../../../gpu-backend/src/builder/llada/reference";
import { seededLladaWeights, type LladaWeights } from "../../../gpu-backend/src/builder/llada/weights";
import { CODEBOOK_SIZE, VOCAB_SIZE } from "../../../gpu-backend/src/model/tokens";
import { batch, expectTokens, f32, maxAbsDiff, rng, tokens, TOL, type Outputs } from "./llada-support";

/** A mode with K branches per request; branch k of request g targets positions in row rows[g][k]. */
function mode(rows: number[][], L: number, lens: number[], M: number, weights: number[][], temperature: number[], seed: number): ModeInputs {
  const r = rng(seed);
  const G = rows.length;
  const K = rows[0].length;
  const targets: number[] = [];
  for (let g = 0; g < G; g++)
    for (let k = 0; k < K; k++) {
      const row = rows[g][k];
      for (let m = 0; m < M; m++) targets.push(row * L + ((m * 7 + k * 3 + g) % lens[row]));
    }
  const uniforms = Array.from({ length: G * M }, () => r());
  return { G, K, M, targets, weights: weights.flat(), uniforms, temperature };
}

async function run(session: ort.InferenceSession, call: TransformerCall): Promise<Outputs> {
  const feeds = Object.fromEntries(Object.entries(callTensors(call)).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  return (await session.run(feeds)) as Outputs;
}

function expectHidden(o: Outputs, ref: TransformerReferenceResult, call: TransformerCall, d: number, tol: number): number {
  const h = f32(o, DEBUG_OUTPUTS.hidden);
  let m = 0;
  for (let r = 0; r < call.R; r++) {
    const len = Number(call.seqLens[r]);
    m = Math.max(m, maxAbsDiff(h.subarray(r * call.L * d, (r * call.L + len) * d), ref.hidden[r]));
  }
  expect(m).toBeLessThan(tol);
  return m;
}

describe("transformer graph vs TypeScript reference (dev config)", () => {
  const cfg: LladaConfig = devTransformerConfig();
  let w: LladaWeights;
  let session: ort.InferenceSession;
  const d = cfg.dModel;

  beforeAll(async () => {
    w = seededLladaWeights(cfg, 7);
    const g = buildTransformerGraph(cfg, memoryResolver(w), { weightDtype: "FLOAT", debugOutputs: true });
    session = await ort.InferenceSession.create(g.toBytes());
  });

  it("has exactly the contract's inputs and outputs (plus debug outputs)", async () => {
    const plain = buildTransformerGraph({ ...cfg, nLayers: 1, maxPositions: 64 }, memoryResolver(seededLladaWeights({ ...cfg, nLayers: 1 }, 1)), { weightDtype: "FLOAT" });
    const dt = { INT64: "INT64", INT32: "INT32", FP32: "FLOAT" } as const;
    expect(plain.inputs.map((i) => [i.name, i.dtype, i.dims])).toEqual(Object.values(TRANSFORMER_INPUTS).map((s) => [s.name, dt[s.dtype as "INT64" | "INT32" | "FP32"], s.dims]));
    expect(plain.outputs.map((i) => [i.name, i.dtype, i.dims])).toEqual(Object.values(TRANSFORMER_OUTPUTS).map((s) => [s.name, dt[s.dtype as "INT64" | "INT32" | "FP32"], s.dims]));
    // Only ops that the TensorRT ONNX parser implements natively; no Range/NonZero/If/Loop/Einsum.
    const ops = new Set(plain.nodes.map((n) => n.op));
    for (const bad of ["Range", "NonZero", "If", "Loop", "Einsum", "Scan", "TopK"]) expect(ops.has(bad)).toBe(false);
    expect(session.inputNames).toEqual(Object.values(TRANSFORMER_INPUTS).map((s) => s.name));
  });

  it("matches the reference: hidden states, logits, guidance, tokens, confidence and max logits", async () => {
    const L = 24;
    const lens = [24, 17, 9, 20];
    const call: TransformerCall = {
      R: 4,
      L,
      ...batch(lens, L, 11),
      image: mode([[0, 1], [2, 3]], L, lens, 6, [[5, -4], [3, -2]], [1, 0.7], 12),
      text: mode([[3]], L, lens, 3, [[1]], [1], 13),
    };
    const o = await run(session, call);
    const ref = transformerReference(cfg, w, call);
    const hiddenDiff = expectHidden(o, ref, call, d, TOL.hidden);
    const imgLogitDiff = maxAbsDiff(f32(o, DEBUG_OUTPUTS.imageLogits), ref.image.logits);
    const txtLogitDiff = maxAbsDiff(f32(o, DEBUG_OUTPUTS.textLogits), ref.text.logits);
    expect(imgLogitDiff).toBeLessThan(TOL.logits);
    expect(txtLogitDiff).toBeLessThan(TOL.logits);
    const combinedDiff = maxAbsDiff(f32(o, DEBUG_OUTPUTS.imageCombined), ref.image.combined);
    expect(combinedDiff).toBeLessThan(TOL.combined);
    expect(maxAbsDiff(f32(o, TRANSFORMER_OUTPUTS.imageMaxLogit.name), ref.image.maxLogit)).toBeLessThan(TOL.logits);
    expect(o[TRANSFORMER_OUTPUTS.imageMaxLogit.name].dims).toEqual([2, 2, 6]);
    expect(o[TRANSFORMER_OUTPUTS.imageTokens.name].dims).toEqual([2, 6]);
    expect(o[TRANSFORMER_OUTPUTS.textTokens.name].dims).toEqual([1, 3]);
    const it = expectTokens(tokens(o, "image_tokens"), ref.image, TOL.margin);
    const tt = expectTokens(tokens(o, "text_tokens"), ref.text, TOL.margin);
    expect(it.checked).toBeGreaterThanOrEqual(10);
    expect(tt.checked).toBeGreaterThanOrEqual(2);
    expect(maxAbsDiff(f32(o, "image_confidence"), ref.image.confidence)).toBeLessThan(TOL.confidence);
    expect(maxAbsDiff(f32(o, "text_probability"), ref.text.confidence)).toBeLessThan(TOL.confidence);
    console.log(`[llada] max |diff| vs reference: hidden ${hiddenDiff.toExponential(2)}, image logits ${imgLogitDiff.toExponential(2)}, text logits ${txtLogitDiff.toExponential(2)}, guided logits ${combinedDiff.toExponential(2)}`);
  });

  it("gives a row the same result alone and padded in a batch with rows of other lengths", async () => {
    const L = 40;
    const lens = [31, 40, 12];
    // Pads hold junk ids (not 0) to show they are masked, not merely harmless.
    const { inputIds } = batch(lens, L, 21, 126339);
    const img = (rowOf: (r: number) => number, LL: number, rows: number[]): ModeInputs => {
      const targets: number[] = [];
      for (const r of rows) for (let m = 0; m < 8; m++) targets.push(rowOf(r) * LL + ((m * 5 + r) % lens[r]));
      const uniforms = rows.flatMap((r) => Array.from({ length: 8 }, (_, m) => (((r * 8 + m) * 0.618034) % 1) * 0.98 + 0.01));
      return { G: rows.length, K: 1, M: 8, targets, weights: rows.map(() => 1), uniforms, temperature: rows.map(() => 1) };
    };
    const batched: TransformerCall = { R: 3, L, inputIds, seqLens: lens, image: img((r) => r, L, [0, 1, 2]), text: emptyMode() };
    const ob = await run(session, batched);
    const hb = f32(ob, DEBUG_OUTPUTS.hidden);
    const tb = tokens(ob, "image_tokens");
    const cb = f32(ob, "image_confidence");
    let padDiff = 0;
    for (let r = 0; r < 3; r++) {
      const len = lens[r];
      const alone: TransformerCall = { R: 1, L: len, inputIds: inputIds.slice(r * L, r * L + len), seqLens: [len], image: img(() => 0, len, [r]), text: emptyMode() };
      const oa = await run(session, alone);
      const diff = maxAbsDiff(f32(oa, DEBUG_OUTPUTS.hidden), hb.subarray(r * L * d, (r * L + len) * d));
      padDiff = Math.max(padDiff, diff);
      expect(diff).toBeLessThan(TOL.padding);
      expect(tokens(oa, "image_tokens")).toEqual(tb.slice(r * 8, r * 8 + 8));
      expect(maxAbsDiff(f32(oa, "image_confidence"), cb.subarray(r * 8, r * 8 + 8))).toBeLessThan(TOL.padding);
    }
    console.log(`[llada] padding invariance: hidden max |alone - batched| ${padDiff.toExponential(2)}`);
    // The mask matters: attending to the pads (seq_lens = L) changes the short row.
    const unmasked = await run(session, { ...batched, seqLens: [L, L, L] });
    expect(maxAbsDiff(f32(unmasked, DEBUG_OUTPUTS.hidden).subarray(2 * L * d, (2 * L + 12) * d), hb.subarray(2 * L * d, (2 * L + 12) * d))).toBeGreaterThan(1e-2);
  });

  it("combines K = 1, 2, 3 branches linearly with the given weights (t2i [1+s,-s], i2i [1+st+si,-st,-si])", async () => {
    const L = 20;
    const lens = [20, 14, 16];
    const ids = batch(lens, L, 31);
    for (const weights of [[1], [5, -4], [7.5, -2.5, -4]]) {
      const K = weights.length;
      const rows = [[0, 1, 2].slice(0, K)];
      const call: TransformerCall = { R: 3, L, ...ids, image: mode(rows, L, lens, 10, [weights], [1], 32 + K), text: emptyMode() };
      const o = await run(session, call);
      const ref = transformerReference(cfg, w, call);
      const logits = f32(o, DEBUG_OUTPUTS.imageLogits);
      const combined = f32(o, DEBUG_OUTPUTS.imageCombined);
      // combined == sum_k w_k * logits_k, computed from the graph's own per-branch logits
      let m = 0;
      for (let s = 0; s < 10; s++)
        for (let v = 0; v < CODEBOOK_SIZE; v++) {
          let acc = 0;
          for (let k = 0; k < K; k++) acc += weights[k] * logits[(k * 10 + s) * CODEBOOK_SIZE + v];
          m = Math.max(m, Math.abs(acc - combined[s * CODEBOOK_SIZE + v]));
        }
      expect(m).toBeLessThan(1e-4);
      expect(maxAbsDiff(combined, ref.image.combined)).toBeLessThan(TOL.combined);
      expectTokens(tokens(o, "image_tokens"), ref.image, TOL.margin);
      expect(maxAbsDiff(f32(o, "image_max_logit"), ref.image.maxLogit)).toBeLessThan(TOL.logits);
      expect(o.image_max_logit.dims).toEqual([1, K, 10]);
    }
  });

  it("samples exactly the reference's tokens from the given uniforms, at several temperatures", async () => {
    const L = 32;
    const lens = [32, 25];
    const ids = batch(lens, L, 41);
    const M = 48;
    const call: TransformerCall = {
      R: 2,
      L,
      ...ids,
      image: mode([[0, 1], [0, 1], [1, 0]], L, lens, M, [[2, -1], [1, 0], [1.5, -0.5]], [1, 0.5, 1.7], 42),
      text: emptyMode(),
    };
    const o = await run(session, call);
    const ref = transformerReference(cfg, w, call);
    const got = tokens(o, "image_tokens");
    const { checked, exempt } = expectTokens(got, ref.image, TOL.margin);
    expect(checked).toBeGreaterThan(0.95 * 3 * M);
    const disagree = got.filter((t, i) => t !== ref.image.tokens[i]).length;
    console.log(`[llada] sampling: ${checked} slots checked exactly, ${exempt} within ${TOL.margin} of a CDF boundary, ${disagree} disagreements; confidence max |diff| ${maxAbsDiff(f32(o, "image_confidence"), ref.image.confidence).toExponential(2)}`);
    expect(new Set(got).size).toBeGreaterThan(M); // genuinely random draws, not a constant
    expect(maxAbsDiff(f32(o, "image_confidence"), ref.image.confidence)).toBeLessThan(TOL.confidence);
    // The uniform decides: u near 0 picks an early code of the CDF, u near 1 a late one.
    const lo = await run(session, { ...call, image: { ...call.image, uniforms: Array.from(call.image.uniforms, () => 1e-7) } });
    const hi = await run(session, { ...call, image: { ...call.image, uniforms: Array.from(call.image.uniforms, () => 1 - 2 ** -24) } });
    const refLo = transformerReference(cfg, w, { ...call, image: { ...call.image, uniforms: Array.from(call.image.uniforms, () => 1e-7) } });
    expectTokens(tokens(lo, "image_tokens"), refLo.image, 1e-8);
    for (const t of tokens(hi, "image_tokens")) expect(t).toBeLessThan(CODEBOOK_SIZE); // clamped to V-1 at most
  });

  it("temperature 0 is argmax of the guided logits, whatever the uniforms (mixed with T > 0 in one call)", async () => {
    const L = 16;
    const lens = [16, 11];
    const ids = batch(lens, L, 51);
    const base = mode([[0, 1], [0, 1]], L, lens, 12, [[5, -4], [5, -4]], [0, 1], 52);
    const call: TransformerCall = { R: 2, L, ...ids, image: base, text: emptyMode() };
    const o1 = await run(session, call);
    const o2 = await run(session, { ...call, image: { ...base, uniforms: Array.from(base.uniforms, (u) => 1 - u) } });
    const ref = transformerReference(cfg, w, call);
    const t1 = tokens(o1, "image_tokens");
    expect(t1.slice(0, 12)).toEqual(tokens(o2, "image_tokens").slice(0, 12)); // T=0 row ignores uniforms
    expect(t1.slice(12)).not.toEqual(tokens(o2, "image_tokens").slice(12)); // T=1 row does not
    const combined = f32(o1, DEBUG_OUTPUTS.imageCombined);
    for (let m = 0; m < 12; m++) {
      const row = combined.subarray(m * CODEBOOK_SIZE, (m + 1) * CODEBOOK_SIZE);
      let arg = 0;
      for (let v = 1; v < CODEBOOK_SIZE; v++) if (row[v] > row[arg]) arg = v;
      expect(t1[m]).toBe(arg); // exactly the graph's own argmax
    }
    expectTokens(t1, ref.image, TOL.argmaxGap);
    // confidence is softmax(combined)[token], never tempered
    expect(maxAbsDiff(f32(o1, "image_confidence"), ref.image.confidence)).toBeLessThan(TOL.confidence);
  });

  it("text mode samples over the full vocabulary with [1+cfg, -cfg] guidance or K = 1", async () => {
    const L = 20;
    const lens = [20, 15];
    const ids = batch(lens, L, 61);
    const call: TransformerCall = {
      R: 2,
      L,
      ...ids,
      image: emptyMode(2),
      text: { ...mode([[0, 1], [1, 0]], L, lens, 4, [[3, -2], [1, 0]], [1, 0], 62) },
    };
    const o = await run(session, call);
    const ref = transformerReference(cfg, w, call);
    expect(o.image_tokens.dims).toEqual([0, 0]);
    expect(o.image_max_logit.dims).toEqual([0, 2, 0]);
    expect(o.text_tokens.dims).toEqual([2, 4]);
    expect(maxAbsDiff(f32(o, DEBUG_OUTPUTS.textLogits), ref.text.logits)).toBeLessThan(TOL.logits);
    const got = tokens(o, "text_tokens");
    expectTokens(got, ref.text, TOL.margin);
    for (const t of got) expect(t).toBeGreaterThanOrEqual(0), expect(t).toBeLessThan(VOCAB_SIZE);
    expect(maxAbsDiff(f32(o, "text_probability"), ref.text.confidence)).toBeLessThan(TOL.confidence);
  });

  it("one target list per request with branch offsets gives the general form's bits", async () => {
    // Two guided requests, the second branch of each a shorter prompt before the same tail (as a sampler
    // sends it): the general form lists every branch's flat targets; the compact one sends branch 0's and
    // per branch the offset (row - row_0) * L + shift, as the packer does.
    const L = 20;
    const lens = [20, 14, 18, 11];
    const ids = batch(lens, L, 81);
    const M = 5;
    const first = [[19, 17, 15, 13, 12], [17, 16, 12, 11, 10]];
    const shift = [lens[1] - lens[0], lens[3] - lens[2]];
    const general: TransformerCall = {
      R: 4,
      L,
      ...ids,
      image: {
        G: 2,
        K: 2,
        M,
        targets: [0, 1].flatMap((g) => [0, 1].flatMap((k) => first[g].map((p) => (2 * g + k) * L + p + k * shift[g]))),
        weights: [5, -4, 3, -2],
        uniforms: Array.from({ length: 2 * M }, (_, i) => ((i * 0.618034) % 1) * 0.98 + 0.01),
        temperature: [1, 0],
      },
      text: emptyMode(),
    };
    const feeds = Object.fromEntries(Object.entries(callTensors(general)).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
    const a = (await session.run(feeds)) as Outputs;
    const compactTargets = Int32Array.from([0, 1].flatMap((g) => first[g].map((p) => 2 * g * L + p)));
    const offsets = Int32Array.from([0, 1].flatMap((g) => [0, L + shift[g]]));
    const b = (await session.run({
      ...feeds,
      image_targets: new ort.Tensor("int32", compactTargets, [2, 1, M]),
      image_branch_offsets: new ort.Tensor("int32", offsets, [2, 2]),
    })) as Outputs;
    for (const name of ["image_tokens", "image_confidence", "image_max_logit"]) {
      const [x, y] = [a[name].data as ArrayLike<number>, b[name].data as ArrayLike<number>];
      expect(Array.from(y), name).toEqual(Array.from(x));
    }
  });

  it("accepts empty image and text parts (G, M, H, N = 0)", async () => {
    const L = 8;
    const lens = [8];
    const ids = batch(lens, L, 71);
    const shapes = async (image: ModeInputs, text: ModeInputs) => {
      const o = await run(session, { R: 1, L, ...ids, image, text });
      return Object.fromEntries(Object.values(TRANSFORMER_OUTPUTS).map((s) => [s.name, o[s.name].dims]));
    };
    const img = mode([[0, 0]], L, lens, 3, [[2, -1]], [1], 72);
    const txt = mode([[0]], L, lens, 2, [[1]], [0], 73);
    expect(await shapes(img, emptyMode())).toEqual({ image_tokens: [1, 3], image_confidence: [1, 3], image_max_logit: [1, 2, 3], text_tokens: [0, 0], text_probability: [0, 0] });
    expect(await shapes(emptyMode(), txt)).toEqual({ image_tokens: [0, 0], image_confidence: [0, 0], image_max_logit: [0, 1, 0], text_tokens: [1, 2], text_probability: [1, 2] });
    const noSlots: ModeInputs = { G: 2, K: 2, M: 0, targets: [], weights: [1, 0, 1, 0], uniforms: [], temperature: [1, 0] };
    expect(await shapes(noSlots, { ...noSlots, G: 1, K: 1, weights: [1], temperature: [1] })).toEqual({
      image_tokens: [2, 0],
      image_confidence: [2, 0],
      image_max_logit: [2, 2, 0],
      text_tokens: [1, 0],
      text_probability: [1, 0],
    });
  });
});

describe("transformer graph with grouped-query attention", () => {
  it("shares kv head h // (n_heads / n_kv_heads) like repeat_interleave", async () => {
    const cfg: LladaConfig = { ...devTransformerConfig(), dModel: 32, nHeads: 4, nKvHeads: 2, nLayers: 1, mlpHidden: 48, maxPositions: 64 };
    const w = seededLladaWeights(cfg, 3);
    const session = await ort.InferenceSession.create(buildTransformerGraph(cfg, memoryResolver(w), { weightDtype: "FLOAT", debugOutputs: true }).toBytes());
    const L = 12;
    const lens = [12, 7];
    const call: TransformerCall = { R: 2, L, ...batch(lens, L, 81), image: mode([[0, 1]], L, lens, 5, [[2, -1]], [1], 82), text: emptyMode() };
    const o = await run(session, call);
    const ref = transformerReference(cfg, w, call);
    expectHidden(o, ref, call, cfg.dModel, TOL.hidden);
    expect(maxAbsDiff(f32(o, DEBUG_OUTPUTS.imageLogits), ref.image.logits)).toBeLessThan(TOL.logits);
    expectTokens(tokens(o, "image_tokens"), ref.image, TOL.margin);
  });
});
