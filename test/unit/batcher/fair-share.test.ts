// Fair share between tenants: one tenant's burst takes its share of the slots and the queue, and another
// tenant's request is admitted within a step of a slot freeing, not behind the whole burst.
import { describe, expect, it } from "vitest";
import { Code } from "@connectrpc/connect";
import { StepBatcher, type Submission } from "../../../gpu-backend/src/batcher/step-batcher";
import { FairShare } from "../../../gpu-backend/src/batcher/fair-share";
import type { OrchestratorError } from "../../../gpu-backend/src/errors";
import { fakeRunner, ToyTask } from "./fake-engine";

function submit(s: StepBatcher, tenant: string | undefined, seed: number, extra: Partial<Submission<ToyTask>> = {}) {
  let firstStep = 0;
  const done = new Promise<ToyTask>((resolve, reject) =>
    s.submit({
      requestId: `${tenant}-${seed}`,
      tenant,
      deadlineAt: Infinity,
      prepare: () => new ToyTask(seed, 24, 5, 4),
      onStep: (_t, info) => {
        if (info.step === 1) firstStep = Date.now();
      },
      onDone: resolve,
      onError: (e: OrchestratorError) => reject(e),
      ...extra,
    }),
  );
  done.catch(() => {});
  return { done, firstStep: () => firstStep };
}

describe("fair share between tenants", () => {
  it("admits by weighted fair queueing: clocks advance by 1/weight, an idle tenant gets no credit", () => {
    const f = new FairShare();
    const order: string[] = [];
    const queue = { a: 0, b: 0 };
    for (let i = 0; i < 9; i++) {
      const c = f.pick([
        { tenant: "a", weight: 2, seq: 100 + queue.a },
        { tenant: "b", weight: 1, seq: 200 + queue.b },
      ])!;
      f.admitted(c);
      order.push(c.tenant);
      queue[c.tenant as "a" | "b"]++;
    }
    // a (weight 2) gets two admissions for each of b's.
    expect(order.filter((t) => t === "a").length).toBe(6);
    // A tenant arriving late starts at the current virtual time, not at 0.
    const late = f.pick([{ tenant: "a", weight: 2, seq: 1000 }, { tenant: "c", weight: 1, seq: 999 }])!;
    expect(late.tenant).toBe("c");
    f.admitted(late);
    expect(f.pick([{ tenant: "a", weight: 2, seq: 1000 }, { tenant: "c", weight: 1, seq: 1001 }])!.tenant).toBe("a");
  });

  it("caps a flooding tenant's slots so another tenant's request runs at once", async () => {
    const s = new StepBatcher({ runner: fakeRunner(3), maxActive: 4, maxQueue: 32 });
    const flood = Array.from({ length: 12 }, (_, i) => submit(s, "flood", i));
    await new Promise((r) => setTimeout(r, 20));
    expect(s.activeCount).toBe(2); // half the slots
    const t0 = Date.now();
    const other = submit(s, "other", 99);
    await other.done;
    // It started within a couple of steps, not after the 12 requests ahead of it.
    expect(other.firstStep() - t0).toBeLessThan(200);
    const order: number[] = [];
    await Promise.all(flood.map((f, i) => f.done.then(() => order.push(i))));
    expect(order.length).toBe(12);
  });

  it("refuses a tenant past its share of the queue while others are still admitted", async () => {
    const s = new StepBatcher({ runner: fakeRunner(3), maxActive: 2, maxQueue: 4 });
    // maxActivePerTenant 1, maxQueuePerTenant 2: three requests of one tenant fit, the fourth does not.
    const admitted = [0, 1, 2].map((i) => submit(s, "t", i));
    await expect(submit(s, "t", 3).done).rejects.toMatchObject({ code: Code.ResourceExhausted });
    const other = submit(s, "u", 9);
    await Promise.all([...admitted.map((a) => a.done), other.done]);
  });

  it("leaves requests without a tenant under the global limits only", async () => {
    const s = new StepBatcher({ runner: fakeRunner(3), maxActive: 4, maxQueue: 4 });
    const all = Array.from({ length: 6 }, (_, i) => submit(s, undefined, i));
    await new Promise((r) => setTimeout(r, 20));
    expect(s.activeCount).toBe(4);
    await Promise.all(all.map((a) => a.done));
  });
});
