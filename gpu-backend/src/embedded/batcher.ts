// What a model version hands its batcher: the queued request (Job) with its promise and queue bookkeeping,
// the interface Triton's two batchers implement here (dynamic-batcher.ts, sequence-batcher.ts), and the
// errors a request gets when it leaves a queue without running.

import { Status } from "../triton/errors";
import type { RawTensor } from "./executor";
import { RpcError, type PreparedRequest } from "./request";

export interface Outputs {
  /** Output tensors in response order (config order, requested only). */
  tensors: { name: string; tensor: RawTensor }[];
}

export interface Job {
  req: PreparedRequest;
  receivedNs: bigint;
  enqueuedNs: bigint;
  signal: AbortSignal;
  resolve: (o: Outputs) => void;
  reject: (e: Error) => void;
  /** Queue timeout deadline (ns), 0 = none. */
  timeoutAtNs: bigint;
  timeoutReject: boolean;
  level: number;
  settled: boolean;
  onAbort?: () => void;
}

export interface Batcher {
  enqueue(job: Job): void;
  readonly queued: number;
  shutdown(): void;
}

export function cancelledError(): RpcError {
  return new RpcError(Status.CANCELLED, "Request was cancelled");
}

/** Refuses a request once the model is unloading (Triton's message, which still names its scheduler). */
export function stoppingError(): RpcError {
  return new RpcError(Status.UNAVAILABLE, "Server is stopping, scheduler for model has stopped accepting new inference requests");
}
