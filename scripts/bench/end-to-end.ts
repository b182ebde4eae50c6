// Item 7 (the old `npm run bench`, folded in): a 256x256, 16-step image on the dev models through the whole
// local stack (edge in wrangler dev -> orchestrator -> embedded onnxruntime backend), its wall time and how
// it splits between them (the same Generate made straight to the orchestrator, and the engine time the
// orchestrator reports), the first (cold) request, a streamed request's first progress event and first
// preview, and 4 at once.
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { DimooService, Task } from "../../proto/gen/dimoo/v1/dimoo_pb";
import { isMain, runAlone, type BenchSection } from "./section";
import { fmt, summarize, table } from "./stats";

const SIZE = 256, STEPS = 16, CONCURRENT = 4;
const PROMPT = "a red fox in the snow";

export const endToEnd: BenchSection = {
  id: "end-to-end",
  title: "7. Dev-model end to end: 256x256, 16 steps through edge, orchestrator and embedded backend",
  item: "7",
  command: "npx tsx scripts/bench/end-to-end.ts",
  async run(ctx) {
    const stack = await ctx.stack();
    await stack.settle();
    const runs = ctx.quick ? 2 : 5;
    const auth = { authorization: `Bearer ${stack.benchKey}`, "content-type": "application/json" };
    const body = (seed: number, extra: object = {}) => JSON.stringify({ prompt: PROMPT, size: `${SIZE}x${SIZE}`, steps: STEPS, seed, ...extra });
    const viaEdge = async (seed: number) => {
      const t0 = performance.now();
      const res = await fetch(`${stack.edgeUrl}/v1/images/generations`, { method: "POST", headers: auth, body: body(seed) });
      const json = (await res.json()) as { data?: { b64_json: string }[] };
      if (!res.ok || !json.data?.[0]?.b64_json) throw new Error(`generation failed: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
      return performance.now() - t0;
    };
    ctx.log(`end to end: cold, then ${runs} warm through the edge`);
    const coldMs = await viaEdge(1);
    const edge: number[] = [];
    for (let i = 0; i < runs; i++) edge.push(await viaEdge(100 + i));

    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${stack.orchestratorToken}`);
      return next(req);
    };
    const client = createClient(DimooService, createConnectTransport({ baseUrl: stack.orchestratorUrls[0], httpVersion: "1.1", interceptors: [bearer] }));
    const direct: number[] = [], engine: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      let engineMs = 0;
      for await (const ev of client.generate({ requestId: `bench-e2e-${i}`, task: Task.TEXT_TO_IMAGE, prompt: PROMPT, width: SIZE, height: SIZE, steps: STEPS, seed: BigInt(100 + i) })) {
        if (ev.event.case === "result") engineMs = ev.event.value.usage?.engineMs ?? 0;
      }
      direct.push(performance.now() - t0);
      engine.push(engineMs);
    }

    ctx.log("end to end: streamed");
    const stream: { progress: number[]; preview: number[]; done: number[] } = { progress: [], preview: [], done: [] };
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      const res = await fetch(`${stack.edgeUrl}/v1/images/generations`, { method: "POST", headers: auth, body: body(300 + i, { stream: true, partial_images: 2 }) });
      if (!res.ok || !res.body) throw new Error(`stream: ${res.status} ${await res.text()}`);
      let progress: number | undefined, preview: number | undefined, done: number | undefined;
      const decoder = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true });
        for (const m of buf.matchAll(/^event: (\S+)$/gm)) {
          const t = performance.now() - t0;
          if (m[1].endsWith(".progress")) progress ??= t;
          if (m[1].endsWith(".partial_image")) preview ??= t;
          if (m[1].endsWith(".completed")) done ??= t;
          if (m[1] === "error") throw new Error(`stream error: ${buf.slice(0, 300)}`);
        }
        buf = buf.slice(buf.lastIndexOf("\n") + 1);
      }
      if (progress === undefined || done === undefined) throw new Error("the stream had no progress or no completion");
      stream.progress.push(progress);
      if (preview !== undefined) stream.preview.push(preview);
      stream.done.push(done);
    }

    ctx.log(`end to end: ${CONCURRENT} at once`);
    const t0 = performance.now();
    const each = await Promise.all(Array.from({ length: CONCURRENT }, (_, i) => viaEdge(200 + i)));
    const concurrentWall = performance.now() - t0;

    const e = summarize(edge), d = summarize(direct), g = summarize(engine);
    const row = (name: string, s: ReturnType<typeof summarize>) => [name, fmt(s.median), fmt(s.p99), fmt(s.min), s.n];
    return {
      markdown: [
        "The dev models are tiny and random (the images are noise); onnxruntime runs them on the same 2 CPU cores as everything else, so the backend's share is CPU inference, not a GPU's.",
        "",
        ...table(["measurement", "median ms", "p99 ms", "min ms", "n"], [
          ["first (cold) request through the edge", fmt(coldMs), "", "", 1],
          row("**through the edge (edge → orchestrator → backend)**", e),
          row("the same Generate straight to the orchestrator", d),
          row("of which in the engine (engine_ms the orchestrator reports)", g),
          row("streamed: first progress event", summarize(stream.progress)),
          row("streamed: first preview (partial_images 2)", summarize(stream.preview)),
          row("streamed: completed", summarize(stream.done)),
          [`${CONCURRENT} at once: wall time for all`, fmt(concurrentWall), "", "", 1],
          row(`${CONCURRENT} at once: each`, summarize(each)),
        ]),
        "",
        `Split of the median ${fmt(e.median)} ms: engine (embedded backend) ${fmt(g.median)} ms, orchestrator ${fmt(d.median - g.median)} ms, edge (wrangler dev, metering, the Connect hop) ${fmt(e.median - d.median)} ms. ${CONCURRENT} at once: ${fmt((CONCURRENT * 1000) / concurrentWall)} images/s against ${fmt(1000 / e.median)} one at a time.`,
      ],
      headlines: [
        { figure: "dev models, 256x256, 16 steps through the whole stack (median)", value: `${fmt(e.median)} ms`, goal: "– (CPU inference; split in section 7)" },
        { figure: "streamed: first progress event / first preview (median)", value: `${fmt(summarize(stream.progress).median)} / ${fmt(summarize(stream.preview).median)} ms`, goal: "first progress within one step of the start" },
      ],
      data: { coldMs, edge, direct, engine, stream, concurrentWall, each },
    };
  },
};

if (isMain(import.meta.url)) await runAlone(endToEnd);
