// What the task families ask of the image work: prepare an input image, decode a painting mask, blend a
// painted result. Two hosts: the worker pool (worker-pool.ts, the orchestrator's: off the event loop, under a
// memory budget) and inline (same jobs on the calling thread: tools and tests that need no pool).
import type { RgbImage } from "../model/image-codec";
import type { Grid } from "../model/layout";
import type { PixelMask } from "../model/mask-grid";
import { runJob, type InputPrep, type MaskResult, type PreparedImage } from "./jobs";

export interface ImageWork {
  prepare(bytes: Uint8Array, opts: { field: string; maxPixels: number; prep: InputPrep; keepOriginal?: boolean }): Promise<PreparedImage>;
  mask(bytes: Uint8Array, opts: { field: string; width: number; height: number; maxPixels: number; grid: Grid }): Promise<MaskResult>;
  blend(original: RgbImage, decoded: RgbImage, mask: PixelMask): Promise<RgbImage>;
}

/** The jobs on the calling thread, no budget. */
export const inlineImageWork: ImageWork = {
  prepare: (bytes, o) => runJob({ op: "prepare", bytes, field: o.field, maxPixels: o.maxPixels, prep: o.prep, keepOriginal: o.keepOriginal ?? false }),
  mask: (bytes, o) => runJob({ op: "mask", bytes, ...o }),
  blend: (original, decoded, mask) => runJob({ op: "blend", original, decoded, mask }),
};
