// The orchestrator's drain against the embedded backend: from drain() on, Health and /readyz say not ready,
// new Generate and Understand calls get UNAVAILABLE with the draining message before any work, the request
// already generating finishes and sends its result, and with a grace too short the rest is failed with
// UNAVAILABLE.
import { afterEach, describe, expect, it } from "vitest";
import { Code, ConnectError } from "@connectrpc/connect";
import { Task, type GenerateEvent } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { DRAIN_CANCEL_MESSAGE, DRAINING_MESSAGE } from "../../../gpu-backend/src/batcher/step-batcher";
import type { EmbeddedBackend } from "../../../gpu-backend/src/embedded/server";
import type { Orchestrator } from "../../../gpu-backend/src/service/orchestrator";
import { auth, clientFor, collect, errorOf, startBackend, startOrch, TOKEN } from "./support";

let backend: EmbeddedBackend | undefined;
let orch: Orchestrator | undefined;

afterEach(async () => {
  await orch?.close();
  await backend?.close();
  orch = backend = undefined;
});

function generation(o: Orchestrator, requestId: string, steps: number, side = 128) {
  const events: GenerateEvent[] = [];
  let onProgress!: () => void;
  const firstProgress = new Promise<void>((r) => (onProgress = r));
  const done = (async () => {
    for await (const ev of clientFor("connect", o.url).generate(
      { task: Task.TEXT_TO_IMAGE, prompt: "drain", width: side, height: side, steps, requestId },
      { headers: auth(TOKEN) },
    )) {
      events.push(ev);
      if (ev.event.case === "progress") onProgress();
    }
  })().then(
    () => undefined,
    (e: unknown) => ConnectError.from(e),
  );
  return { events, firstProgress, done };
}

describe("orchestrator drain", () => {
  it("reports not ready, refuses new calls with the draining message, and finishes the running one", async () => {
    backend = await startBackend();
    orch = await startOrch(backend.url, { batcher: { maxBatchTokens: 8192 } });
    const client = clientFor("grpc", orch.url);
    expect((await client.health({}, { headers: auth(TOKEN) })).ready).toBe(true);
    expect((await fetch(`${orch.metrics!.url}/readyz`)).status).toBe(200);

    const running = generation(orch, "drain-running", 24);
    await Promise.race([running.firstProgress, running.done.then((e) => Promise.reject(e ?? new Error("ended early")))]);
    const drained = orch.drain(60_000);

    expect((await client.health({}, { headers: auth(TOKEN) })).ready).toBe(false);
    expect((await fetch(`${orch.metrics!.url}/readyz`)).status).toBe(503);
    expect(await (await fetch(`${orch.metrics!.url}/metrics`)).text()).toMatch(/^dimoo_orchestrator_draining 1$/m);
    const refused = ConnectError.from(
      await errorOf(() => collect(client.generate({ task: Task.TEXT_TO_IMAGE, prompt: "late", width: 64, height: 64, steps: 2 }, { headers: auth(TOKEN) }))),
    );
    expect(refused.code).toBe(Code.Unavailable);
    expect(refused.rawMessage).toBe(DRAINING_MESSAGE);
    const refusedText = ConnectError.from(await errorOf(() => collect(client.understand({ question: "late?" }, { headers: auth(TOKEN) }))));
    expect(refusedText.code).toBe(Code.Unavailable);

    const report = await drained;
    expect(report).toMatchObject({ held: 1, cancelled: 0, unsent: 0 });
    expect(await running.done).toBeUndefined();
    expect(running.events.at(-1)!.event.case).toBe("result");
    expect(running.events.filter((e) => e.event.case === "progress")).toHaveLength(24);
  });

  it("fails what is still running when the grace period ends, with UNAVAILABLE", async () => {
    backend = await startBackend();
    orch = await startOrch(backend.url, { batcher: { maxBatchTokens: 8192 } });
    const running = generation(orch, "drain-cut", 200, 256);
    await Promise.race([running.firstProgress, running.done.then((e) => Promise.reject(e ?? new Error("ended early")))]);
    const report = await orch.drain(200);
    expect(report).toMatchObject({ held: 1, cancelled: 1 });
    const err = await running.done;
    expect(err?.code).toBe(Code.Unavailable);
    expect(err?.rawMessage).toBe(DRAIN_CANCEL_MESSAGE);
    expect(running.events.filter((e) => e.event.case === "progress").length).toBeLessThan(200);
  });
});
