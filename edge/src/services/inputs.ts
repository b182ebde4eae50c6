// Input images: from multipart files, data URLs or remote URLs (https only, size and time capped, no
// private hosts unless ALLOW_PRIVATE_URLS for local development). Each is checked to be a PNG/JPEG/WebP
// within limits before anything is reserved or sent to a GPU.
import type { Env } from "../env";
import { invalid } from "../errors";
import { imageInfo, parseDataUrl, type ImageInfo } from "../lib/images";
import { LIMITS } from "../config";

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

const allowPrivate = (env: Env) => env.ALLOW_PRIVATE_URLS === "true";

/** Blocks loopback, private, link-local and metadata addresses given as literals or well-known names. */
export function isPrivateHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h.endsWith(".internal") || h.endsWith(".local")) return true;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  if (h.includes(":")) return h === "::1" || h === "::" || h.startsWith("fc") || h.startsWith("fd") || h.startsWith("fe80") || h.startsWith("::ffff:");
  return false;
}

/** Validates an outbound URL (remote image or webhook): https, public host, unless development allows. */
export function checkOutboundUrl(env: Env, raw: string, param: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`${param} is not a valid URL`, param, "invalid_url");
  }
  const dev = allowPrivate(env);
  if (url.protocol !== "https:" && !(dev && url.protocol === "http:")) throw invalid(`${param} must be an https URL`, param, "invalid_url");
  if (!dev && isPrivateHost(url.hostname)) throw invalid(`${param} must point to a public host`, param, "invalid_url");
  if (url.username || url.password) throw invalid(`${param} must not contain credentials`, param, "invalid_url");
  return url;
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
