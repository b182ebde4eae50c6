// What a benchmark section is, and how one runs on its own. The runner (scripts/bench.ts) runs every
// section in one process, sharing one local stack, and writes docs/benchmarks.md; each section file also
// runs alone (`npx tsx scripts/bench/<section>.ts [--scale S] [--quick]`) and prints its Markdown.
import { parseArgs } from "node:util";
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { startBenchStack, type BenchStack } from "./stack";

export interface BenchContext {
  /** Time scale of the simulated engine (1 = the H100's real step time). */
  scale: number;
  /** Fewer repetitions (smoke runs). */
  quick: boolean;
  /** The shared local stack, started on first use. */
  stack(): Promise<BenchStack>;
  log(line: string): void;
}

/** One figure for the summary table at the top of docs/benchmarks.md. */
export interface Headline {
  figure: string;
  value: string;
  goal: string;
  /** Whether the goal is met; undefined when the figure has no pass/fail goal. */
  met?: boolean;
}

export interface SectionResult {
  /** The section's body in docs/benchmarks.md (tables and notes). */
  markdown: string[];
  headlines?: Headline[];
  /** Machine-readable figures (the runner's --json). */
  data?: unknown;
}

export interface BenchSection {
  id: string;
  title: string;
  /** The item(s) this section answers. */
  item: string;
  /** Reproduces the section alone. */
  command: string;
  run(ctx: BenchContext): Promise<SectionResult>;
}

export const DEFAULT_SCALE = 0.1;

/** A context whose stack starts on first use; `close()` stops it. */
export function benchContext(o: { scale: number; quick: boolean; log?: (line: string) => void }): BenchContext & { close(): Promise<void> } {
  let stack: Promise<BenchStack> | undefined;
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  return {
    scale: o.scale,
    quick: o.quick,
    log,
    stack: () => (stack ??= startBenchStack(log)),
    close: async () => {
      if (stack) await (await stack.catch(() => undefined))?.stop();
    },
  };
}

export function commonArgs(argv = process.argv.slice(2)): { scale: number; quick: boolean; json?: string; only?: string; out?: string } {
  const { values } = parseArgs({
    args: argv,
    options: {
      scale: { type: "string", default: String(DEFAULT_SCALE) },
      quick: { type: "boolean", default: false },
      json: { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
    },
    allowPositionals: false,
  });
  const scale = Number(values.scale);
  if (!(scale >= 0)) throw new Error(`--scale must be a number >= 0, got ${values.scale}`);
  return { scale, quick: values.quick!, json: values.json, only: values.only, out: values.out };
}

/** True when the module at `url` is the script node was started with. */
export function isMain(url: string): boolean {
  return !!process.argv[1] && url === pathToFileURL(resolve(process.argv[1])).href;
}

/** Runs one section alone and prints its Markdown. */
export async function runAlone(section: BenchSection): Promise<void> {
  const args = commonArgs();
  const ctx = benchContext(args);
  const stop = () => void ctx.close().then(() => process.exit(130));
  process.on("SIGINT", stop);
  try {
    const r = await section.run(ctx);
    process.stdout.write(`## ${section.title}\n\n${r.markdown.join("\n")}\n`);
  } finally {
    await ctx.close();
  }
}
