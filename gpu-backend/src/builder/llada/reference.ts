// Plain TypeScript reference of the transformer engine contract, for tiny configs: a forward pass over
// typed arrays (one sequence at a time, no mask, positions 0..n-1, exactly as the PyTorch reference runs
// B=1), and the contract's guidance + sampling head. The ONNX graph (graph.ts) is tested against it.
//
// Numerics: sums and the softmax are accumulated in float64, intermediate tensors are stored as fp32.
// The sampling CDF is accumulated sequentially in fp32 (as onnxruntime's CumSum does), so the two
// implementations only disagree on a token when the uniform lies within a few 1e-7 of a CDF boundary;
// `margin` reports that distance for each slot. The row helpers (embedding, RoPE at given positions,
// attention, decoder blocks, head) also serve the cached-step reference (cached-reference.ts).

import { CODEBOOK_SIZE, IMAGE_OFFSET } from "../../model/tokens";
import { ropeTables } from "../onnx/ops";
import { headDim, lladaNames, type LladaConfig } from "./config";
import type { ModeInputs, TransformerCall } from "./call";
import type { LladaWeights } from "./weights";

function weight(w: LladaWeights, name: string): Float32Array {
  const t = w.get(name);
  if (!t) throw new Error(`reference: no weight ${name}`);
  return t.data;
}

/** out[i, o] = sum_k a[i, k] * W[o, k] for a [n, inDim] and an nn.Linear weight W [outDim, inDim]. */
export function linearRows(a: Float32Array, n: number, inDim: number, W: Float32Array, outDim: number, rowStart = 0): Float32Array {
  const out = new Float32Array(n * outDim);
  for (let i = 0; i < n; i++) {
    const ai = i * inDim;
    for (let o = 0; o < outDim; o++) {
      const wo = (rowStart + o) * inDim;
      let s = 0;
      for (let k = 0; k < inDim; k++) s += a[ai + k] * W[wo + k];
      out[i * outDim + o] = s;
    }
  }
  return out;
}

function rmsNormRows(x: Float32Array, n: number, d: number, w: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(n * d);
  for (let i = 0; i < n; i++) {
    let ss = 0;
    for (let k = 0; k < d; k++) ss += x[i * d + k] * x[i * d + k];
    const inv = 1 / Math.sqrt(ss / d + eps);
    for (let k = 0; k < d; k++) out[i * d + k] = x[i * d + k] * inv * w[k];
  }
  return out;
}

/** RoPE in place on `x` [n, heads, hd]; row p sits at position `positions[p]` (default p). */
export function ropeRows(x: Float32Array, n: number, heads: number, hd: number, cos: Float32Array, sinSigned: Float32Array, positions?: ArrayLike<number>): void {
  const half = hd / 2;
  const tmp = new Float64Array(hd);
  for (let p = 0; p < n; p++) {
    const t = (positions ? Number(positions[p]) : p) * hd;
    for (let h = 0; h < heads; h++) {
      const o = (p * heads + h) * hd;
      for (let j = 0; j < hd; j++) {
        const sw = j < half ? x[o + j + half] : x[o + j - half];
        tmp[j] = x[o + j] * cos[t + j] + sw * sinSigned[t + j];
      }
      for (let j = 0; j < hd; j++) x[o + j] = tmp[j];
    }
  }
}

/** Token embeddings [n, d] of `ids`. */
export function embedRows(cfg: LladaConfig, w: LladaWeights, ids: ArrayLike<number>): Float32Array {
  const d = cfg.dModel;
  const wte = weight(w, lladaNames.wte);
  const x = new Float32Array(ids.length * d);
  for (let i = 0; i < ids.length; i++) {
    const id = Number(ids[i]);
    if (!(id >= 0 && id < cfg.vocabSize)) throw new Error(`reference: token id ${id} outside the vocabulary`);
    x.set(wte.subarray(id * d, (id + 1) * d), i * d);
  }
  return x;
}

/**
 * Softmax attention of `nq` rotated queries [nq, d] over the first `nk` rotated keys and values
 * [*, kv] (no mask: the caller passes only the keys a query may see); scale 1/sqrt(hd).
 */
export function attendRows(cfg: LladaConfig, q: Float32Array, nq: number, k: Float32Array, v: Float32Array, nk: number): Float32Array {
  const d = cfg.dModel;
  const hd = headDim(cfg);
  const kvDim = cfg.nKvHeads * hd;
  const rep = cfg.nHeads / cfg.nKvHeads;
  const scale = 1 / Math.sqrt(hd);
  const scores = new Float64Array(nk);
  const att = new Float32Array(nq * d);
  for (let hh = 0; hh < cfg.nHeads; hh++) {
    const kh = Math.floor(hh / rep);
    for (let i = 0; i < nq; i++) {
      let mx = -Infinity;
      for (let j = 0; j < nk; j++) {
        let s = 0;
        for (let t = 0; t < hd; t++) s += q[i * d + hh * hd + t] * k[j * kvDim + kh * hd + t];
        scores[j] = s * scale;
        if (scores[j] > mx) mx = scores[j];
      }
      let sum = 0;
      for (let j = 0; j < nk; j++) sum += scores[j] = Math.exp(scores[j] - mx);
      for (let t = 0; t < hd; t++) {
        let acc = 0;
        for (let j = 0; j < nk; j++) acc += scores[j] * v[j * kvDim + kh * hd + t];
        att[i * d + hh * hd + t] = acc / sum;
      }
    }
  }
  return att;
}

