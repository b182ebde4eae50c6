// The sequence batcher with implicit state: state kept per sequence id across requests, isolated between
// sequences, released at sequence_end and after max_sequence_idle_microseconds; control tensors fed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InferParameters, InferResult } from "../../../gpu-backend/src/triton/client";
import { bytesToStrings } from "../../../gpu-backend/src/triton/codec";
import { Status, TritonError } from "../../../gpu-backend/src/triton/errors";
import { accumulateModel, errorOf, startServer, type TestServer } from "./support";

let s: TestServer;
const IDLE_MS = 400;

beforeAll(async () => {
  s = await startServer({
    accumulate: accumulateModel(IDLE_MS * 1000),
    accumulate_s: accumulateModel(IDLE_MS * 1000, "accumulate_s", "BYTES"),
    growable: growable(),
  });
});

afterAll(async () => {
  await s?.stop();
});

/** `accumulate` with a growable state but no shared input/output buffer, which Triton refuses. */
function growable() {
  const m = accumulateModel(IDLE_MS * 1000, "growable");
  return { ...m, config: m.config.replace("dims: [ -1 ]\n      initial_state", "dims: [ -1 ]\n      use_growable_memory: true\n      initial_state") };
}

function step(value: number, parameters: InferParameters, model = "accumulate"): Promise<InferResult> {
  return s.client.infer(model, { inputs: { INPUT: { datatype: "FP32", shape: [1], data: [value] } }, parameters });
}

const sum = (r: InferResult) => r.tensor("SUM", "FP32").data[0];
const count = (r: InferResult) => Number(r.tensor("COUNT", "INT64").data[0]);
const flags = (r: InferResult) => Array.from(r.tensor("FLAGS", "INT32").data);

describe("sequence batcher with implicit state", () => {
  it("keeps state across the requests of one sequence and feeds the control tensors", async () => {
    const a = await step(1, { sequence_id: 101, sequence_start: true });
    expect([sum(a), count(a)]).toEqual([1, 1]);
    expect(flags(a)).toEqual([1, 0, 1]); // START, END, READY
    expect(Array.from(a.tensor("CORR", "UINT64").data)).toEqual([101n]);
    const b = await step(2, { sequence_id: 101 });
    expect([sum(b), count(b)]).toEqual([3, 2]);
    expect(flags(b)).toEqual([0, 0, 1]);
    expect(s.backend.activeSequences("accumulate")).toBe(1);
    const c = await step(3, { sequence_id: 101, sequence_end: true });
    expect([sum(c), count(c)]).toEqual([6, 3]);
    expect(flags(c)).toEqual([0, 1, 1]);
  });

  it("frees the state at sequence end", async () => {
    expect(s.backend.activeSequences("accumulate")).toBe(0);
    const e = (await errorOf(() => step(4, { sequence_id: 101 }))) as TritonError;
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toBe("inference request for sequence 101 to model 'accumulate' must specify the START flag on the first request of the sequence");
    // A new sequence with the same id starts from the initial (empty) state.
    const again = await step(5, { sequence_id: 101, sequence_start: true, sequence_end: true });
    expect([sum(again), count(again)]).toEqual([5, 1]);
    expect(s.backend.activeSequences("accumulate")).toBe(0);
  });

  it("isolates concurrent sequences, numeric and string ids alike", async () => {
    const ids: InferParameters["sequence_id"][] = [7, 8, 2n ** 62n, "user-a", "user-b"];
    const run = async (id: InferParameters["sequence_id"], base: number) => {
      const model = typeof id === "string" ? "accumulate_s" : "accumulate";
      const sums: number[] = [];
      for (let i = 1; i <= 4; i++) {
        const r = await step(base * i, { sequence_id: id, sequence_start: i === 1, sequence_end: i === 4 }, model);
        sums.push(sum(r));
        if (typeof id === "string") expect(bytesToStrings(r.tensor("CORR", "BYTES").data)).toEqual([id]);
        else expect(r.tensor("CORR", "UINT64").data[0]).toBe(BigInt(id as number | bigint));
      }
      return sums;
    };
    const out = await Promise.all(ids.map((id, k) => run(id, k + 1)));
    out.forEach((sums, k) => {
      const b = k + 1;
      expect(sums).toEqual([b, 3 * b, 6 * b, 10 * b]);
    });
    expect(s.backend.activeSequences("accumulate")).toBe(0);
    expect(s.backend.activeSequences("accumulate_s")).toBe(0);
  });

  it("checks the sequence id type against the CORRID control", async () => {
    const e = (await errorOf(() => step(1, { sequence_id: "abc", sequence_start: true }))) as TritonError;
    expect([e.code, e.message]).toEqual([
      Status.INVALID_ARGUMENT,
      "[request id: <id_unknown>] sequence batching control 'CORRID' data-type is 'BYTES', but model 'accumulate' expects 'UINT64'",
    ]);
  });

  it("processes a sequence's requests in order when they are pipelined on a stream", async () => {
    const stream = s.client.openStream();
    const values = [1, 2, 3, 4, 5, 6];
    const results = await Promise.all(
      values.map((v, i) =>
        stream.infer("accumulate", {
          inputs: { INPUT: { datatype: "FP32", shape: [1], data: [v] } },
          parameters: { sequence_id: 4242, sequence_start: i === 0, sequence_end: i === values.length - 1 },
        }),
      ),
    );
    expect(results.map(sum)).toEqual([1, 3, 6, 10, 15, 21]);
    await stream.end();
  });

  it("restarts the state when START arrives for a running sequence", async () => {
    await step(10, { sequence_id: 55, sequence_start: true });
    await step(10, { sequence_id: 55 });
    const r = await step(1, { sequence_id: 55, sequence_start: true });
    expect([sum(r), count(r)]).toEqual([1, 1]);
    await step(0, { sequence_id: 55, sequence_end: true });
  });

  it("releases an idle sequence after max_sequence_idle_microseconds", async () => {
    await step(1, { sequence_id: 77, sequence_start: true });
    const kept = await step(1, { sequence_id: 77 });
    expect(sum(kept)).toBe(2);
    expect(s.backend.activeSequences("accumulate")).toBe(1);
    await new Promise((r) => setTimeout(r, IDLE_MS + 300));
    expect(s.backend.activeSequences("accumulate")).toBe(0);
    const e = (await errorOf(() => step(1, { sequence_id: 77 }))) as TritonError;
    expect(e.code).toBe(Status.INVALID_ARGUMENT);
    expect(e.message).toMatch(/must specify the START flag/);
  });

  it("refuses a growable state without a shared input/output buffer, with Triton's message", async () => {
    const m = (await s.client.repositoryIndex()).find((x) => x.name === "growable");
    expect(m).toMatchObject({ state: "UNAVAILABLE" });
    expect(m?.reason).toBe("In order to 'use_growable_memory', you must also enable 'use_single_buffer' for state input name 'STATE_IN'.");
  });

  it("requires a correlation id", async () => {
    const e = (await errorOf(() => step(1, {}))) as TritonError;
    expect([e.code, e.message]).toEqual([Status.INVALID_ARGUMENT, "inference request to model 'accumulate' must specify a non-zero or non-empty correlation ID"]);
    const z = (await errorOf(() => step(1, { sequence_id: 0, sequence_start: true }))) as TritonError;
    expect(z.message).toMatch(/non-zero or non-empty correlation ID/);
  });
});
