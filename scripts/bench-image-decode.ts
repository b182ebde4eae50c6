// `npx tsx scripts/bench-image-decode.ts`: what a large upload costs the event loop that drives every
// request's steps. The same image is prepared (decoded, then cropped with the 512 list, or LANCZOS-resized
// to multiples of 16 for painting) inline on the event loop and on the image worker pool, while a 5 ms timer
// stands in for step progress; reports the wall time, the event loop's worst stall (perf_hooks) and how many
// timer ticks got through. Options: --width 4096 --height 3072 --prep crop512|crop1024|floor16 --runs 3
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import sharp from "sharp";
import { inlineImageWork, type ImageWork } from "../gpu-backend/src/image-work/image-work";
import type { InputPrep } from "../gpu-backend/src/image-work/jobs";
import { ImageWorkerPool } from "../gpu-backend/src/image-work/worker-pool";

const { values: opt } = parseArgs({
  options: { width: { type: "string", default: "4096" }, height: { type: "string", default: "3072" }, prep: { type: "string", default: "crop512" }, runs: { type: "string", default: "3" } },
});
const W = Number(opt.width), H = Number(opt.height), PREP = opt.prep as InputPrep, RUNS = Number(opt.runs);

async function photo(): Promise<Uint8Array> {
  const raw = Buffer.alloc(W * H * 3);
  for (let i = 0; i < raw.length; i++) raw[i] = (i * 31 + (i >> 11)) & 255;
  return sharp(raw, { raw: { width: W, height: H, channels: 3 } }).png({ compressionLevel: 1 }).toBuffer();
}

async function measure(work: ImageWork, bytes: Uint8Array): Promise<{ ms: number; stallMs: number; ticks: number }> {
  const lag = monitorEventLoopDelay({ resolution: 5 });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  lag.enable();
  const t0 = performance.now();
  await work.prepare(bytes, { field: "images[0]", maxPixels: W * H, prep: PREP });
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20)); // let the histogram see the last stall
  lag.disable();
  clearInterval(timer);
  return { ms, stallMs: lag.max / 1e6, ticks };
}

const bytes = await photo();
const pool = new ImageWorkerPool({ threads: 1 });
await pool.prepare(await sharp({ create: { width: 32, height: 32, channels: 3, background: "#888" } }).png().toBuffer(), { field: "warm", maxPixels: 1024, prep: PREP });
console.log(`${W}x${H} PNG (${(bytes.length / 1e6).toFixed(1)} MB), prep ${PREP}, ${RUNS} runs each`);
for (const [name, work] of [["inline (event loop)", inlineImageWork], ["worker pool", pool]] as const) {
  for (let r = 0; r < RUNS; r++) {
    const m = await measure(work, bytes);
    console.log(`${name.padEnd(20)} run ${r + 1}: ${m.ms.toFixed(0)} ms, worst event-loop stall ${m.stallMs.toFixed(0)} ms, 5 ms ticks ${m.ticks} (ideal ${Math.floor(m.ms / 5)})`);
  }
}
await pool.close();
