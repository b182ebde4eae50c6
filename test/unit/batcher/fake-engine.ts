// Test support: a contract-faithful fake of the transformer call, and a toy step task. The fake reads the
// packed tensors exactly as the engine would (flat row*L+pos targets plus branch offsets, seq_lens, weights,
// uniforms) and
// derives each output from the request's own rows only, so batching must not change any result.
import type { StepTask } from "../../../gpu-backend/src/batcher/step-batcher";
import type { EngineOutputs, PackedCall } from "../../../gpu-backend/src/engine/packer";
import type { CachedCall } from "../../../gpu-backend/src/engine/cached-call";
import type { CachedTransformerRunner, TransformerRunner } from "../../../gpu-backend/src/engine/runners";
import type { StepInputs, StepOutputs } from "../../../gpu-backend/src/engine/step";

export function fakeOutputs(call: PackedCall): EngineOutputs {
  const L = call.length;
  const mode = (t: PackedCall["image"], vocab: number) => {
    const tokens = new Int32Array(t.count * t.slots);
    const conf = new Float32Array(t.count * t.slots);
    for (let g = 0; g < t.count; g++) {
      for (let m = 0; m < t.slots; m++) {
        let acc = 0;
        for (let k = 0; k < t.branches; k++) {
          const flat = t.targets[(g * t.lists + (t.lists === 1 ? 0 : k)) * t.slots + m] + t.offsets[g * t.branches + k];
          const row = Math.floor(flat / L);
          const pos = flat % L;
          if (pos >= Number(call.seqLens[row])) throw new Error(`target ${pos} past seq_len of row ${row}`);
          const id = Number(call.inputIds[flat]);
          acc += t.weights[g * t.branches + k] * ((id * 7 + pos * 13) % 1009);
        }
        const u = t.uniforms[g * t.slots + m];
        tokens[g * t.slots + m] = Math.abs(Math.floor(acc * 31 + u * 977)) % vocab;
        conf[g * t.slots + m] = ((Math.abs(Math.floor(acc)) % 97) + u) / 98;
      }
    }
    return { tokens, conf };
  };
  const img = mode(call.image, 8192);
  const txt = mode(call.text, 126356);
  return { imageTokens: img.tokens, imageConfidence: img.conf, textTokens: txt.tokens, textProbability: txt.conf };
}

export interface FakeRunner extends TransformerRunner {
  calls: PackedCall[];
  delayMs: number;
  fail?: Error;
}

export function fakeRunner(delayMs = 0): FakeRunner {
  const r: FakeRunner = {
    calls: [],
    delayMs,
    async runTransformer(call, { signal }) {
      r.calls.push(call);
      if (r.delayMs > 0) {
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(resolve, r.delayMs);
          signal.addEventListener("abort", () => {
            clearTimeout(t);
            reject(Object.assign(new Error("aborted"), { name: "AbortError" }));
          });
        });
      }
      if (r.fail) throw r.fail;
      return fakeOutputs(call);
    },
  };
  return r;
}

/** A toy masked-diffusion task: N masked cells, K branches, unmasks `perStep` cells per step. */
export class ToyTask implements StepTask {
  readonly seq: Int32Array;
  readonly masked: number[];
  readonly history: number[][] = [];
  readonly totalSteps: number;
  private step = 0;
  constructor(
    readonly seed: number,
    readonly cells: number,
    readonly prefix: number,
    readonly perStep: number,
    readonly mode: "image" | "text" = "image",
    readonly branches = 2,
  ) {
    this.seq = new Int32Array(prefix + cells);
    for (let i = 0; i < prefix; i++) this.seq[i] = (seed * 131 + i * 17) % 5000;
    for (let i = 0; i < cells; i++) this.seq[prefix + i] = 126336;
    this.masked = Array.from({ length: cells }, (_, i) => prefix + i);
    this.totalSteps = Math.ceil(cells / perStep);
  }
  engineInputs(): StepInputs {
    const m = this.masked.length;
    const branches: Int32Array[] = [];
    const targets: Int32Array[] = [];
    for (let k = 0; k < this.branches; k++) {
      // branch k drops k*3 prefix tokens (shorter rows, shifted targets), like an unconditional prompt
      const drop = Math.min(this.prefix, k * 3);
      branches.push(this.seq.slice(drop));
      targets.push(Int32Array.from(this.masked, (p) => p - drop));
    }
    const weights = Float32Array.from({ length: this.branches }, (_, k) => (k === 0 ? 1 + this.branches : -1));
    const uniforms = Float32Array.from({ length: m }, (_, j) => ((this.seed * 9301 + this.step * 49297 + j * 233) % 1000) / 1000);
    return { mode: this.mode, branches, targets, weights, uniforms, temperature: 1 };
  }
  advance(out: StepOutputs): void {
    if (out.tokens.length !== this.masked.length) throw new Error("wrong output length");
    this.history.push(Array.from(out.tokens));
    const take = Math.min(this.perStep, this.masked.length);
    const order = this.masked.map((p, j) => ({ p, j, c: out.confidence[j] })).sort((a, b) => b.c - a.c || a.p - b.p);
    const chosen = new Set(order.slice(0, take).map((o) => o.p));
    for (const o of order.slice(0, take)) this.seq[o.p] = out.tokens[o.j] + 126356;
    this.masked.splice(0, this.masked.length, ...this.masked.filter((p) => !chosen.has(p)));
    this.step++;
  }
  isDone(): boolean {
    return this.masked.length === 0;
  }
}

