// GET /v1/files/{key}: stored results from R2, authorised by an expiring HMAC signature in the URL (no API
// key, so <img src> works cross-origin: this router sets Cross-Origin-Resource-Policy: cross-origin, which
// the app-wide secure headers keep). Mounted at /files of the /v1 sub-app, ahead of its key check. Cache
// lifetime never exceeds the signature's.
import type { Context } from "hono";
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import type { AppEnv } from "../env";
import { ApiError, notFound } from "../errors";
import { checkSignature, FILES_PREFIX } from "../signed-urls";

export const files = new Hono<AppEnv>();

/** The R2 key a file URL names, or undefined when its path does not decode (no stored key looks like that). */
function fileKey(url: string): string | undefined {
  try {
    return new URL(url).pathname.slice(FILES_PREFIX.length).split("/").map(decodeURIComponent).join("/");
  } catch {
    return undefined;
  }
}

async function serve(c: Context<AppEnv>, head: boolean): Promise<Response> {
  const key = fileKey(c.req.url);
  if (!key?.startsWith("results/")) throw notFound("No such file", "file_not_found");
  const check = await checkSignature(c.env.SIGNING_SECRET, key, c.req.query("expires"), c.req.query("signature"));
  if (check === "invalid") throw new ApiError(403, "permission_error", "Invalid file signature.", "invalid_signature");
  if (check === "expired") throw new ApiError(403, "permission_error", "This link has expired; fetch the job again for a fresh one.", "url_expired");
  const obj = head ? await c.env.RESULTS.head(key) : await c.env.RESULTS.get(key);
  if (!obj) throw notFound("No such file", "file_not_found");
  const maxAge = Math.max(0, Number(c.req.query("expires")) - Math.floor(Date.now() / 1000));
  const headers = new Headers({
    "content-type": obj.httpMetadata?.contentType ?? "application/octet-stream",
    "content-length": String(obj.size),
    etag: obj.httpEtag,
    "cache-control": `private, max-age=${maxAge}, immutable`,
    "cross-origin-resource-policy": "cross-origin",
  });
  return new Response(head ? null : (obj as R2ObjectBody).body, { status: 200, headers });
}

files.use("*", secureHeaders({ crossOriginResourcePolicy: "cross-origin" }));
files.get("/*", (c) => serve(c, false));
files.on("HEAD", "/*", (c) => serve(c, true));
