// Shared by the transformer graph tests (llada-graph, llada-cached, the cached model served over Triton):
// tolerances against the TypeScript reference, random id rows, a cached-step plan, output accessors and
// the token comparison that exempts near-boundary draws.
//
// Tolerances (observed values are ~10-50x smaller; docs/engine-contract.md lists them):
//   final hidden states   max |diff| <= 1e-4      (values of RMS ~1-3)
//   logits                max |diff| <= 2e-4      (|logit| up to ~15)
//   guided logits         max |diff| <= 1e-3      (weights up to 7.5)
//   confidence            max |diff| <= 2e-5
//   tokens                identical, except where the uniform lies within 1e-5 of a CDF boundary (T > 0) or
//                         the two best logits are within 1e-4 (T = 0)
//   padding invariance    a row alone vs padded in a batch: hidden within 1e-5, tokens identical

import { expect } from "vitest";
import { recomputeLists, refreshRecompute, type CachedStep } from "../../../gpu-backend/src/builder/llada/cached-call";
import { mulberry32 } from "../../../gpu-backend/src/builder/seeded-random";
import { CODEBOOK_SIZE, IMAGE_OFFSET, MASK, VOCAB_SIZE } from "../../../gpu-backend/src/model/tokens";

export const TOL = { hidden: 1e-4, logits: 2e-4, combined: 1e-3, confidence: 2e-5, margin: 1e-5, argmaxGap: 1e-4, padding: 1e-5 };

export const rng = mulberry32;

/** Right-padded rows of random ids (pads hold `pad`), lengths as given. */
export function batch(lens: number[], L: number, seed: number, pad = 0): { inputIds: number[]; seqLens: number[] } {
  const r = rng(seed);
  const inputIds: number[] = [];
  for (const len of lens) for (let i = 0; i < L; i++) inputIds.push(i < len ? Math.floor(r() * VOCAB_SIZE) : pad);
  return { inputIds, seqLens: lens };
}

export type Outputs = Record<string, { dims: readonly number[]; data: unknown }>;

export const f32 = (o: Outputs, name: string) => o[name].data as Float32Array;
export const tokens = (o: Outputs, name: string) => Array.from(o[name].data as Int32Array, Number);

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Tokens agree except where the reference says the decision is within `tol` of flipping. */
export function expectTokens(got: number[], ref: { tokens: Int32Array; margin: Float64Array }, tol: number): { checked: number; exempt: number } {
  let exempt = 0;
  for (let i = 0; i < got.length; i++) {
    if (ref.margin[i] < tol) {
      exempt++;
      continue;
    }
    expect(got[i], `slot ${i} (margin ${ref.margin[i]})`).toBe(ref.tokens[i]);
  }
  return { checked: got.length - exempt, exempt };
}

/**
 * A text-to-image-like sequence of K branches: prompt ids, then image cells that start as MASK and get
 * committed to codes step by step. Targets are the masked cells (the same cells in every branch, at each
 * branch's own positions), recompute sets are random per branch on cached steps.
 */
export function imageSequence(K: number, L: number, lens: number[], seed: number) {
  const r = rng(seed);
  const { inputIds } = batch(lens, L, seed);
  const cells = Math.min(...lens) - 6;
  const cellPos = (k: number, c: number) => lens[k] - cells + c;
  const masked = new Set(Array.from({ length: cells }, (_, c) => c));
  for (let k = 0; k < K; k++) for (let c = 0; c < cells; c++) inputIds[k * L + cellPos(k, c)] = MASK;
  return {
    /** The next step's inputs; `recompute` null = refresh. Commits `commit` masked cells afterwards. */
    next(recomputeSizes: number[] | null, weights: number[], temperature: number, commit: number): CachedStep {
      const slots = [...masked];
      const rec = recomputeSizes ? recomputeLists(recomputeSizes.map((n, k) => Array.from({ length: n }, () => Math.floor(r() * lens[k])))) : refreshRecompute(K, L);
      const s: CachedStep = {
        K,
        L,
        inputIds: inputIds.slice(),
        seqLens: lens,
        ...rec,
        targets: Array.from({ length: K }, (_, k) => slots.map((c) => cellPos(k, c))).flat(),
        M: slots.length,
        weights,
        uniforms: slots.map(() => r()),
        temperature,
      };
      for (const c of slots.slice(0, commit)) {
        masked.delete(c);
        const code = IMAGE_OFFSET + Math.floor(r() * CODEBOOK_SIZE);
        for (let k = 0; k < K; k++) inputIds[k * L + cellPos(k, c)] = code;
      }
      return s;
    },
  };
}