export interface FakeCachedRunner extends TransformerRunner {
  calls: PackedCall[];
  cachedCalls: CachedCall[];
  /** Each cached call's max logits [K, L], in call order. */
  maxLogits: Float32Array[];
  readonly cached: CachedTransformerRunner;
  /** Sequences started and not ended, with their length. */
  openSequences: Map<bigint, number>;
}

/**
 * A stateless fake plus a stateful one for cached steps: the stateful fake checks the sequence protocol
 * (start first, nothing after end, one length per sequence), and answers from the request's own rows.
 */
export function fakeCachedRunner(delayMs = 0): FakeCachedRunner {
  const base = fakeRunner(delayMs);
  const open = new Map<bigint, number>();
  const cachedCalls: CachedCall[] = [];
  const maxLogits: Float32Array[] = [];
  const cached: CachedTransformerRunner = {
    async runCachedStep(call, { signal }) {
      cachedCalls.push(call);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (signal.aborted) throw Object.assign(new Error("aborted"), { name: "AbortError" });
      const L = call.length;
      if (call.start) {
        if (open.has(call.sequenceId)) throw new Error(`sequence ${call.sequenceId} started twice`);
        open.set(call.sequenceId, L);
      } else if (open.get(call.sequenceId) !== L) {
        throw new Error(`sequence ${call.sequenceId} not open at length ${L}`);
      }
      if (call.end) open.delete(call.sequenceId);
      const M = call.slots, K = call.branches;
      const tokens = new Int32Array(M);
      const confidence = new Float32Array(M);
      for (let m = 0; m < M; m++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const pos = call.targets[(call.targetLists === 1 ? 0 : k) * M + m] + call.targetShift[k];
          acc += call.weights[k] * ((Number(call.inputIds[k * L + pos]) * 7 + pos * 13) % 1009);
        }
        const u = call.uniforms[m];
        tokens[m] = Math.abs(Math.floor(acc * 31 + u * 977)) % 8192;
        confidence[m] = ((Math.abs(Math.floor(acc)) % 97) + u) / 98;
      }
      // Distinct values within a call (a shifted golden-ratio sequence), changing from step to step.
      const shift = call.uniforms[0] ?? 0;
      const maxLogit = Float32Array.from({ length: K * L }, (_, i) => 10 * ((((i % L) + 1) * 0.6180339887 + shift) % 1));
      maxLogits.push(maxLogit);
      return { tokens, confidence, ...(call.select && selectionOf(call, maxLogit)) };
    },
  };
  return Object.assign(base, { cachedCalls, maxLogits, cached, openSequences: open });
}

/**
 * The engine's evaluation of the ML-Cache rule (contract.ts recompute_codes, quantile_values), written
 * independently of the graph: per branch sort its own positions' max logits, read the values at the ranks
 * the call sent, and code each position 2 (<= low), 1 (== high > low) or 0.
 */
function selectionOf(call: CachedCall, maxLogit: Float32Array): { codes: Uint8Array; quantile: Float32Array } {
  const L = call.length;
  const codes = new Uint8Array(call.branches * L);
  const quantile = new Float32Array(2 * call.branches);
  for (let k = 0; k < call.branches; k++) {
    const row = maxLogit.subarray(k * L, k * L + call.seqLens[k]);
    const sorted = Float32Array.from(row).sort();
    const low = sorted[call.quantileRanks[2 * k]], high = sorted[call.quantileRanks[2 * k + 1]];
    quantile.set([low, high], 2 * k);
    row.forEach((x, i) => (codes[k * L + i] = x <= low ? 2 : x <= high ? 1 : 0));
  }
  return { codes, quantile };
}
