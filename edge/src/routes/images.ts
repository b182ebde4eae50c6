// POST /v1/images/generations and /v1/images/edits (OpenAI-compatible), metered through
// services/metered-response.ts. `stream: true` answers Server-Sent Events: <prefix>.progress after each
// step, <prefix>.partial_image for previews, <prefix>.completed per image (prefix image_generation or
// image_edit); an `error` event if it fails mid-way (nothing charged). A stream the client cancels after a
// preview reached it pays for the steps that ran (docs/edge.md, partial work).
import { createRoute, z } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { createRouter } from "../validation";
import { ImageEditMultipart, ImageGenerationRequest, ImagesResponse } from "../schemas/images";
import { workErrors } from "../schemas/common";
import { generationSpec } from "../services/specs";
import { readEditRequest } from "../services/requests";
import { estimateImageMilli, ImageProgress, runImages, type ImageRunResult, type ImageSpec } from "../services/images";
import { buildImagesResponse, completedEvents, streamEvent } from "../services/image-output";
import { meteredResponse } from "../services/metered-response";
import { OrchestratorPool } from "../backend/pool";

const sseNote = "With stream: true the response is text/event-stream: <prefix>.progress {step, steps, masked_remaining}, <prefix>.partial_image {b64_json, partial_image_index}, <prefix>.completed {b64_json|url, usage}.";

/** JSON, or the event stream when the request asks for one. */
const imagesAnswer = (description: string) => ({
  content: { "application/json": { schema: ImagesResponse }, "text/event-stream": { schema: z.string() } },
  description,
});

const generationsRoute = createRoute({
  method: "post",
  path: "/images/generations",
  tags: ["images"],
  summary: "Create images from a prompt",
  description: sseNote.replaceAll("<prefix>", "image_generation"),
  security: [{ ApiKey: [] }],
  request: { body: { content: { "application/json": { schema: ImageGenerationRequest } }, required: true } },
  responses: { 200: imagesAnswer("Generated images (or an SSE stream)"), ...workErrors },
});

/** Runs a metered image request and answers JSON or SSE. */
function respondImages(c: Context<AppEnv>, spec: ImageSpec, responseFormat: "b64_json" | "url", stream: boolean) {
  const prefix = spec.kind;
  const pool = OrchestratorPool.fromEnv(c.env);
  const requestId = c.get("requestId");
  const origin = new URL(c.req.url).origin;
  const { accountId } = c.get("principal");
  return meteredResponse(c, { task: spec.kind, estimateMilli: estimateImageMilli(spec), slots: spec.n, stream }, (jobId) => {
    const body = (run: ImageRunResult): Promise<z.infer<typeof ImagesResponse>> =>
      buildImagesResponse(c.env, origin, accountId, jobId, spec, run, responseFormat);
    const progress = new ImageProgress(spec);
    return {
      run: (signal, emit) =>
        runImages(pool, spec, {
          requestId,
          signal,
          onEvent: async (e) => {
            progress.note(e);
            const ev = emit && streamEvent(prefix, spec, e);
            if (ev) await emit({ event: ev.event, data: JSON.stringify(ev.data), delivers: e.type === "partial_image" });
          },
        }),
      ranSoFar: () => progress.usage(),
      usage: (run) => ({ milli: run.unitsMilli, images: run.images.length, steps: run.steps }),
      body,
      stream: {
        final: async (run) => completedEvents(prefix, await body(run)),
        failure: (e) => ({ event: "error", data: JSON.stringify(e.body()) }),
        replaysLive: false,
      },
    };
  });
}

export const images = createRouter();

images.openapi(generationsRoute, async (c) => {
  const body = c.req.valid("json");
  const spec = generationSpec(c.env, body, c.get("principal"));
  return respondImages(c, spec, body.response_format, body.stream);
});

// Registered by hand: multipart and JSON bodies are read by services/requests.ts, not the route's validator.
images.openAPIRegistry.registerPath({
  method: "post",
  path: "/images/edits",
  tags: ["images"],
  summary: "Edit images: edit, subject, control, dense, style, multiview, inpaint, outpaint",
  description: `${sseNote.replaceAll("<prefix>", "image_edit")} JSON bodies (images as data: or https URLs) are accepted too.`,
  security: [{ ApiKey: [] }],
  request: { body: { content: { "multipart/form-data": { schema: ImageEditMultipart } }, required: true } },
  responses: { 200: imagesAnswer("Edited images (or an SSE stream)"), ...workErrors },
});

images.post("/images/edits", async (c) => {
  const req = await readEditRequest(c);
  return respondImages(c, req.spec, req.responseFormat, req.stream);
});
