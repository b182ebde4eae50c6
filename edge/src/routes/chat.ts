// POST /v1/chat/completions: image understanding with image_url content parts (data URLs, or remote URLs
// fetched with a size and time cap). Metered like images (input megapixels x answer steps). stream: true
// sends chat.completion.chunk events and `data: [DONE]`, as the OpenAI SDKs expect.
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "../env";
import { createRouter } from "../validation";
import { ChatCompletion, ChatCompletionRequest } from "../schemas/chat";
import { workErrors } from "../schemas/common";
import { chatSpec, modelId } from "../services/specs";
import { estimateUnderstandMilli, runUnderstand, type UnderstandSpec } from "../services/understand";
import { MeterSession, releaseReason } from "../services/meter";
import { OrchestratorPool } from "../backend/pool";
import { toApiError } from "../backend/errors";
import { chatCompletion, chatUsage } from "../services/chat-output";
import { outliveClient } from "../lib/outlive";

const route = createRoute({
  method: "post",
  path: "/v1/chat/completions",
  tags: ["chat"],
  summary: "Answer questions about images (captioning, VQA)",
  description: "With stream: true the response is text/event-stream of chat.completion.chunk objects, ending with data: [DONE].",
  security: [{ ApiKey: [] }],
  request: { body: { content: { "application/json": { schema: ChatCompletionRequest } }, required: true } },
  responses: {
    200: { content: { "application/json": { schema: ChatCompletion } }, description: "The answer (or an SSE stream)" },
    ...workErrors,
  },
});

export async function respondChat(c: Context<AppEnv>, spec: UnderstandSpec, stream: boolean, includeUsage: boolean): Promise<Response> {
  const meter = await MeterSession.open(c, "chat_completion", estimateUnderstandMilli(spec));
  const pool = OrchestratorPool.fromEnv(c.env);
  const requestId = c.get("requestId");
  const id = `chatcmpl-${meter.jobId.slice(4)}`;
  const model = modelId(c.env);

  if (!stream) {
    try {
      const r = await runUnderstand(pool, spec, { requestId, signal: c.req.raw.signal });
      const body = JSON.stringify(chatCompletion(id, model, r));
      await meter.commit(r.unitsMilli, { images: spec.images.length, steps: r.steps, requestId }, { status: 200, contentType: "application/json", body });
      return c.body(body, 200, { "content-type": "application/json" });
    } catch (e) {
      await meter.release(releaseReason(e));
      throw toApiError(e);
    }
  }

  return streamSSE(c, outliveClient(c, async (sse) => {
    const client = new AbortController();
    sse.onAbort(() => client.abort(new Error("client disconnected")));
    const signal = AbortSignal.any([c.req.raw.signal, client.signal]);
    const created = Math.floor(Date.now() / 1000);
    const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }], ...extra });
    const sent: string[] = [];
    const send = async (data: string) => {
      sent.push(data);
      if (!sse.aborted) await sse.writeSSE({ data });
    };
    try {
      await send(chunk({ role: "assistant", content: "" }, null));
      const r = await runUnderstand(pool, spec, { requestId, signal, onDelta: (text) => send(chunk({ content: text }, null)) });
      if (signal.aborted) throw signal.reason;
      const tail = [chunk({}, r.finishReason)];
      if (includeUsage) tail.push(JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage: chatUsage(r) }));
      const replay = [...sent, ...tail, "[DONE]"].map((d) => `data: ${d}\n\n`).join("");
      await meter.commit(r.unitsMilli, { images: spec.images.length, steps: r.steps, requestId }, { status: 200, contentType: "text/event-stream", body: replay });
      for (const d of tail) await send(d);
      if (!sse.aborted) await sse.writeSSE({ data: "[DONE]" });
    } catch (e) {
      await meter.release(releaseReason(signal.aborted ? new DOMException("cancelled", "AbortError") : e));
      if (!sse.aborted) await sse.writeSSE({ data: JSON.stringify(toApiError(e).body()) });
    }
  }));
}

export const chat = createRouter();

chat.openapi(route, async (c) => {
  const body = c.req.valid("json");
  const spec = await chatSpec(c.env, body);
  return respondChat(c, spec, body.stream, body.stream_options?.include_usage ?? false) as never;
});
