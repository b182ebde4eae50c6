// `npx tsx scripts/bench-fair-share.ts`: one tenant floods the step batcher while another sends requests
// one at a time; the second tenant's latency (p50/p99) against running alone, with the requests tagged by
// tenant (fair share) and untagged (one shared queue, first come first served). The engine is simulated:
// every call takes a fixed time plus a little per row, so the figures are about scheduling, not compute.
// Options: --flood 24 --probes 12 --steps 16 --step-ms 20
import { parseArgs } from "node:util";
import { StepBatcher, type StepTask } from "../gpu-backend/src/batcher/step-batcher";
import type { PackedCall } from "../gpu-backend/src/engine/packer";
import type { TransformerRunner } from "../gpu-backend/src/engine/runners";
import type { StepInputs, StepOutputs } from "../gpu-backend/src/engine/step";

const { values: opt } = parseArgs({
  options: { flood: { type: "string", default: "24" }, probes: { type: "string", default: "12" }, steps: { type: "string", default: "16" }, "step-ms": { type: "string", default: "20" } },
});
const FLOOD = Number(opt.flood), PROBES = Number(opt.probes), STEPS = Number(opt.steps), STEP_MS = Number(opt["step-ms"]);

/** A request of STEPS steps over one 256-token branch pair. */
class Job implements StepTask {
  private done = 0;
  readonly totalSteps = STEPS;
  engineInputs(): StepInputs {
    const row = new Int32Array(256);
    const targets = Int32Array.from({ length: 8 }, (_, i) => 200 + i);
    return { mode: "image", branches: [row, row], targets: [targets, targets], weights: Float32Array.of(5, -4), uniforms: new Float32Array(8).fill(0.5), temperature: 1 };
  }
  advance(_: StepOutputs): void {
    this.done++;
  }
  isDone(): boolean {
    return this.done >= STEPS;
  }
}

const engine: TransformerRunner = {
  async runTransformer(call: PackedCall) {
    await new Promise((r) => setTimeout(r, STEP_MS + call.rows));
    const n = call.image.count * call.image.slots;
    return { imageTokens: new Int32Array(n), imageConfidence: new Float32Array(n).fill(0.5), textTokens: new Int32Array(0), textProbability: new Float32Array(0) };
  },
};

function run(b: StepBatcher, tenant: string | undefined): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve, reject) =>
    b.submit({ requestId: "r", tenant, deadlineAt: Infinity, prepare: () => new Job(), onDone: () => resolve(performance.now() - t0), onError: reject }),
  );
}

const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function scenario(flood: boolean, tagged: boolean): Promise<number[]> {
  const b = new StepBatcher({ runner: engine, maxActive: 8, maxQueue: 64 });
  const flooding = flood ? Array.from({ length: FLOOD }, () => run(b, tagged ? "flood" : undefined).catch(() => 0)) : [];
  await new Promise((r) => setTimeout(r, 5));
  const lat: number[] = [];
  for (let i = 0; i < PROBES; i++) lat.push(await run(b, tagged ? "probe" : undefined));
  await Promise.all(flooding);
  return lat;
}

async function main() {
  console.log(`# fair share: ${FLOOD} requests flood at once, ${PROBES} probe requests one at a time, ${STEPS} steps each, ~${STEP_MS} ms per call, 8 slots`);
  const alone = await scenario(false, true);
  const shared = await scenario(true, false);
  const fair = await scenario(true, true);
  for (const [name, xs] of [["probe alone", alone], ["with flood, one queue", shared], ["with flood, by tenant", fair]] as const) {
    console.log(`${name.padEnd(22)}: p50 ${pct(xs, 0.5).toFixed(0)} ms, p99 ${pct(xs, 0.99).toFixed(0)} ms (${(pct(xs, 0.5) / pct(alone, 0.5)).toFixed(2)}x alone at p50)`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
