// GET / (the playground page), /playground/app.js and /playground/app.css: public, no key. The page's CSP
// allows only same-origin scripts, styles and API calls (no 'unsafe-inline', no third parties); images may
// also be data:/blob: (results decoded in the browser). The global secure headers still apply.
import { Hono } from "hono";
import type { AppEnv } from "../env";
import { PLAYGROUND_HTML } from "../playground/page";
import { PLAYGROUND_JS } from "../playground/script";
import { PLAYGROUND_CSS } from "../playground/styles";

export const PLAYGROUND_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data: blob:",
  "connect-src 'self'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

const asset = (body: string, contentType: string) => () =>
  new Response(body, {
    headers: {
      "content-type": contentType,
      "content-security-policy": PLAYGROUND_CSP,
      "cache-control": "no-cache",
    },
  });

export const playground = new Hono<AppEnv>();

playground.get("/", asset(PLAYGROUND_HTML, "text/html; charset=utf-8"));
playground.get("/playground/app.js", asset(PLAYGROUND_JS, "text/javascript; charset=utf-8"));
playground.get("/playground/app.css", asset(PLAYGROUND_CSS, "text/css; charset=utf-8"));
