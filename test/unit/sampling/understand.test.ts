import { describe, expect, it } from "vitest";
import { InvalidArgument } from "../../../gpu-backend/src/model/errors";
import { BOA, EOA, EOS, MASK, PAD } from "../../../gpu-backend/src/model/tokens";
import { numTransferTokens } from "../../../gpu-backend/src/sampling/mask-schedule";
import type { UnderstandParams } from "../../../gpu-backend/src/sampling/understand";
import { runFakeEngine, type LogitsFn } from "./fake-engine";
import { P, runToEnd, understand } from "./helpers";

const img = { h: 2, w: 3, codes: Int32Array.from({ length: 6 }, (_, i) => i) };
const VOCAB = Int32Array.from([...Array.from({ length: 10 }, (_, i) => 100 + i), EOA, PAD, EOS, MASK]);

/** A model that answers tokens 100.. for `answerLen` positions, then </answer>, then pads. */
function answerModel(codeStart: number, answerLen: number, end = EOA): LogitsFn {
  return (_row, pos) => {
    const rel = pos - codeStart;
    const want = rel < answerLen ? 100 + (rel % 10) : rel === answerLen ? end : PAD;
    const l = new Float64Array(VOCAB.length);
    // Confidence varies with position so the top-k order is not simply left to right.
    l[VOCAB.indexOf(want)] = 3 + ((rel * 7) % 5);
    return l;
  };
}

const base: UnderstandParams = { prompt: P, images: [img], genLength: 64, blockLength: 16, steps: 32, cfgScale: 0, temperature: 0, seed: 5n };
const codeStart = P.length + (2 * 4 + 2) + 1;

