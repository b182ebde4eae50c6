// Async jobs: the creation body (any public body plus webhook_url) and the job object.
import { z } from "@hono/zod-openapi";
import { ImageGenerationRequest, ImageEditFields } from "./images";
import { ChatCompletionRequest } from "./chat";

export const JOB_TYPES = ["image_generation", "image_edit", "chat_completion"] as const;
export type JobType = (typeof JOB_TYPES)[number];

const jobExtras = {
  webhook_url: z.string().url().max(2048).optional().openapi({ description: "Receives the job object on completion, signed per Standard Webhooks" }),
};

export const JobGenerationBody = ImageGenerationRequest.extend({ type: z.literal("image_generation").optional(), ...jobExtras });
export const JobEditBody = ImageEditFields.extend({
  type: z.literal("image_edit").optional(),
  image: z.union([z.string(), z.array(z.string()).min(1).max(4)]).openapi({ description: "data: URLs or https URLs" }),
  mask: z.string().optional().openapi({ description: "data: URL or https URL of a PNG mask" }),
  ...jobExtras,
});
export const JobChatBody = ChatCompletionRequest.extend({ type: z.literal("chat_completion").optional(), ...jobExtras });

export const JobCreateRequest = z
  .union([JobGenerationBody, JobEditBody, JobChatBody])
  .openapi("JobCreateRequest", { description: "A generations, edits (JSON, images as URLs) or chat body, plus an optional webhook_url and type (inferred when absent)" });

export const JobStatus = z.enum(["queued", "running", "succeeded", "failed", "canceled"]);

export const Job = z
  .object({
    id: z.string(),
    object: z.literal("job"),
    type: z.enum(JOB_TYPES),
    status: JobStatus,
    created_at: z.number().int(),
    started_at: z.number().int().nullable(),
    completed_at: z.number().int().nullable(),
    progress: z.object({ step: z.number().int(), steps: z.number().int() }).nullable(),
    result: z.any().nullable().openapi({ description: "ImagesResponse (with signed urls) or ChatCompletion" }),
    error: z.object({ message: z.string(), type: z.string(), code: z.string().nullable() }).nullable(),
    urls: z.object({ self: z.string(), events: z.string(), cancel: z.string() }),
  })
  .openapi("Job");
