// The benchmark suite's building blocks (scripts/bench/): every section module loads and names a command
// that reproduces it, the stats helpers compute what docs/benchmarks.md claims (nearest-rank p99, medians,
// ratios), the step cost model agrees with the performance anchors' arithmetic, the simulated engine is
// calibrated and answers well-formed calls, and the ML-Cache script's output is read correctly. No timing
// is asserted here: timing goals live in docs/benchmarks.md.
import { describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SECTIONS } from "../../../scripts/bench/sections";
import { median, percentile, ratio, summarize, table } from "../../../scripts/bench/stats";
import { statelessCallCost, cachedCallCost, rooflineSeconds } from "../../../scripts/bench/step-cost";
import { CALIBRATION, createSimulatedEngine } from "../../../scripts/bench/simulated-engine";
import { parseMlCacheJson } from "../../../scripts/bench/wire";
import { packStep } from "../../../gpu-backend/src/engine/packer";
import type { StepInputs } from "../../../gpu-backend/src/engine/step";

const ROOT = join(__dirname, "..", "..", "..");

describe("benchmark sections", () => {
  it("load, have distinct ids, and each names a runnable command for its own file", () => {
    expect(SECTIONS.length).toBe(8);
    expect(new Set(SECTIONS.map((s) => s.id)).size).toBe(SECTIONS.length);
    for (const s of SECTIONS) {
      expect(typeof s.run).toBe("function");
      const file = /scripts\/bench[\w/-]*\.ts/.exec(s.command)?.[0];
      expect(file, s.id).toBeDefined();
      expect(existsSync(join(ROOT, file!)), file).toBe(true);
    }
  });
});

describe("stats helpers", () => {
  it("nearest-rank percentiles and medians", () => {
    const xs = Array.from({ length: 100 }, (_, i) => 100 - i); // 1..100, unsorted
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(xs[0]).toBe(100); // inputs are not reordered
  });

  it("summaries and ratios", () => {
    const s = summarize([5, 1, 3]);
    expect(s).toMatchObject({ n: 3, min: 1, max: 5, median: 3, mean: 3, p99: 5 });
    expect(ratio(3, 2)).toBe("1.50x");
    expect(ratio(1, 0)).toBe("–");
  });

  it("tables escape pipes and keep one cell per column", () => {
    const t = table(["a", "b"], [["x|y", 1234.5]]);
    expect(t).toEqual(["| a | b |", "|---|---|", "| x\\|y | 1,235 |"]);
  });
});

describe("step cost model", () => {
  it("matches the anchors' 1.405e14 FLOPs for a guided 1024x1024 step at T = 4,314 with the codebook head", () => {
    const c = statelessCallCost(2, 4314, 2 * 4096);
    expect(c.flops / 1.405e14).toBeGreaterThan(0.99);
    expect(c.flops / 1.405e14).toBeLessThan(1.01);
    // Compute-bound on an H100: weights (~14 GB) read in a few ms against ~0.18 s of matmuls.
    expect(rooflineSeconds(c, 790e12, 3.35e12)).toBeCloseTo(c.flops / 790e12, 6);
  });

  it("a cached step recomputing 10% costs a fraction of a refresh", () => {
    const full = cachedCallCost(2, 4264, 4264), cached = cachedCallCost(2, 4264, 427);
    expect(cached.flops / full.flops).toBeGreaterThan(0.05);
    expect(cached.flops / full.flops).toBeLessThan(0.2);
    expect(cached.bytes).toBeGreaterThan(statelessCallCost(2, 4264, 0).bytes - 1); // it still reads every weight
  });
});

describe("simulated engine", () => {
  const image = (cells: number, promptLen: number): StepInputs => {
    const row = new Int32Array(promptLen + cells);
    const targets = Int32Array.from({ length: cells }, (_, i) => promptLen + i);
    return { mode: "image", branches: [row, row], targets: [targets, targets], weights: Float32Array.of(5, -4), uniforms: new Float32Array(cells).fill(0.5), temperature: 1 };
  };

  it("is calibrated to 0.19 s for two 4.3k-token branches and grows with the tokens in the call", () => {
    const engine = createSimulatedEngine({ scale: 0 });
    const cal = packStep([image(CALIBRATION.imageTargets, CALIBRATION.tokens - CALIBRATION.imageTargets)], CALIBRATION.tokens);
    expect(engine.secondsFor(cal)).toBeCloseTo(CALIBRATION.seconds, 6);
    const small = packStep([image(256, 100)], 384);
    const four = packStep([image(256, 100), image(256, 100), image(256, 100), image(256, 100)], 384);
    expect(engine.secondsFor(small)).toBeLessThan(engine.secondsFor(four));
    // Small calls under-use the GPU: four requests in one call cost less than four calls.
    expect(engine.secondsFor(four)).toBeLessThan(4 * engine.secondsFor(small));
  });

  it("answers a packed call with one token and confidence per target slot", async () => {
    const engine = createSimulatedEngine({ scale: 0 });
    const call = packStep([image(16, 4), image(8, 4)], 32);
    const out = await engine.runTransformer(call, { requestId: "t", signal: new AbortController().signal });
    expect(out.imageTokens.length).toBe(call.image.count * call.image.slots);
    expect(out.imageConfidence.every((c) => c > 0 && c < 1)).toBe(true);
    expect(engine.stats.calls).toBe(1);
  });
});

describe("ML-Cache script output", () => {
  it("reads the --json output of scripts/bench-ml-cache.ts", () => {
    const mode = { engineMs: 1, wallMs: 2, cpuMs: 3, tokens: 3, cachedSteps: 4, bytesSentPerStep: 5, bytesReceivedPerStep: 6 };
    const r = parseMlCacheJson({ off: mode, on: { ...mode, tokens: 9 }, projected: { steps: 64, offMs: 10, onMs: 5, ratio: 2 } })!;
    expect(r.on.tokens).toBe(9);
    expect(r.off.bytesSentPerStep).toBe(5);
    expect(r.projected?.ratio).toBe(2);
    expect(parseMlCacheJson({ something: 1 })).toBeUndefined();
  });
});