describe("understanding sampler (LLaDA block diffusion)", () => {
  it("stops after the block that contains </answer> and cuts the answer there", () => {
    const run = runToEnd(understand, base, { logits: answerModel(codeStart, 20), textVocab: VOCAB });
    // 4 blocks x 8 steps, but </answer> at offset 20 is in block 1: stop after 2 blocks = 16 steps.
    expect(run.steps.length).toBe(16);
    expect(run.state.finishedBlocks).toBe(2);
    const ans = Array.from(understand.answerTokens(run.state));
    expect(ans).toEqual(Array.from({ length: 20 }, (_, i) => 100 + (i % 10)));
    expect(run.state.x[codeStart + 20]).toBe(EOA);
    expect(run.state.x[codeStart - 1]).toBe(BOA);
  });

  it("also stops on PAD or EOS, and runs all blocks when no stop token appears", () => {
    const eos = runToEnd(understand, base, { logits: answerModel(codeStart, 5, EOS), textVocab: VOCAB });
    expect(eos.steps.length).toBe(8);
    expect(understand.answerTokens(eos.state).length).toBe(5);
    const full = runToEnd(understand, base, { logits: answerModel(codeStart, 1000), textVocab: VOCAB });
    expect(full.steps.length).toBe(32);
    expect(understand.answerTokens(full.state).length).toBe(64);
  });

  it("emits text per finished block", () => {
    const run = runToEnd(understand, base, { logits: answerModel(codeStart, 40), textVocab: VOCAB });
    const lens = run.states.map((s) => understand.answerTokens(s).length);
    // Grows only at block boundaries: 0 during block 0, 16 after it, 32 after block 1, 40 at the end.
    expect([...new Set(lens)]).toEqual([0, 16, 32, 40]);
    expect(lens[8]).toBe(16);
    expect(lens[7]).toBe(0);
  });

  it("commits get_num_transfer_tokens per step, choosing the most confident masked positions of the block", () => {
    const p = { ...base, genLength: 32, blockLength: 32, steps: 10 };
    const model = answerModel(codeStart, 1000);
    const run = runToEnd(understand, p, { logits: model, textVocab: VOCAB });
    const tr = numTransferTokens(32, 10);
    for (let i = 0; i < 10; i++) {
      const before = run.states[i].x, after = run.states[i + 1].x;
      const committed: number[] = [];
      for (let q = codeStart; q < codeStart + 32; q++) if (before[q] === MASK && after[q] !== MASK) committed.push(q);
      expect(committed.length).toBe(tr[i]);
      // Every committed position is at least as confident as every position left masked.
      const conf = (q: number) => 3 + (((q - codeStart) * 7) % 5);
      const left = [];
      for (let q = codeStart; q < codeStart + 32; q++) if (after[q] === MASK) left.push(q);
      for (const c of committed) for (const l of left) expect(conf(c)).toBeGreaterThanOrEqual(conf(l));
    }
  });

  it("targets only masked positions up to the current block", () => {
    const run = runToEnd(understand, base, { logits: answerModel(codeStart, 1000), textVocab: VOCAB });
    run.steps.forEach((st, i) => {
      const block = Math.floor(i / 8);
      expect(st.mode).toBe("text");
      for (const t of st.targets[0]) {
        expect(t).toBeGreaterThanOrEqual(codeStart);
        expect(t).toBeLessThan(codeStart + (block + 1) * 16);
        expect(st.branches[0][t]).toBe(MASK);
      }
    });
  });

  it("CFG masks every position that was not MASK at the start", () => {
    const s = understand.init({ ...base, cfgScale: 1.5 });
    const inp = understand.engineInputs(s);
    expect(Array.from(inp.weights)).toEqual([2.5, -1.5]);
    const [cond, un] = inp.branches;
    expect(un.length).toBe(cond.length);
    for (let q = 0; q < cond.length; q++) expect(un[q]).toBe(q >= codeStart && q < codeStart + 64 ? cond[q] : MASK);
    expect(Array.from(inp.targets[1])).toEqual(Array.from(inp.targets[0]));
  });

  it("skips steps that would commit nothing, without changing the result", () => {
    const p = { ...base, genLength: 4, blockLength: 4, steps: 8 };
    const run = runToEnd(understand, p, { logits: answerModel(codeStart, 1000), textVocab: VOCAB });
    expect(run.steps.length).toBe(4);
    expect(Array.from(understand.answerTokens(run.state))).toEqual([100, 101, 102, 103]);
  });

  it("is deterministic under sampling and depends on the seed", () => {
    const noisy: LogitsFn = (_row, pos) => Float64Array.from(VOCAB, (_, i) => (((pos * 31 + i * 17) % 13) / 4) * (i < 10 ? 1 : 0.2));
    const p = { ...base, temperature: 1 };
    const a = understand.answerTokens(runToEnd(understand, p, { logits: noisy, textVocab: VOCAB }).state);
    const b = understand.answerTokens(runToEnd(understand, { ...p }, { logits: noisy, textVocab: VOCAB }).state);
    const c = understand.answerTokens(runToEnd(understand, { ...p, seed: 6n }, { logits: noisy, textVocab: VOCAB }).state);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(c));
  });

  it("validates block and step counts with the field named", () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(InvalidArgument);
        return (e as InvalidArgument).field;
      }
      return null;
    };
    expect(field(() => understand.init({ ...base, blockLength: 24 }))).toBe("block_length");
    expect(field(() => understand.init({ ...base, steps: 30 }))).toBe("steps");
    expect(field(() => understand.init({ ...base, genLength: 0 }))).toBe("max_tokens");
  });

  it("rejects outputs of the wrong size", () => {
    const s = understand.init(base);
    const inp = understand.engineInputs(s);
    expect(inp.uniforms.length).toBe(16);
    expect(() => understand.advance(s, runFakeEngine({ ...inp, targets: inp.targets.map((t) => t.slice(1)), uniforms: inp.uniforms.slice(1) }, { logits: answerModel(codeStart, 5), textVocab: VOCAB }))).toThrow(/16 target slots/);
  });
});
