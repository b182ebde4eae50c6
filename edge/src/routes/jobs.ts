// Async jobs: POST /v1/jobs (202 + job object), GET /v1/jobs/{id}, GET /v1/jobs/{id}/events (SSE, resumable
// with Last-Event-ID), POST /v1/jobs/{id}/cancel. The units are reserved at creation (429s happen here),
// inputs go to R2, and the Job object runs the generation even if the client goes away. A job id is looked
// up in the job directory (D1) before its Job object is addressed, so unknown ids cost no object storage.
import { createRoute, z } from "@hono/zod-openapi";
import { streamSSE } from "hono/streaming";
import { createRouter } from "../validation";
import { Job, JobCreateRequest } from "../schemas/jobs";
import { authErrors, ErrorSchema, workErrors } from "../schemas/common";
import { readJobRequest } from "../services/requests";
import { estimateImageMilli } from "../services/images";
import { estimateUnderstandMilli } from "../services/understand";
import { acceptedJob } from "../services/metered-response";
import { modelId } from "../services/specs";
import { ApiError, notFound } from "../errors";
import { jobStub, type StoredSpec } from "../durable/job";
import { ownsJob, registerJob } from "../services/job-directory";
import type { Context } from "hono";
import type { AppEnv } from "../env";

const JobId = z.object({ id: z.string().regex(/^job_[A-Za-z0-9]{8,64}$/, "not a job id").openapi({ param: { name: "id", in: "path" }, example: "job_7HcZ3..." }) });
const jobNotFound = () => notFound("No such job", "job_not_found");

/** The caller's Job object for `id`, or a 404 when the caller never created that job. */
async function callersJob(c: Context<AppEnv>, id: string) {
  if (!(await ownsJob(c.env.DB, id, c.get("principal").accountId))) throw jobNotFound();
  return jobStub(c.env, id);
}
const notFoundResponse = { 404: { content: { "application/json": { schema: ErrorSchema } }, description: "No such job (for this account)" } };

export const jobs = createRouter();

jobs.openAPIRegistry.registerPath({
  method: "post",
  path: "/jobs",
  tags: ["jobs"],
  summary: "Start an async generation, edit or understanding job",
  description: "Answers 202 at once; the job runs even if the client disconnects. Results are kept in R2 and served by signed, expiring URLs. With webhook_url, the final job object is POSTed, signed per Standard Webhooks (secret: GET /v1/webhooks/secret).",
  security: [{ ApiKey: [] }],
  request: { body: { content: { "application/json": { schema: JobCreateRequest } }, required: true } },
  responses: { 202: { content: { "application/json": { schema: Job } }, description: "Job accepted" }, ...workErrors },
});

jobs.post("/jobs", async (c) => {
  const req = await readJobRequest(c);
  const p = c.get("principal");
  const estimateMilli = req.type === "chat_completion" ? estimateUnderstandMilli(req.spec) : estimateImageMilli(req.spec);
  const origin = new URL(c.req.url).origin;
  const slots = req.type === "chat_completion" ? 1 : req.spec.n;
  return acceptedJob(c, { task: req.type, estimateMilli, slots }, async (jobId) => {
    const inputs = await Promise.all(
      req.spec.images.map(async (bytes, i) => {
        const key = `jobs/${p.accountId}/${jobId}/input-${i}`;
        await c.env.RESULTS.put(key, bytes);
        return key;
      }),
    );
    let work: StoredSpec;
    if (req.type === "chat_completion") {
      const { images: _omit, ...spec } = req.spec;
      work = { type: req.type, spec, inputs, model: req.model ?? modelId(c.env) };
    } else {
      const { images: _i, mask, ...spec } = req.spec;
      let maskKey: string | undefined;
      if (mask) {
        maskKey = `jobs/${p.accountId}/${jobId}/mask`;
        await c.env.RESULTS.put(maskKey, mask);
      }
      work = { type: req.type, spec, inputs, maskKey };
    }
    await registerJob(c.env.DB, jobId, p.accountId);
    const job = await jobStub(c.env, jobId).create({ id: jobId, accountId: p.accountId, keyId: p.keyId, origin, requestId: c.get("requestId"), webhookUrl: req.webhookUrl, work });
    return { job, location: `${origin}/v1/jobs/${jobId}` };
  });
});

const getRoute = createRoute({
  method: "get",
  path: "/jobs/{id}",
  tags: ["jobs"],
  summary: "Job status and result",
  security: [{ ApiKey: [] }],
  request: { params: JobId },
  responses: { 200: { content: { "application/json": { schema: Job } }, description: "The job" }, ...notFoundResponse, ...authErrors },
});

jobs.openapi(getRoute, async (c) => {
  const { id } = c.req.valid("param");
  const job = await (await callersJob(c, id)).get(c.get("principal").accountId);
  if (!job) throw jobNotFound();
  return c.json(job as z.infer<typeof Job>, 200);
});

const eventsRoute = createRoute({
  method: "get",
  path: "/jobs/{id}/events",
  tags: ["jobs"],
  summary: "Job events as Server-Sent Events",
  description: "job.queued, job.running, <type>.progress, <type>.partial_image, job.succeeded | job.failed | job.canceled; each with an id (resume with Last-Event-ID). The stream ends after the final event.",
  security: [{ ApiKey: [] }],
  request: { params: JobId },
  responses: { 200: { content: { "text/event-stream": { schema: z.string() } }, description: "Event stream" }, ...notFoundResponse, ...authErrors },
});

jobs.openapi(eventsRoute, async (c) => {
  const { id } = c.req.valid("param");
  const accountId = c.get("principal").accountId;
  const stub = await callersJob(c, id);
  let after = Number(c.req.header("last-event-id") ?? 0) || 0;
  const first = await stub.events(accountId, after);
  if (!first) throw jobNotFound();
  return streamSSE(c, async (sse) => {
    let batch: Awaited<ReturnType<typeof stub.events>> = first;
    while (batch && !sse.aborted) {
      for (const e of batch.events) {
        await sse.writeSSE({ id: String(e.seq), event: e.type, data: e.data });
        after = e.seq;
      }
      if (batch.done) break;
      await sse.sleep(batch.events.length ? 50 : 250);
      batch = await stub.events(accountId, after);
    }
  });
});

const cancelRoute = createRoute({
  method: "post",
  path: "/jobs/{id}/cancel",
  tags: ["jobs"],
  summary: "Cancel a queued or running job (nothing is charged)",
  security: [{ ApiKey: [] }],
  request: { params: JobId },
  responses: {
    200: { content: { "application/json": { schema: Job } }, description: "The cancelled job" },
    409: { content: { "application/json": { schema: ErrorSchema } }, description: "The job already finished" },
    ...notFoundResponse,
    ...authErrors,
  },
});

jobs.openapi(cancelRoute, async (c) => {
  const { id } = c.req.valid("param");
  const r = await (await callersJob(c, id)).cancel(c.get("principal").accountId);
  if (!("job" in r)) {
    if (r.reason === "not_found") throw jobNotFound();
    throw new ApiError(409, "invalid_request_error", `The job is already ${r.status}; it cannot be cancelled.`, "job_not_cancelable");
  }
  return c.json(r.job as z.infer<typeof Job>, 200);
});
