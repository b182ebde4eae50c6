// Triton's dynamic batcher for one model version: merges queued requests with equal non-batch shapes up
// to max_batch_size, preferring preferred_batch_size and waiting at most max_queue_delay_microseconds,
// with priority levels and queue policies. Without dynamic_batching (or max_batch_size 0) each request
// runs alone, in arrival order, as with Triton's default scheduling.

import { Status } from "../triton/errors";
import type { ModelQueuePolicy } from "../triton/model-config";
import { cancelledError, stoppingError, type Batcher, type Job } from "./batcher";
import type { Executor } from "./executor";
import type { ModelVersion } from "./model";
import { RpcError } from "./request";
import { nowNs } from "./stats";

export class DynamicBatcher implements Batcher {
  private readonly queue: Job[] = [];
  private timer?: NodeJS.Timeout;
  private readonly batching: boolean;
  private readonly maxBatch: number;
  private readonly preferred: Set<number>;
  private readonly maxPreferred: number;
  private readonly delayNs: bigint;
  private readonly levels: number;
  private readonly defaultLevel: number;
  private stopped = false;

  constructor(private readonly mv: ModelVersion) {
    const c = mv.config;
    const db = c.dynamic_batching;
    this.batching = !!db && c.max_batch_size > 0;
    this.maxBatch = Math.max(1, c.max_batch_size);
    this.preferred = new Set(db?.preferred_batch_size ?? []);
    this.maxPreferred = this.preferred.size ? Math.max(...this.preferred) : this.maxBatch;
    this.delayNs = BigInt(db?.max_queue_delay_microseconds ?? 0) * 1000n;
    this.levels = db?.priority_levels ?? 0;
    this.defaultLevel = db?.default_priority_level ?? 0;
  }

  get queued(): number {
    return this.queue.length;
  }

  private policy(level: number): ModelQueuePolicy | null {
    const db = this.mv.config.dynamic_batching;
    if (!db) return null;
    return db.priority_queue_policy[String(level)] ?? db.default_queue_policy ?? null;
  }

  enqueue(job: Job): void {
    if (this.stopped) throw stoppingError();
    const p = job.req.params;
    const level = this.levels > 0 ? (p.priority === 0 || p.priority > this.levels ? this.defaultLevel : p.priority) : 0;
    job.level = level;
    const policy = this.policy(level);
    if (policy && policy.max_queue_size > 0) {
      const atLevel = this.queue.filter((j) => j.level === level).length;
      if (atLevel >= policy.max_queue_size) throw new RpcError(Status.UNAVAILABLE, `${job.req.logPrefix}Exceeds maximum queue size`);
    }
    if (policy) {
      const us = policy.allow_timeout_override && p.timeoutUs > 0 ? p.timeoutUs : policy.default_timeout_microseconds;
      if (us > 0) {
        job.timeoutAtNs = job.enqueuedNs + BigInt(us) * 1000n;
        job.timeoutReject = policy.timeout_action !== "DELAY";
      }
    }
    // Insert by priority level (lower value = higher priority), FIFO within a level.
    let at = this.queue.length;
    while (at > 0 && this.queue[at - 1].level > level) at--;
    this.queue.splice(at, 0, job);
    job.onAbort = () => {
      const i = this.queue.indexOf(job);
      if (i >= 0) {
        this.queue.splice(i, 1);
        job.reject(cancelledError());
        this.pump();
      }
    };
    if (job.signal.aborted) job.onAbort();
    else job.signal.addEventListener("abort", job.onAbort, { once: true });
    this.pump();
  }

  private expire(now: bigint): void {
    for (let i = 0; i < this.queue.length; ) {
      const j = this.queue[i];
      if (j.timeoutAtNs > 0n && now >= j.timeoutAtNs) {
        if (j.timeoutReject) {
          this.queue.splice(i, 1);
          j.reject(new RpcError(Status.UNAVAILABLE, "Request timeout expired"));
          continue;
        }
        // DELAY: deprioritise behind everything else of its level.
        j.timeoutAtNs = 0n;
      }
      i++;
    }
  }

  /** Decides how many queued jobs form the next batch, or how long to wait for more (Triton's GetDynamicBatch). */
  private form(now: bigint): { count: number } | { waitNs: bigint } {
    if (!this.batching) return { count: 1 };
    const head = this.queue[0];
    let pending = 0;
    let count = 0;
    let bestCount = 0;
    let sendNow = false;
    let oldest = head.enqueuedNs;
    for (const j of this.queue) {
      const bs = j.req.batchSize;
      if (count > 0 && pending + bs > this.maxPreferred) {
        sendNow = true;
        break;
      }
      if (pending + bs > this.maxBatch) {
        sendNow = true;
        break;
      }
      if (j.req.batchKey !== head.req.batchKey) {
        sendNow = true;
        break;
      }
      pending += bs;
      count++;
      if (j.enqueuedNs < oldest) oldest = j.enqueuedNs;
      if (this.preferred.has(pending)) bestCount = count;
    }
    const delayExceeded = this.delayNs !== 0n && now - oldest >= this.delayNs;
    if (bestCount > 0 && !delayExceeded) return { count: bestCount };
    if (sendNow || pending >= this.maxPreferred) return { count };
    if (delayExceeded || this.delayNs === 0n) return { count };
    return { waitNs: this.delayNs - (now - oldest) };
  }

  private pump(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const now = nowNs();
    this.expire(now);
    while (this.queue.length > 0 && this.mv.hasIdle) {
      const d = this.form(now);
      if ("waitNs" in d) {
        this.timer = setTimeout(() => this.pump(), Math.max(1, Number((d.waitNs + 999_999n) / 1_000_000n)));
        break;
      }
      const jobs = this.queue.splice(0, d.count);
      const ex = this.mv.acquire() as Executor;
      void this.mv.execute(ex, jobs).finally(() => {
        this.mv.release(ex);
        this.pump();
      });
    }
    // Wake up for the closest queue timeout.
    if (!this.timer) {
      let next = 0n;
      for (const j of this.queue) if (j.timeoutAtNs > 0n && (next === 0n || j.timeoutAtNs < next)) next = j.timeoutAtNs;
      if (next > 0n) this.timer = setTimeout(() => this.pump(), Math.max(0, Number((next - now) / 1_000_000n)) + 1);
    }
  }

  shutdown(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    for (const j of this.queue.splice(0)) j.reject(stoppingError());
  }
}
