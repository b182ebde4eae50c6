// A simulated transformer engine for the scheduling benchmarks: it answers every packed call with
// well-formed tokens and confidences after the time a GPU would take for it. The time grows with the
// tokens in the call (step-cost.ts counts the call's FLOPs at its padded length) and is calibrated so one
// guided 1024x1024 step (two 4.3k-token branches) takes 0.19 s, the H100 figure of the performance anchors
// (section 4: BF16 at a measured 790 TFLOP/s). Small calls under-use a GPU: a call is charged as if its
// throughput were tokens / (tokens + halfSaturationTokens) of the full rate, so batching small images pays,
// as published (512x512 up to 3.2x) while a 1024x1024 call is already near saturation.
// `scale` multiplies every simulated time so the suite fits its time budget (0 = answer at once).
import type { EngineOutputs, PackedCall } from "../../gpu-backend/src/engine/packer";
import type { EngineCallOptions, TransformerRunner } from "../../gpu-backend/src/engine/runners";
import { CODEBOOK_SIZE } from "../../gpu-backend/src/model/tokens";
import { statelessCallCost } from "./step-cost";

export interface SimulatedEngineOptions {
  /** Multiplies every simulated time (1 = real GPU time; 0 = instant). */
  scale: number;
  /** Seconds of the calibration call: two branches of `calibrationTokens`, every image cell a target. */
  calibrationSeconds?: number;
  calibrationTokens?: number;
  /** Tokens at which a call reaches half the full throughput. */
  halfSaturationTokens?: number;
  /** Fixed cost of every call (launch, Triton's queue), ms before scaling. */
  fixedMs?: number;
}

export interface SimulatedEngine extends TransformerRunner {
  /** Simulated seconds of one call, before scaling. */
  secondsFor(call: Pick<PackedCall, "rows" | "length" | "image" | "text">): number;
  readonly stats: { calls: number; busySeconds: number; tokens: number };
}

/** The guided 1024x1024 calibration point: 0.19 s for two 4,314-token branches (anchors §1.3 and §4). */
export const CALIBRATION = { seconds: 0.19, tokens: 4314, imageTargets: 4096 };

export function createSimulatedEngine(opts: SimulatedEngineOptions): SimulatedEngine {
  const half = opts.halfSaturationTokens ?? 1024;
  const fixed = (opts.fixedMs ?? 1) / 1000;
  const calTokens = opts.calibrationTokens ?? CALIBRATION.tokens;
  const calSeconds = opts.calibrationSeconds ?? CALIBRATION.seconds;
  const utilisation = (tokens: number) => tokens / (tokens + half);
  const cal = statelessCallCost(2, calTokens, 2 * CALIBRATION.imageTargets);
  // Full-rate FLOP/s such that the calibration call takes calSeconds, fixed cost included.
  const rate = cal.flops / (utilisation(2 * calTokens) * (calSeconds - fixed));

  // Outputs are drawn once and handed out as views: the engine costs the orchestrator no CPU.
  let tokens = new Int32Array(0);
  let confidence = new Float32Array(0);
  const ensure = (n: number) => {
    if (tokens.length >= n) return;
    tokens = new Int32Array(n);
    confidence = new Float32Array(n);
    let x = 12345;
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      tokens[i] = x % CODEBOOK_SIZE;
      confidence[i] = ((x >>> 8) + 1) / 16777218;
    }
  };

  const stats = { calls: 0, busySeconds: 0, tokens: 0 };
  const secondsFor = (call: Pick<PackedCall, "rows" | "length" | "image" | "text">) => {
    const padded = call.rows * call.length;
    const img = call.image.count * call.image.branches * call.image.slots;
    const txt = call.text.count * call.text.branches * call.text.slots;
    return fixed + statelessCallCost(call.rows, call.length, img, txt).flops / (rate * utilisation(padded));
  };

  return {
    secondsFor,
    stats,
    async runTransformer(call: PackedCall, o: EngineCallOptions & { signal: AbortSignal }): Promise<EngineOutputs> {
      const seconds = secondsFor(call);
      stats.calls++;
      stats.busySeconds += seconds;
      stats.tokens += call.tokens;
      const ms = seconds * 1000 * opts.scale;
      if (ms > 0) await abortableSleep(ms, o.signal);
      const gm = call.image.count * call.image.slots;
      const tn = call.text.count * call.text.slots;
      ensure(Math.max(gm, tn));
      return { imageTokens: tokens.subarray(0, gm), imageConfidence: confidence.subarray(0, gm), textTokens: tokens.subarray(0, tn), textProbability: confidence.subarray(0, tn) };
    },
  };
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
