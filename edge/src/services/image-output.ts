// Turns generated images into the public ImagesResponse: base64 inline, or stored in R2 and linked by
// signed URLs; also the SSE events (progress, partial_image, completed) of streamed requests and jobs.
import { toBase64 } from "../lib/encoding";
import { signedFileUrl } from "../signed-urls";
import { milliToUnits, BILLING_UNIT } from "../metering";
import type { z } from "@hono/zod-openapi";
import type { ImagesResponse } from "../schemas/images";
import type { GeneratedImage, ImageEvent, ImageRunResult, ImageSpec } from "./images";

export const resultKey = (accountId: string, jobId: string, index: number, format: string) => `results/${accountId}/${jobId}/${index}.${format === "jpeg" ? "jpg" : format}`;

/** Where results are kept and how their links are signed (Job objects use this module too). */
export interface ResultBindings {
  RESULTS: R2Bucket;
  SIGNING_SECRET?: string;
}

export interface StoredImage {
  key: string;
  seed: number;
}

export async function storeImages(env: ResultBindings, accountId: string, jobId: string, spec: ImageSpec, images: GeneratedImage[]): Promise<StoredImage[]> {
  return Promise.all(
    images.map(async (im) => {
      const key = resultKey(accountId, jobId, im.index, spec.outputFormat);
      await env.RESULTS.put(key, im.bytes, { httpMetadata: { contentType: im.mime, cacheControl: "private, max-age=3600" }, customMetadata: { job_id: jobId, seed: String(im.seed) } });
      return { key, seed: im.seed };
    }),
  );
}

export function imageUsage(spec: ImageSpec, run: Pick<ImageRunResult, "images" | "unitsMilli" | "steps">) {
  const text = run.images.reduce((s, im) => s + im.promptTokens, 0);
  // one image token per 16x16 input pixels, read again for every output image
  const imageIn = run.images.length * Math.round((spec.inputPixels ?? 0) / 256);
  const out = run.images.reduce((s, im) => s + im.outputTokens, 0);
  return {
    input_tokens: text + imageIn,
    input_tokens_details: { image_tokens: imageIn, text_tokens: text },
    output_tokens: out,
    total_tokens: text + imageIn + out,
    billing_unit: BILLING_UNIT,
    billing_units: milliToUnits(run.unitsMilli),
    steps: run.steps,
  };
}

export function imagesResponseBase(spec: ImageSpec, run: ImageRunResult, created = Math.floor(Date.now() / 1000)) {
  const first = run.images[0];
  return {
    created,
    output_format: spec.outputFormat,
    size: first ? `${first.width}x${first.height}` : `${spec.width}x${spec.height}`,
    quality: "auto",
    background: "opaque",
    usage: imageUsage(spec, run),
  };
}

/** The full ImagesResponse, storing images in R2 when URLs are asked for. */
export async function buildImagesResponse(
  env: ResultBindings,
  origin: string,
  accountId: string,
  jobId: string,
  spec: ImageSpec,
  run: ImageRunResult,
  responseFormat: "b64_json" | "url",
) {
  const base = imagesResponseBase(spec, run);
  if (responseFormat === "url") {
    const stored = await storeImages(env, accountId, jobId, spec, run.images);
    const data = await Promise.all(stored.map(async (s) => ({ url: await signedFileUrl(env.SIGNING_SECRET, origin, s.key), seed: s.seed })));
    return { ...base, data };
  }
  return { ...base, data: run.images.map((im) => ({ b64_json: toBase64(im.bytes), seed: im.seed })) };
}

/** SSE payloads; `prefix` is image_generation or image_edit. */
export function streamEvent(prefix: string, spec: ImageSpec, e: ImageEvent): { event: string; data: Record<string, unknown> } | undefined {
  const created_at = Math.floor(Date.now() / 1000);
  if (e.type === "progress") {
    return { event: `${prefix}.progress`, data: { type: `${prefix}.progress`, index: e.index, step: e.step, steps: e.steps, masked_remaining: e.maskedRemaining, created_at } };
  }
  if (e.type === "partial_image") {
    return {
      event: `${prefix}.partial_image`,
      data: {
        type: `${prefix}.partial_image`,
        index: e.index,
        partial_image_index: e.partialIndex,
        b64_json: toBase64(e.bytes),
        size: `${e.width}x${e.height}`,
        output_format: spec.outputFormat,
        quality: "auto",
        background: "opaque",
        created_at,
      },
    };
  }
  return undefined;
}

/** The closing `<prefix>.completed` events of a stream, one per image, each with the response's metadata. */
export function completedEvents(prefix: string, body: z.infer<typeof ImagesResponse>, created_at = Math.floor(Date.now() / 1000)): { event: string; data: string }[] {
  return body.data.map((d, index) => ({
    event: `${prefix}.completed`,
    data: JSON.stringify({ type: `${prefix}.completed`, index, ...d, created_at, size: body.size, output_format: body.output_format, quality: body.quality, background: body.background, usage: body.usage }),
  }));
}
