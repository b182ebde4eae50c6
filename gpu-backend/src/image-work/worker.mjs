// One thread of the image worker pool: runs jobs.ts on messages from the orchestrator. Plain JavaScript on
// purpose: a worker thread started from vitest does not inherit a TypeScript loader, so it loads the jobs
// through tsx's API (the same transform `npm start` uses).
//
// In:  { id, job }   Out: { id, result } | { id, failure: { field?, message } }; result buffers are transferred.
import { parentPort } from "node:worker_threads";
import { tsImport } from "tsx/esm/api";

const { runJob, resultBuffers, toFailure } = await tsImport("./jobs.ts", import.meta.url);

parentPort.on("message", async ({ id, job }) => {
  try {
    const result = await runJob(job);
    parentPort.postMessage({ id, result }, resultBuffers(result));
  } catch (e) {
    parentPort.postMessage({ id, failure: toFailure(e) });
  }
});
