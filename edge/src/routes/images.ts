// POST /v1/images/generations and /v1/images/edits (OpenAI-compatible). Metered: reserve -> generate ->
// commit actual units, or release on failure/disconnect. `stream: true` answers Server-Sent Events:
// <prefix>.progress after each step, <prefix>.partial_image for previews, <prefix>.completed per image
// (prefix image_generation or image_edit); an `error` event if it fails mid-way (nothing charged).
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import { streamSSE } from "hono/streaming";
import type { AppEnv } from "../env";
import { createRouter } from "../validation";
import { ImageEditMultipart, ImageGenerationRequest, ImagesResponse } from "../schemas/images";
import { workErrors } from "../schemas/common";
import { generationSpec } from "../services/specs";
import { readEditRequest } from "../services/requests";
import { estimateImageMilli, runImages, type ImageSpec } from "../services/images";
import { buildImagesResponse, streamEvent } from "../services/image-output";
import { MeterSession, releaseReason } from "../services/meter";
import { OrchestratorPool } from "../backend/pool";
import { toApiError } from "../backend/errors";
import { outliveClient } from "../lib/outlive";

const sseNote = "With stream: true the response is text/event-stream: <prefix>.progress {step, steps, masked_remaining}, <prefix>.partial_image {b64_json, partial_image_index}, <prefix>.completed {b64_json|url, usage}.";

const generationsRoute = createRoute({
  method: "post",
  path: "/v1/images/generations",
  tags: ["images"],
  summary: "Create images from a prompt",
  description: sseNote.replaceAll("<prefix>", "image_generation"),
  security: [{ ApiKey: [] }],
  request: { body: { content: { "application/json": { schema: ImageGenerationRequest } }, required: true } },
  responses: {
    200: { content: { "application/json": { schema: ImagesResponse } }, description: "Generated images (or an SSE stream)" },
    ...workErrors,
  },
});

/** Runs a metered image request and answers JSON or SSE. */
export async function respondImages(c: Context<AppEnv>, spec: ImageSpec, responseFormat: "b64_json" | "url", stream: boolean): Promise<Response> {
  const prefix = spec.kind === "image_edit" ? "image_edit" : "image_generation";
  const meter = await MeterSession.open(c, spec.kind, estimateImageMilli(spec));
  const pool = OrchestratorPool.fromEnv(c.env);
  const requestId = c.get("requestId");
  const origin = new URL(c.req.url).origin;
  const { accountId } = c.get("principal");
  const details = (run: { images: unknown[]; steps: number }) => ({ images: run.images.length, steps: run.steps, requestId });

  if (!stream) {
    try {
      const run = await runImages(pool, spec, { requestId, signal: c.req.raw.signal });
      const body = JSON.stringify(await buildImagesResponse(c.env, origin, accountId, meter.jobId, spec, run, responseFormat));
      await meter.commit(run.unitsMilli, details(run), { status: 200, contentType: "application/json", body });
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
    try {
      const run = await runImages(pool, spec, {
        requestId,
        signal,
        onEvent: async (e) => {
          const ev = streamEvent(prefix, spec, e);
          if (ev && !sse.aborted) await sse.writeSSE({ event: ev.event, data: JSON.stringify(ev.data) });
        },
      });
      const body = await buildImagesResponse(c.env, origin, accountId, meter.jobId, spec, run, responseFormat);
      const created_at = Math.floor(Date.now() / 1000);
      const completed = body.data.map((d, index) => ({
        event: `${prefix}.completed`,
        data: JSON.stringify({ type: `${prefix}.completed`, index, ...d, created_at, size: body.size, output_format: body.output_format, quality: body.quality, background: body.background, usage: body.usage }),
      }));
      const replay = completed.map((e) => `event: ${e.event}\ndata: ${e.data}\n\n`).join("");
      if (signal.aborted) throw signal.reason;
      await meter.commit(run.unitsMilli, details(run), { status: 200, contentType: "text/event-stream", body: replay });
      for (const e of completed) await sse.writeSSE(e);
    } catch (e) {
      await meter.release(releaseReason(signal.aborted ? new DOMException("cancelled", "AbortError") : e));
      if (!sse.aborted) await sse.writeSSE({ event: "error", data: JSON.stringify(toApiError(e).body()) });
    }
  }));
}

export const images = createRouter();

images.openapi(generationsRoute, async (c) => {
  const body = c.req.valid("json");
  const spec = generationSpec(c.env, body, c.get("principal").plan);
  return respondImages(c, spec, body.response_format, body.stream) as never;
});

images.openAPIRegistry.registerPath({
  method: "post",
  path: "/v1/images/edits",
  tags: ["images"],
  summary: "Edit images: edit, subject, control, dense, style, multiview, inpaint, outpaint",
  description: `${sseNote.replaceAll("<prefix>", "image_edit")} JSON bodies (images as data: or https URLs) are accepted too.`,
  security: [{ ApiKey: [] }],
  request: { body: { content: { "multipart/form-data": { schema: ImageEditMultipart } }, required: true } },
  responses: {
    200: { content: { "application/json": { schema: ImagesResponse } }, description: "Edited images (or an SSE stream)" },
    ...workErrors,
  },
});

images.post("/v1/images/edits", async (c) => {
  const req = await readEditRequest(c);
  return respondImages(c, req.spec, req.responseFormat, req.stream);
});
