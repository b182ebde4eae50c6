// The pixel work of a request, as self-contained jobs: decode an upload and prepare it as the reference does
// (crop to a list size, or resize to multiples of 16), decode a painting mask onto the VQ grid, blend a
// painted decode into the original. Each job is a plain message in, plain message out, so the same
// function runs on a worker thread (worker-pool.ts) or inline (inline-work.ts) with byte-identical results.
import { decodeImage, prepareImageToImageInput, prepareUnderstandingInput, resizeToMultipleOf16, type RgbImage } from "../model/image-codec";
import { InvalidArgument } from "../model/errors";
import type { Grid } from "../model/layout";
import { decodeMask, maskToGrid, type PixelMask } from "../model/mask-grid";
import { blendPainted } from "../model/paint-blend";

/** How an input image is prepared for the VQ encoder (docs/model.md §2.5, §4.3). */
export type InputPrep = "crop512" | "crop1024" | "floor16";

export interface PrepareJob {
  op: "prepare";
  bytes: Uint8Array;
  field: string;
  maxPixels: number;
  prep: InputPrep;
  /** Also return the decoded original (painting blends into it). */
  keepOriginal: boolean;
}

export interface PreparedImage {
  /** The upload's own size. */
  source: { width: number; height: number };
  /** What the VQ encoder gets. */
  image: RgbImage;
  original?: RgbImage;
}

export interface MaskJob {
  op: "mask";
  bytes: Uint8Array;
  field: string;
  /** The source image's size, which the mask must match. */
  width: number;
  height: number;
  maxPixels: number;
  grid: Grid;
}

export interface MaskResult {
  mask: PixelMask;
  /** 1 = regenerate, per grid cell. */
  cells: Uint8Array;
}

export interface BlendJob {
  op: "blend";
  original: RgbImage;
  decoded: RgbImage;
  mask: PixelMask;
}

export type ImageJob = PrepareJob | MaskJob | BlendJob;
export type JobResult<J extends ImageJob> = J extends PrepareJob ? PreparedImage : J extends MaskJob ? MaskResult : RgbImage;

function prepare(img: RgbImage, prep: InputPrep, field: string): RgbImage {
  switch (prep) {
    case "crop512":
      return prepareImageToImageInput(img);
    case "crop1024":
      return prepareUnderstandingInput(img);
    case "floor16":
      return resizeToMultipleOf16(img, field);
  }
}

export async function runJob<J extends ImageJob>(job: J): Promise<JobResult<J>>;
export async function runJob(job: ImageJob): Promise<PreparedImage | MaskResult | RgbImage> {
  switch (job.op) {
    case "prepare": {
      const original = await decodeImage(job.bytes, { field: job.field, maxPixels: job.maxPixels });
      const image = prepare(original, job.prep, job.field);
      const source = { width: original.width, height: original.height };
      return job.keepOriginal ? { source, image, original } : { source, image };
    }
    case "mask": {
      const mask = await decodeMask(job.bytes, { field: job.field, width: job.width, height: job.height, maxPixels: job.maxPixels });
      return { mask, cells: maskToGrid(mask, job.grid) };
    }
    case "blend":
      return blendPainted(job.original, job.decoded, job.mask);
  }
}

/** The buffers of a result, for a zero-copy transfer out of a worker. */
export function resultBuffers(r: PreparedImage | MaskResult | RgbImage): ArrayBuffer[] {
  const views: Uint8Array[] =
    "image" in r ? [r.image.data, ...(r.original ? [r.original.data] : [])] : "cells" in r ? [r.mask.regenerate, r.cells] : [r.data];
  const seen = new Set<ArrayBuffer>();
  for (const v of views) {
    // Only whole, unshared buffers can move; anything else is copied by the structured clone.
    if (v.byteOffset === 0 && v.byteLength === v.buffer.byteLength && v.buffer instanceof ArrayBuffer) seen.add(v.buffer);
  }
  return [...seen];
}

/** A job's failure as a message; InvalidArgument keeps its field across the thread boundary. */
export interface JobFailure {
  field?: string;
  message: string;
}

export function toFailure(e: unknown): JobFailure {
  if (e instanceof InvalidArgument) return { field: e.field, message: e.message.replace(/^[^:]+: /, "") };
  return { message: e instanceof Error ? e.message : String(e) };
}

export function fromFailure(f: JobFailure): Error {
  return f.field !== undefined ? new InvalidArgument(f.field, f.message) : new Error(f.message);
}
