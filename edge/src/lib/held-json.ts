// A JSON answer to long work that still notices a client hanging up. workerd tells a handler little about a
// client that leaves before the response: request.signal fires only when the runtime cancels the request
// (Cloudflare's front line does; local workerd behind wrangler dev never does), and a response body is
// cancelled once the runtime stops sending it. So the answer waits up to `holdMs` for the work: a quick
// outcome, including every early refusal (no backend, an invalid request), keeps its own status and body.
// Work still running then gets its status line (200) at once and its JSON, byte for byte the same, as a
// streamed body when ready; a client that goes away cancels that body, which aborts the work. A failure
// after the status line errors the body (a truncated response, never a 200 that carries an error), so a
// client sees a broken connection and may retry. The work always runs to its end under waitUntil, so what
// it settles (a ledger commit or release) still happens after the client left.
import type { Context } from "hono";
import { utf8 } from "./encoding";

export async function heldJson(c: Context, work: (signal: AbortSignal) => Promise<unknown>, holdMs: number): Promise<Response> {
  const hangUp = new AbortController();
  const result = work(AbortSignal.any([c.req.raw.signal, hangUp.signal]));
  c.executionCtx.waitUntil(result.catch(() => undefined));

  let timer: ReturnType<typeof setTimeout> | undefined;
  const held = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), holdMs)));
  // a rejection here is the work's own error: thrown on, it becomes the answer with its status
  const finished = await Promise.race([result.then(() => true as const), held]).finally(() => clearTimeout(timer));
  if (finished) return c.json(await result, 200);

  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      result.then(
        (value) => {
          try {
            controller.enqueue(utf8.encode(JSON.stringify(value)));
            controller.close();
          } catch {
            // the body was cancelled meanwhile: nobody is left to answer
          }
        },
        (e) => {
          try {
            controller.error(e);
          } catch {
            // as above
          }
        },
      );
    },
    cancel() {
      hangUp.abort(new DOMException("The client disconnected", "AbortError"));
    },
  });
  return c.body(body, 200, { "content-type": "application/json" });
}
