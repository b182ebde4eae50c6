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
}

export function checkImage(bytes: Uint8Array, param: string): InputImage {
  if (bytes.length === 0) throw invalid(`${param} is empty`, param);
  if (bytes.length > LIMITS.imageBytes) throw invalid(`${param} is larger than ${LIMITS.imageBytes} bytes`, param, "image_too_large");
  const info = imageInfo(bytes);
  if (!info) throw invalid(`${param} must be a PNG, JPEG or WebP image`, param, "invalid_image_format");
  if (info.width < 16 || info.height < 16 || info.width > 8192 || info.height > 8192) throw invalid(`${param} is ${info.width}x${info.height}; sides must be 16-8192 px`, param, "invalid_image_size");
  return { bytes, info };
}

const urlPolicy = (env: Env): UrlPolicy => ({ allowPrivate: env.ALLOW_PRIVATE_URLS === "true" });

/** Validates an outbound URL (remote image or webhook) against lib/url-policy.ts; a 400 naming the field. */
export function checkOutboundUrl(env: Env, raw: string, param: string): URL {
  const verdict = checkUrl(raw, urlPolicy(env));
  if (!verdict.ok) throw invalid(`${param} ${verdict.reason}`, param, "invalid_url");
  return verdict.url;
}

async function fetchCapped(env: Env, raw: string, param: string): Promise<Uint8Array> {
  const url = checkOutboundUrl(env, raw, param);
  let res: Response;
  try {
    res = await fetch(url, { redirect: "manual", signal: AbortSignal.timeout(LIMITS.remoteImageTimeoutMs), headers: { accept: "image/*" } });
  } catch (e) {
    throw invalid(`${param} could not be fetched (${(e as Error).name === "TimeoutError" ? "timeout" : "network error"})`, param, "image_fetch_failed");
  }
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    throw invalid(`${param} could not be fetched (HTTP ${res.status})`, param, "image_fetch_failed");
  }
  const declared = Number(res.headers.get("content-length") ?? 0);
  if (declared > LIMITS.remoteImageBytes) {
    await res.body.cancel();
    throw invalid(`${param} is larger than ${LIMITS.remoteImageBytes} bytes`, param, "image_too_large");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > LIMITS.remoteImageBytes) {
      await reader.cancel();
      throw invalid(`${param} is larger than ${LIMITS.remoteImageBytes} bytes`, param, "image_too_large");
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

/** A data URL or a remote URL, loaded and checked. */
export async function loadImageRef(env: Env, ref: string, param: string): Promise<InputImage> {
  if (ref.startsWith("data:")) {
    const bytes = parseDataUrl(ref);
    if (!bytes) throw invalid(`${param} is not a valid base64 data URL`, param, "invalid_image_url");
    return checkImage(bytes, param);
  }
  return checkImage(await fetchCapped(env, ref, param), param);
}

export async function fileBytes(v: unknown, param: string): Promise<Uint8Array> {
  if (typeof v === "string" || v === null || typeof v !== "object" || !("arrayBuffer" in v)) throw invalid(`${param} must be a file upload`, param, "invalid_type");
  return new Uint8Array(await (v as Blob).arrayBuffer());
}
