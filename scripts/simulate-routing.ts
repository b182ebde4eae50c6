// Probe traffic of the three ways the edge can learn which GPU hosts are ready, at fleet scale (default 10,000
// Worker isolates, 50 hosts). Deterministic (seeded PRNG): `npx tsx scripts/simulate-routing.ts` prints the
// table in docs/deploy.md ("Routing that scales"); flags: --isolates N --hosts N --seconds N --seed N.
//
// Model: model calls (Generate/Understand) arrive as a Poisson stream at R calls/s, each in one isolate
// chosen uniformly (traffic spread evenly, the worst case for caches) or by a Zipf law (s = 1.1: a few busy
// colos). What each design sends:
//   probe      (ORCHESTRATOR_ROUTING=probe, today's pool): a call in an isolate whose health memory is older
//              than the TTL (5 s) first sends a Health RPC to every host and waits for the answers;
//   registry   a Durable Object the hosts report to (a heartbeat every 2 s each); a call in an isolate whose
//              copy is older than the TTL first reads the registry once (one DO request);
//   balanced   (ORCHESTRATOR_ROUTING=balanced, the default for fleets): isolates send nothing; Cloudflare Load
//              Balancing monitors probe each origin from 3 data centres in each of the pool's monitor
//              regions every interval (all 13 regions: 39 probes per origin per interval, 60 s default).
// Isolate churn is not modelled: a new isolate starts cold, which only adds probe rounds to probe/registry.
import { parseArgs } from "node:util";
import { mulberry32 } from "../gpu-backend/src/builder/seeded-random";

const { values: args } = parseArgs({
  options: {
    isolates: { type: "string", default: "10000" },
    hosts: { type: "string", default: "50" },
    seconds: { type: "string", default: "600" },
    seed: { type: "string", default: "1" },
  },
});
const ISOLATES = Number(args.isolates);
const HOSTS = Number(args.hosts);
const SECONDS = Number(args.seconds);
const WARMUP = Math.min(60, SECONDS / 10); // start cold, measure after a minute
const TTL_S = 5; // edge/src/config.ts TTL.healthMs
const HEARTBEAT_S = 2;
const MONITOR_REGIONS = 13;
const MONITOR_DCS_PER_REGION = 3;
const MONITOR_INTERVAL_S = 60;
const RATES = [10, 100, 1000];


/** Picks an isolate: uniform, or Zipf(s) by inverse CDF over ranks. */
function isolatePicker(kind: "uniform" | "zipf", rand: () => number): () => number {
  if (kind === "uniform") return () => Math.floor(rand() * ISOLATES);
  const s = 1.1;
  const cdf = new Float64Array(ISOLATES);
  let acc = 0;
  for (let i = 0; i < ISOLATES; i++) cdf[i] = acc += 1 / Math.pow(i + 1, s);
  for (let i = 0; i < ISOLATES; i++) cdf[i] /= acc;
  return () => {
    const u = rand();
    let lo = 0, hi = ISOLATES - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid] < u) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

interface Row {
  rate: number;
  spread: string;
  /** Calls that found the isolate's health memory stale (a probe round or a registry read first). */
  coldCalls: number;
  calls: number;
}

/** Simulates the call stream once; probe and registry share it (both refresh on a stale isolate). */
function simulate(rate: number, spread: "uniform" | "zipf", seed: number): Row {
  const rand = mulberry32(seed); // seeded, so every run prints the same figures
  const pick = isolatePicker(spread, rand);
  const lastRefresh = new Float64Array(ISOLATES).fill(-Infinity);
  let t = 0, calls = 0, coldCalls = 0;
  for (;;) {
    t += -Math.log(1 - rand()) / rate;
    if (t >= SECONDS) break;
    const i = pick();
    const cold = t - lastRefresh[i] > TTL_S;
    if (cold) lastRefresh[i] = t;
    if (t >= WARMUP) {
      calls++;
      if (cold) coldCalls++;
    }
  }
  return { rate, spread, calls, coldCalls };
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n >= 10 ? n.toFixed(1) : n.toFixed(2));
const window = SECONDS - WARMUP;
const monitorPerOrigin = (MONITOR_REGIONS * MONITOR_DCS_PER_REGION) / MONITOR_INTERVAL_S;

console.log(`# Probe traffic: ${ISOLATES.toLocaleString("en-US")} isolates, ${HOSTS} hosts, ${SECONDS} s simulated (first ${WARMUP} s not counted), seed ${args.seed}`);
console.log(`# health TTL ${TTL_S} s; registry heartbeat ${HEARTBEAT_S} s; LB monitors ${MONITOR_REGIONS} regions x ${MONITOR_DCS_PER_REGION} DCs every ${MONITOR_INTERVAL_S} s\n`);
console.log("| calls/s | isolate spread | design | probe requests/s, all | per host /s | per call | calls that wait on a probe |");
console.log("|---:|---|---|---:|---:|---:|---:|");
let seed = Number(args.seed);
for (const rate of RATES) {
  for (const spread of ["uniform", "zipf"] as const) {
    const r = simulate(rate, spread, seed++);
    const rounds = r.coldCalls / window;
    const cold = `${((100 * r.coldCalls) / r.calls).toFixed(1)} %`;
    // probe: every stale call sends one Health RPC per host (each also asks Triton for model readiness).
    console.log(`| ${rate} | ${spread} | probe | ${fmt(rounds * HOSTS)} | ${fmt(rounds)} | ${fmt((rounds * HOSTS) / rate)} | ${cold} |`);
    // registry: one DO read per stale call, plus every host's heartbeat; hosts see only their own heartbeat.
    const reads = rounds, beats = HOSTS / HEARTBEAT_S;
    console.log(`| ${rate} | ${spread} | registry DO | ${fmt(reads + beats)} (${fmt(reads)} reads + ${fmt(beats)} heartbeats, one object) | ${fmt(1 / HEARTBEAT_S)} | ${fmt(reads / rate)} | ${cold} |`);
    // balanced: monitors only, independent of isolates and calls.
    console.log(`| ${rate} | ${spread} | balanced (LB) | ${fmt(HOSTS * monitorPerOrigin)} | ${fmt(monitorPerOrigin)} | ${fmt((HOSTS * monitorPerOrigin) / rate)} | 0 % |`);
  }
}
console.log(`\n# Upper bound, every isolate busy (a call per TTL each): probe ${fmt((ISOLATES * HOSTS) / TTL_S)} Health RPCs/s (${fmt(ISOLATES / TTL_S)} per host), registry ${fmt(ISOLATES / TTL_S)} DO reads/s on one object, balanced unchanged.`);
