// POST /v1/chat/completions: image understanding with image_url content parts (data URLs, or remote URLs
// fetched with a size and time cap). Metered like images (input megapixels x answer steps) through
// services/metered-response.ts. stream: true sends chat.completion.chunk events and `data: [DONE]`, as the
// OpenAI SDKs expect; a stream the client cancels after answer text reached it pays its reserved units
// (docs/edge.md, partial work: the orchestrator reports chat steps only with the result).
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../validation";
import { ChatCompletion, ChatCompletionRequest } from "../schemas/chat";
import { workErrors } from "../schemas/common";
import { chatSpec, modelId } from "../services/specs";
import { estimateUnderstandMilli, runUnderstand } from "../services/understand";
import { meteredResponse } from "../services/metered-response";
import { chatChunks, chatCompletion } from "../services/chat-output";
import { OrchestratorPool } from "../backend/pool";

const route = createRoute({
  method: "post",
  path: "/chat/completions",
  tags: ["chat"],
  summary: "Answer questions about images (captioning, VQA)",
  description: "With stream: true the response is text/event-stream of chat.completion.chunk objects, ending with data: [DONE].",
  security: [{ ApiKey: [] }],
  request: { body: { content: { "application/json": { schema: ChatCompletionRequest } }, required: true } },
  responses: {
    200: { content: { "application/json": { schema: ChatCompletion }, "text/event-stream": { schema: z.string() } }, description: "The answer (or an SSE stream)" },
    ...workErrors,
  },
});

export const chat = createRouter();

chat.openapi(route, async (c) => {
  const body = c.req.valid("json");
  const spec = await chatSpec(c.env, body, c.get("principal"));
  const includeUsage = body.stream_options?.include_usage ?? false;
  const pool = OrchestratorPool.fromEnv(c.env);
  const requestId = c.get("requestId");
  const model = modelId(c.env);
  return meteredResponse(c, { task: "chat_completion", estimateMilli: estimateUnderstandMilli(spec), slots: 1, stream: body.stream }, (jobId) => {
    const id = `chatcmpl-${jobId.slice(4)}`;
    const chunks = chatChunks(id, model);
    return {
      run: async (signal, emit) => {
        await emit?.({ data: chunks.delta({ role: "assistant", content: "" }) });
        return runUnderstand(pool, spec, { requestId, signal, onDelta: emit && ((text) => emit({ data: chunks.delta({ content: text }), delivers: text.length > 0 })) });
      },
      usage: (r) => ({ milli: r.unitsMilli, images: spec.images.length, steps: r.steps }),
      ranSoFar: () => ({ milli: estimateUnderstandMilli(spec), images: spec.images.length, steps: spec.steps ?? spec.maxTokens }),
      body: (r): z.infer<typeof ChatCompletion> => chatCompletion(id, model, r),
      stream: {
        final: (r) => [chunks.delta({}, r.finishReason), ...(includeUsage ? [chunks.usage(r)] : []), "[DONE]"].map((data) => ({ data })),
        failure: (e) => ({ data: JSON.stringify(e.body()) }),
        replaysLive: true,
      },
    };
  });
});
