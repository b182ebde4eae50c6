// Image decode, resampling, mask reading and painting blends on worker threads, so a large upload never
// holds the event loop that drives every request's steps. Admission is under a memory budget of decoded
// pixel bytes in flight (DecodeBudget): a job waits while the budget is full, and an image that alone
// exceeds it is refused as INVALID_ARGUMENT naming it. The jobs are the same functions the inline host runs,
// so results are byte-identical wherever they run.
import { availableParallelism } from "node:os";
import { Worker } from "node:worker_threads";
import { probeImage, type RgbImage } from "../model/image-codec";
import { InvalidArgument } from "../model/errors";
import type { PixelMask } from "../model/mask-grid";
import { DecodeBudget } from "./decode-budget";
import type { ImageWork } from "./image-work";
import { fromFailure, type ImageJob, type JobFailure, type JobResult, type MaskJob, type PrepareJob } from "./jobs";

export interface ImagePoolOptions {
  /** Worker threads (default: cores - 1, between 1 and 4). */
  threads?: number;
  /** Decoded pixel bytes in flight across all jobs (default 256 MiB: five of the largest 4096x4096 inputs). */
  budgetBytes?: number;
}

export const DEFAULT_IMAGE_BUDGET_BYTES = 256 * 1024 * 1024;

/** Bytes of decoded pixels a job holds: 3 per pixel for RGB, 4 for a mask (read with alpha), source size. */
export const rgbBytes = (width: number, height: number) => width * height * 3;
export const maskBytes = (width: number, height: number) => width * height * 4;

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

class PoolThread {
  readonly worker: Worker;
  readonly pending = new Map<number, Pending>();
  private nextId = 1;

  constructor(onExit: (t: PoolThread, err: Error) => void) {
    this.worker = new Worker(new URL("./worker.mjs", import.meta.url));
    this.worker.unref();
    this.worker.on("message", (m: { id: number; result?: unknown; failure?: JobFailure }) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      // An idle thread does not keep the process alive; a busy one does (its caller awaits it).
      if (this.pending.size === 0) this.worker.unref();
      if (m.failure) p.reject(fromFailure(m.failure));
      else p.resolve(m.result);
    });
    const fail = (err: Error) => {
      for (const p of this.pending.values()) p.reject(err);
      this.pending.clear();
      onExit(this, err);
    };
    this.worker.on("error", fail);
    this.worker.on("exit", (code) => fail(new Error(`image worker exited with code ${code}`)));
  }

  run(job: ImageJob): Promise<unknown> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      // Inputs are copied, not transferred: the caller keeps its buffers (an original stays in the spec).
      this.worker.postMessage({ id, job });
    });
  }
}

export class ImageWorkerPool implements ImageWork {
  readonly budget: DecodeBudget;
  private readonly threads: PoolThread[] = [];
  private readonly size: number;
  private closed = false;

  constructor(opts: ImagePoolOptions = {}) {
    this.size = Math.max(1, Math.floor(opts.threads ?? Math.min(4, Math.max(1, availableParallelism() - 1))));
    this.budget = new DecodeBudget(opts.budgetBytes ?? DEFAULT_IMAGE_BUDGET_BYTES);
  }

  /** The thread with the fewest jobs; threads start lazily, up to the pool size. */
  private pick(): PoolThread {
    if (this.closed) throw new Error("image worker pool is closed");
    const idle = this.threads.find((t) => t.pending.size === 0);
    if (idle) return idle;
    if (this.threads.length < this.size) {
      const t = new PoolThread((dead) => {
        const i = this.threads.indexOf(dead);
        if (i >= 0) this.threads.splice(i, 1);
      });
      this.threads.push(t);
      return t;
    }
    return this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  private async admitted<J extends ImageJob>(job: J, bytes: number, field: string): Promise<JobResult<J>> {
    if (!this.budget.fits(bytes)) {
      throw new InvalidArgument(field, `decodes to ${bytes} bytes, more than this host's image budget of ${this.budget.totalBytes} bytes`);
    }
    const release = await this.budget.acquire(bytes);
    try {
      return (await this.pick().run(job)) as JobResult<J>;
    } finally {
      release();
    }
  }

  async prepare(bytes: Uint8Array, o: { field: string; maxPixels: number; prep: PrepareJob["prep"]; keepOriginal?: boolean }) {
    // The header alone (libvips, off the event loop) gives the size the decode will hold.
    const { width, height } = await probeImage(bytes, { field: o.field, maxPixels: o.maxPixels });
    const job: PrepareJob = { op: "prepare", bytes, field: o.field, maxPixels: o.maxPixels, prep: o.prep, keepOriginal: o.keepOriginal ?? false };
    return this.admitted(job, rgbBytes(width, height), o.field);
  }

  async mask(bytes: Uint8Array, o: Omit<MaskJob, "op" | "bytes">) {
    const job: MaskJob = { op: "mask", bytes, ...o };
    return this.admitted(job, maskBytes(o.width, o.height), o.field);
  }

  async blend(original: RgbImage, decoded: RgbImage, mask: PixelMask): Promise<RgbImage> {
    return this.admitted({ op: "blend", original, decoded, mask }, rgbBytes(original.width, original.height), "images[0]");
  }

  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }
}
