// Per-model-version statistics in the shape of Triton's ModelStatistics (durations in nanoseconds).

import type { ModelStatisticsMsg, StatisticDurationMsg } from "../triton/proto";

export const nowNs = (): bigint => process.hrtime.bigint();

class Dur {
  count = 0;
  ns = 0n;
  add(ns: bigint, count = 1): void {
    this.count += count;
    this.ns += ns;
  }
  msg(): StatisticDurationMsg {
    return { count: this.count, ns: this.ns.toString() };
  }
}

export interface RequestTimes {
  receivedNs: bigint;
  enqueuedNs: bigint;
  dispatchedNs: bigint;
  inputNs: bigint;
  inferNs: bigint;
  outputNs: bigint;
  doneNs: bigint;
}

export class ModelStats {
  private readonly success = new Dur();
  private readonly fail = new Dur();
  private readonly queue = new Dur();
  private readonly computeInput = new Dur();
  private readonly computeInfer = new Dur();
  private readonly computeOutput = new Dur();
  private inferenceCount = 0;
  private executionCount = 0;
  private lastInferenceMs = 0;
  private readonly batches = new Map<number, { input: Dur; infer: Dur; output: Dur }>();

  /** One model execution over `batchSize` inferences (a non-batching model counts 1). */
  execution(batchSize: number, inputNs: bigint, inferNs: bigint, outputNs: bigint): void {
    this.executionCount++;
    this.inferenceCount += batchSize;
    this.lastInferenceMs = Date.now();
    let b = this.batches.get(batchSize);
    if (!b) {
      b = { input: new Dur(), infer: new Dur(), output: new Dur() };
      this.batches.set(batchSize, b);
    }
    b.input.add(inputNs);
    b.infer.add(inferNs);
    b.output.add(outputNs);
  }

  succeeded(t: RequestTimes): void {
    this.success.add(t.doneNs - t.receivedNs);
    this.queue.add(t.dispatchedNs - t.enqueuedNs);
    this.computeInput.add(t.inputNs);
    this.computeInfer.add(t.inferNs);
    this.computeOutput.add(t.outputNs);
  }

  failed(receivedNs: bigint): void {
    this.fail.add(nowNs() - receivedNs);
  }

  get executions(): number {
    return this.executionCount;
  }

  toMsg(name: string, version: string): ModelStatisticsMsg {
    const zero = new Dur().msg();
    return {
      name,
      version,
      last_inference: this.lastInferenceMs,
      inference_count: this.inferenceCount,
      execution_count: this.executionCount,
      inference_stats: {
        success: this.success.msg(),
        fail: this.fail.msg(),
        queue: this.queue.msg(),
        compute_input: this.computeInput.msg(),
        compute_infer: this.computeInfer.msg(),
        compute_output: this.computeOutput.msg(),
        cache_hit: zero,
        cache_miss: zero,
      },
      batch_stats: [...this.batches.entries()]
        .sort((a, b) => a[0] - b[0])
        .map(([size, b]) => ({ batch_size: size, compute_input: b.input.msg(), compute_infer: b.infer.msg(), compute_output: b.output.msg() })),
      memory_usage: [],
      response_stats: {},
    };
  }
}
