// Keeps a streamed response's handler running after the client goes away. Without it workerd cancels the
// request's outstanding I/O at disconnect, and the ledger release that follows a cancelled stream would
// never reach the Account object (the slot and reserved units would stay taken until its sweep).
import type { Context } from "hono";

export function outliveClient<A extends unknown[]>(c: Context, handler: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return (...args) => {
    const run = handler(...args);
    c.executionCtx.waitUntil(run.catch(() => undefined));
    return run;
  };
}