/** A layer's attention on pre-RoPE q [n, d], k and v [n, kv]: returns the output before attn_out. */
export type ReferenceAttention = (layer: number, q: Float32Array, k: Float32Array, v: Float32Array) => Float32Array;

/** The decoder blocks in place on the residual stream `x` [n, d]. */
export function decoderBlocksRef(cfg: LladaConfig, w: LladaWeights, x: Float32Array, n: number, attend: ReferenceAttention): void {
  const d = cfg.dModel;
  const kvDim = cfg.nKvHeads * headDim(cfg);
  for (let l = 0; l < cfg.nLayers; l++) {
    const b = lladaNames.block(l);
    const h = rmsNormRows(x, n, d, weight(w, b.attnNorm), cfg.rmsNormEps);
    const att = attend(l, linearRows(h, n, d, weight(w, b.q), d), linearRows(h, n, d, weight(w, b.k), kvDim), linearRows(h, n, d, weight(w, b.v), kvDim));
    const o = linearRows(att, n, d, weight(w, b.attnOut), d);
    for (let i = 0; i < n * d; i++) x[i] += o[i];
    const m = rmsNormRows(x, n, d, weight(w, b.ffNorm), cfg.rmsNormEps);
    const gate = linearRows(m, n, d, weight(w, b.ffProj), cfg.mlpHidden);
    const up = linearRows(m, n, d, weight(w, b.upProj), cfg.mlpHidden);
    for (let i = 0; i < gate.length; i++) {
      const gv = gate[i];
      gate[i] = (gv / (1 + Math.exp(-gv))) * up[i];
    }
    const down = linearRows(gate, n, cfg.mlpHidden, weight(w, b.ffOut), d);
    for (let i = 0; i < n * d; i++) x[i] += down[i];
  }
}

/**
 * The final hidden states (residual stream before ln_f) of one unpadded sequence: [n, d] fp32.
 */
export function lladaForward(cfg: LladaConfig, w: LladaWeights, ids: ArrayLike<number>): Float32Array {
  const n = ids.length;
  const hd = headDim(cfg);
  const { cos, sinSigned } = ropeTables(hd, cfg.ropeTheta, Math.max(n, 1));
  const x = embedRows(cfg, w, ids);
  decoderBlocksRef(cfg, w, x, n, (_l, q, k, v) => {
    ropeRows(q, n, cfg.nHeads, hd, cos, sinSigned);
    ropeRows(k, n, cfg.nKvHeads, hd, cos, sinSigned);
    return attendRows(cfg, q, n, k, v, n);
  });
  return x;
}

/** LM-head logits over rows [rowStart, rowStart+width) for one hidden state (ln_f applied here). */
export function lladaHead(cfg: LladaConfig, w: LladaWeights, hidden: Float32Array, rowStart: number, width: number): Float32Array {
  const n = rmsNormRows(hidden, 1, cfg.dModel, weight(w, lladaNames.lnF), cfg.rmsNormEps);
  return linearRows(n, 1, cfg.dModel, weight(w, lladaNames.head), width, rowStart);
}

export interface SampleResult {
  token: number;
  /** softmax(logits)[token], not tempered. */
  confidence: number;
  /**
   * How far the decision is from flipping: for T > 0 the distance of u to the nearer boundary of the CDF
   * interval that contains it; for T == 0 the gap between the two largest logits.
   */
  margin: number;
}

/**
 * The contract's sampler for one slot: inverse CDF of softmax(logits / T) at u (count of fp32 sequential
 * cumulative probabilities < u, clamped to V-1), T == 0 = argmax (first maximum).
 */
export function sampleInverseCdfRef(logits: ArrayLike<number>, u: number, temperature: number): SampleResult {
  const V = logits.length;
  let mx = -Infinity;
  let arg = 0;
  for (let i = 0; i < V; i++) if (logits[i] > mx) (mx = logits[i]), (arg = i);
  let z = 0;
  for (let i = 0; i < V; i++) z += Math.exp(logits[i] - mx);
  if (temperature === 0) {
    let second = -Infinity;
    for (let i = 0; i < V; i++) if (i !== arg && logits[i] > second) second = logits[i];
    return { token: arg, confidence: 1 / z, margin: mx - second };
  }
  const scaled = new Float64Array(V);
  let smx = -Infinity;
  for (let i = 0; i < V; i++) {
    scaled[i] = Math.fround(logits[i] / temperature);
    if (scaled[i] > smx) smx = scaled[i];
  }
  let sz = 0;
  for (let i = 0; i < V; i++) sz += scaled[i] = Math.exp(scaled[i] - smx);
  let acc = 0;
  let count = 0;
  let lower = -Infinity;
  let upper = Infinity;
  for (let i = 0; i < V; i++) {
    acc = Math.fround(acc + Math.fround(scaled[i] / sz));
    if (acc < u) {
      count++;
      lower = acc;
    } else if (upper === Infinity) upper = acc;
  }
  const token = Math.min(count, V - 1);
  if (count === V) upper = Infinity; // clamped: every boundary is below u
  return { token, confidence: Math.exp(logits[token] - mx) / z, margin: Math.min(u - lower, upper - u) };
}

