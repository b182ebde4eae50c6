// Body size limits enforced before any parsing (Content-Length when present, else counted while streaming):
// one limit for a router, or the image limit on the routes that carry images and the JSON one elsewhere.
import { bodyLimit } from "hono/body-limit";
import { createMiddleware } from "hono/factory";
import { ApiError } from "../errors";
import { LIMITS } from "../config";

export const limitBody = (maxBytes: number) =>
  bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, "invalid_request_error", `Request body too large (limit ${maxBytes} bytes).`, "request_too_large");
    },
  });

/** LIMITS.imageBodyBytes on `imagePaths` (full request paths), LIMITS.jsonBodyBytes on every other path. */
export function limitBodiesByPath(imagePaths: string[]) {
  const images = new Set(imagePaths);
  const imageLimit = limitBody(LIMITS.imageBodyBytes);
  const jsonLimit = limitBody(LIMITS.jsonBodyBytes);
  return createMiddleware((c, next) => (images.has(c.req.path) ? imageLimit(c, next) : jsonLimit(c, next)));
}
