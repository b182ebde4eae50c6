// Input images: from multipart files, data URLs or remote URLs (lib/url-policy.ts: https only, public
// hosts only unless ALLOW_PRIVATE_URLS for local development, no redirects; size and time capped). Each
// is checked to be a PNG/JPEG/WebP within limits before anything is reserved or sent to a GPU.
import type { Env } from "../env";
import { invalid } from "../errors";
import { imageInfo, parseDataUrl, type ImageInfo } from "../lib/images";
import { LIMITS } from "../config";
import { checkUrl, type UrlPolicy } from "../lib/url-policy";

export { isPrivateHost } from "../lib/url-policy";

export interface InputImage {
  bytes: Uint8Array;
  info: ImageInfo;
  /** the request field it came from, for errors about it */
  param: string;
}

export function checkImage(bytes: Uint8Array, param: string): InputImage {
  if (bytes.length === 0) throw invalid(`${param} is empty`, param);
  if (bytes.length > LIMITS.imageBytes) throw invalid(`${param} is larger than ${LIMITS.imageBytes} bytes`, param, "image_too_large");
  const info = imageInfo(bytes);
  if (!info) throw invalid(`${param} must be a PNG, JPEG or WebP image`, param, "invalid_image_format");
  if (info.width < 16 || info.height < 16 || info.width > 8192 || info.height > 8192) throw invalid(`${param} is ${info.width}x${info.height}; sides must be 16-8192 px`, param, "invalid_image_size");
  return { bytes, info, param };
}

const urlPolicy = (env: Env): UrlPolicy => ({ allowPrivate: env.ALLOW_PRIVATE_URLS === "true" });

/** Validates an outbound URL (remote image or webhook) against lib/url-policy.ts; a 400 naming the field. */
export function checkOutboundUrl(env: Env, raw: string, param: string): URL {
  const verdict = checkUrl(raw, urlPolicy(env));
  if (!verdict.ok) throw invalid(`${param} ${verdict.reason}`, param, "invalid_url");
  return verdict.url;
}

/** The body of a 200 answer, at most `cap` bytes; throws on anything else (status, redirect, size, network). */
async function download(url: URL, cap: number, signal: AbortSignal): Promise<Uint8Array> {
  const res = await fetch(url, { redirect: "manual", signal, headers: { accept: "image/*" } });
  if (res.status !== 200 || !res.body || Number(res.headers.get("content-length") ?? 0) > cap) {
    await res.body?.cancel();
    throw new Error(`unusable answer (HTTP ${res.status})`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  signal.addEventListener("abort", () => reader.cancel().catch(() => undefined), { once: true });
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > cap) {
      await reader.cancel();
      throw new Error("too large");
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

/**
 * A remote image, fetched under the URL policy with a size and time cap. Every way it can fail (network,
 * timeout, HTTP status, redirect, size, a body that is not an image) gives the same answer, so a caller
 * cannot use the error to map hosts and ports behind the URL.
 */
async function fetchImage(env: Env, raw: string, param: string): Promise<InputImage> {
  const url = checkOutboundUrl(env, raw, param);
  const deadline = AbortSignal.timeout(LIMITS.remoteImageTimeoutMs);
  // the deadline covers the whole body too, whether or not the runtime aborts a body read by the signal
  const timedOut = new Promise<never>((_, reject) => deadline.addEventListener("abort", () => reject(deadline.reason), { once: true }));
  let bytes: Uint8Array | undefined;
  try {
    bytes = await Promise.race([download(url, LIMITS.remoteImageBytes, deadline), timedOut]);
  } catch {
    bytes = undefined;
  }
  timedOut.catch(() => undefined);
  if (!bytes || !imageInfo(bytes)) {
    const limits = `it must answer 200 within ${LIMITS.remoteImageTimeoutMs / 1000} s with a PNG, JPEG or WebP of at most ${LIMITS.remoteImageBytes / (1024 * 1024)} MB; redirects are not followed`;
    throw invalid(`could not fetch an image from ${param} (${limits})`, param, "image_fetch_failed");
  }
  return checkImage(bytes, param);
}

/** A data URL or a remote URL, loaded and checked. */
export async function loadImageRef(env: Env, ref: string, param: string): Promise<InputImage> {
  if (ref.startsWith("data:")) {
    const bytes = parseDataUrl(ref);
    if (!bytes) throw invalid(`${param} is not a valid base64 data URL`, param, "invalid_image_url");
    return checkImage(bytes, param);
  }
  return fetchImage(env, ref, param);
}

export async function fileBytes(v: unknown, param: string): Promise<Uint8Array> {
  if (typeof v === "string" || v === null || typeof v !== "object" || !("arrayBuffer" in v)) throw invalid(`${param} must be a file upload`, param, "invalid_type");
  return new Uint8Array(await (v as Blob).arrayBuffer());
}