export interface ModeResult {
  /** [G,M]: codebook index (image) or vocabulary id (text). */
  tokens: Int32Array;
  /** [G,M]: softmax(combined)[token]. */
  confidence: Float32Array;
  /** [G,K,M]: per-branch maximum logit (image mode; also filled for text). */
  maxLogit: Float32Array;
  /** [G,K,M,width] per-branch logits and [G,M,width] combined logits. */
  logits: Float32Array;
  combined: Float32Array;
  /** [G,M] see SampleResult.margin. */
  margin: Float64Array;
}

export interface TransformerReferenceResult {
  /** Per row, the final hidden states of its seq_len valid positions [len, d]. */
  hidden: Float32Array[];
  image: ModeResult;
  text: ModeResult;
}

function runMode(
  cfg: LladaConfig,
  w: LladaWeights,
  call: TransformerCall,
  hidden: Float32Array[],
  mode: ModeInputs,
  rowStart: number,
  width: number,
): ModeResult {
  const { G, K, M } = mode;
  const d = cfg.dModel;
  const logits = new Float32Array(G * K * M * width);
  for (let t = 0; t < G * K * M; t++) {
    const flat = Number(mode.targets[t]);
    const r = Math.floor(flat / call.L);
    const p = flat % call.L;
    if (!(r >= 0 && r < call.R) || p >= Number(call.seqLens[r])) throw new Error(`reference: target ${flat} is not a valid position`);
    logits.set(lladaHead(cfg, w, hidden[r].subarray(p * d, (p + 1) * d), rowStart, width), t * width);
  }
  return guideAndSample(logits, mode, width);
}

/**
 * The contract's head after the logits: per-branch logits [G,K,M,width] of `mode`'s targets combined with
 * its guidance weights, sampled at its uniforms and temperatures, and each branch's max logit.
 */
export function guideAndSample(logits: Float32Array, mode: Omit<ModeInputs, "targets">, width: number): ModeResult {
  const { G, K, M } = mode;
  const maxLogit = new Float32Array(G * K * M);
  for (let t = 0; t < G * K * M; t++) {
    let mx = -Infinity;
    for (let i = 0; i < width; i++) if (logits[t * width + i] > mx) mx = logits[t * width + i];
    maxLogit[t] = mx;
  }
  const combined = new Float32Array(G * M * width);
  const tokens = new Int32Array(G * M);
  const confidence = new Float32Array(G * M);
  const margin = new Float64Array(G * M);
  const acc = new Float64Array(width);
  for (let gi = 0; gi < G; gi++)
    for (let m = 0; m < M; m++) {
      acc.fill(0);
      for (let k = 0; k < K; k++) {
        const wk = Number(mode.weights[gi * K + k]);
        const o = ((gi * K + k) * M + m) * width;
        for (let i = 0; i < width; i++) acc[i] += wk * logits[o + i];
      }
      const c = combined.subarray((gi * M + m) * width, (gi * M + m + 1) * width);
      c.set(acc);
      const s = sampleInverseCdfRef(c, Number(mode.uniforms[gi * M + m]), Number(mode.temperature[gi]));
      tokens[gi * M + m] = s.token;
      confidence[gi * M + m] = s.confidence;
      margin[gi * M + m] = s.margin;
    }
  return { tokens, confidence, maxLogit, logits, combined, margin };
}

/**
 * The whole contract on plain arrays: each row runs alone over its seq_len valid ids (no mask, no
 * padding), then image mode on the codebook slice and text mode on the full vocabulary.
 */
export function transformerReference(cfg: LladaConfig, w: LladaWeights, call: TransformerCall): TransformerReferenceResult {
  const hidden: Float32Array[] = [];
  for (let r = 0; r < call.R; r++) {
    const len = Number(call.seqLens[r]);
    if (!(len >= 1 && len <= call.L)) throw new Error(`reference: seq_lens[${r}] = ${len} outside [1, ${call.L}]`);
    const ids = Array.from({ length: len }, (_, i) => Number(call.inputIds[r * call.L + i]));
    hidden.push(lladaForward(cfg, w, ids));
  }
  return {
    hidden,
    image: runMode(cfg, w, call, hidden, call.image, IMAGE_OFFSET, CODEBOOK_SIZE),
    text: runMode(cfg, w, call, hidden, call.text, 0, cfg.vocabSize),
  };
}
