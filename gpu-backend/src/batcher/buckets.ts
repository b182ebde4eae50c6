// Sequence-length buckets. Every row of one transformer call is right-padded to the same L; requests are
// only batched with others of the same bucket, so a request's L (and therefore its numerics) does not
// depend on who else is running, and padding waste stays bounded.

/** Default bucket edges: fine steps for short (understanding, small images), coarser for 1024² and up. */
export const DEFAULT_BUCKETS: readonly number[] = [
  128, 256, 384, 512, 768, 1024, 1280, 1536, 2048, 2560, 3072, 3584, 4096, 4608, 5120, 6144, 7168, 8192,
  10240, 12288,
];

/** The smallest bucket edge that holds `length`; past the last edge, the next multiple of 1024. */
export function bucketFor(length: number, buckets: readonly number[] = DEFAULT_BUCKETS): number {
  if (!Number.isFinite(length) || length < 0) throw new RangeError(`bad sequence length ${length}`);
  for (const b of buckets) if (length <= b) return b;
  return Math.ceil(length / 1024) * 1024;
}

/** Parses "256,512,1024" (from the environment) into sorted, de-duplicated edges. */
export function parseBuckets(text: string | undefined): number[] {
  if (!text) return [...DEFAULT_BUCKETS];
  const edges = text
    .split(",")
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n) && n > 0);
  if (edges.length === 0) throw new Error(`no valid bucket edges in "${text}"`);
  return [...new Set(edges)].sort((a, b) => a - b);
}
