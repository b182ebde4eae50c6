// Shared statistics and formatting for the benchmark sections: medians and nearest-rank percentiles of
// latency samples, ratios, and the Markdown tables docs/benchmarks.md is made of. Pure, no I/O.

export interface Summary {
  n: number;
  min: number;
  median: number;
  mean: number;
  p90: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile (p in 0..100): the smallest sample with at least p% of the samples at or below it. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))];
}

/** The middle sample, or the mean of the two middle ones. */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

export function summarize(xs: readonly number[]): Summary {
  if (xs.length === 0) return { n: 0, min: NaN, median: NaN, mean: NaN, p90: NaN, p99: NaN, max: NaN };
  let min = Infinity, max = -Infinity, sum = 0;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
    sum += x;
  }
  return { n: xs.length, min, median: median(xs), mean: sum / xs.length, p90: percentile(xs, 90), p99: percentile(xs, 99), max };
}

/** A number for a table: 3 significant digits, no exponent for everyday magnitudes. */
export function fmt(x: number | undefined, digits = 3): string {
  if (x === undefined || Number.isNaN(x)) return "–";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "-∞";
  const a = Math.abs(x);
  if (a === 0) return "0";
  if (a >= 10 ** digits) return Math.round(x).toLocaleString("en-US");
  if (a < 1e-3) return x.toExponential(1);
  return Number(x.toPrecision(digits)).toString();
}

/** a / b as "1.23x". */
export function ratio(a: number, b: number): string {
  return b === 0 || !Number.isFinite(a / b) ? "–" : `${(a / b).toFixed(2)}x`;
}

export function kib(bytes: number): string {
  return `${fmt(bytes / 1024)} KiB`;
}

export function mib(bytes: number): string {
  return `${fmt(bytes / (1024 * 1024))} MiB`;
}

/** Whether a measured value meets its goal: ✅ met, ❌ missed. */
export function verdict(value: number, goal: number, lowerIsBetter = true): string {
  if (Number.isNaN(value)) return "–";
  return (lowerIsBetter ? value <= goal : value >= goal) ? "✅" : "❌";
}

/** A Markdown table. */
export function table(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string[] {
  const cell = (c: string | number) => (typeof c === "number" ? fmt(c) : c).replace(/\|/g, "\\|");
  return [`| ${header.map(cell).join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.map(cell).join(" | ")} |`)];
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
