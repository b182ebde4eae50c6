// Reads a work request from the HTTP body: edits as multipart (`image`, `image[]`, `mask` files) or JSON
// (images as data/https URLs), and async job bodies (any public body + webhook_url, type inferred).
import type { Context } from "hono";
import type { AppEnv } from "../env";
import { ApiError, invalid } from "../errors";
import { parseWith } from "../validation";
import { ImageEditFields } from "../schemas/images";
import { JobChatBody, JobEditBody, JobGenerationBody, JOB_TYPES, type JobType } from "../schemas/jobs";
import { chatSpec, editSpec, generationSpec } from "./specs";
import { checkImage, checkOutboundUrl, fileBytes, loadImageRef, type InputImage } from "./inputs";
import type { ImageSpec } from "./images";
import type { UnderstandSpec } from "./understand";

export type WorkRequest =
  | { type: "image_generation"; spec: ImageSpec; responseFormat: "b64_json" | "url"; stream: boolean; webhookUrl?: string }
  | { type: "image_edit"; spec: ImageSpec; responseFormat: "b64_json" | "url"; stream: boolean; webhookUrl?: string }
  | { type: "chat_completion"; spec: UnderstandSpec; stream: boolean; includeUsage: boolean; model?: string; webhookUrl?: string };

const isMultipart = (c: Context<AppEnv>) => (c.req.header("content-type") ?? "").toLowerCase().startsWith("multipart/form-data");
const isJson = (c: Context<AppEnv>) => /^application\/([a-z.+-]*\+)?json/i.test(c.req.header("content-type") ?? "");

async function readJson(c: Context<AppEnv>): Promise<unknown> {
  if (!isJson(c)) throw new ApiError(415, "invalid_request_error", "Unsupported Content-Type; send application/json (or multipart/form-data for edits)", "unsupported_media_type");
  try {
    return await c.req.json();
  } catch {
    throw invalid("Malformed JSON in request body", null, "invalid_json");
  }
}

async function multipartEdit(c: Context<AppEnv>) {
  let form: FormData;
  try {
    form = await c.req.formData();
  } catch {
    throw invalid("Malformed multipart body", null, "invalid_multipart");
  }
  const fields: Record<string, string> = {};
  for (const [k, v] of form.entries()) if (typeof v === "string" && k !== "image" && k !== "image[]" && k !== "mask") fields[k] = v;
  const files = [...form.getAll("image"), ...form.getAll("image[]")];
  const images: InputImage[] = [];
  for (const [i, f] of files.entries()) images.push(checkImage(await fileBytes(f, "image"), files.length > 1 ? `image[${i}]` : "image"));
  const m = form.get("mask");
  const mask = m !== null ? checkImage(await fileBytes(m, "mask"), "mask") : undefined;
  return { fields, images, mask };
}

async function jsonEditImages(c: Context<AppEnv>, body: { image: string | string[]; mask?: string }) {
  const refs = Array.isArray(body.image) ? body.image : [body.image];
  const images = await Promise.all(refs.map((r, i) => loadImageRef(c.env, r, refs.length > 1 ? `image.${i}` : "image")));
  const mask = body.mask ? await loadImageRef(c.env, body.mask, "mask") : undefined;
  return { images, mask };
}

/** POST /v1/images/edits body (multipart or JSON). */
export async function readEditRequest(c: Context<AppEnv>): Promise<Extract<WorkRequest, { type: "image_edit" }>> {
  const who = c.get("principal");
  if (isMultipart(c)) {
    const { fields, images, mask } = await multipartEdit(c);
    const f = parseWith(ImageEditFields, fields);
    return { type: "image_edit", spec: editSpec(c.env, f, images, mask, who), responseFormat: f.response_format, stream: f.stream, webhookUrl: fields.webhook_url };
  }
  const raw = await readJson(c);
  const body = parseWith(JobEditBody, raw);
  const { images, mask } = await jsonEditImages(c, body);
  return { type: "image_edit", spec: editSpec(c.env, body, images, mask, who), responseFormat: body.response_format, stream: body.stream, webhookUrl: body.webhook_url };
}

function inferType(raw: Record<string, unknown>): JobType {
  if (typeof raw.type === "string") {
    if (!(JOB_TYPES as readonly string[]).includes(raw.type)) throw invalid(`type must be one of ${JOB_TYPES.join(", ")}`, "type");
    return raw.type as JobType;
  }
  if ("messages" in raw) return "chat_completion";
  if ("image" in raw) return "image_edit";
  return "image_generation";
}

/** POST /v1/jobs body. */
export async function readJobRequest(c: Context<AppEnv>): Promise<WorkRequest> {
  const who = c.get("principal");
  let req: WorkRequest;
  if (isMultipart(c)) req = await readEditRequest(c);
  else {
    const raw = await readJson(c);
    if (!raw || typeof raw !== "object" || Array.isArray(raw)) throw invalid("The body must be a JSON object", null);
    const type = inferType(raw as Record<string, unknown>);
    if (type === "image_generation") {
      const b = parseWith(JobGenerationBody, raw);
      req = { type, spec: generationSpec(c.env, b, who), responseFormat: "url", stream: false, webhookUrl: b.webhook_url };
    } else if (type === "image_edit") {
      const b = parseWith(JobEditBody, raw);
      const { images, mask } = await jsonEditImages(c, b);
      req = { type, spec: editSpec(c.env, b, images, mask, who), responseFormat: "url", stream: false, webhookUrl: b.webhook_url };
    } else {
      const b = parseWith(JobChatBody, raw);
      req = { type, spec: await chatSpec(c.env, b, who), stream: false, includeUsage: true, model: b.model, webhookUrl: b.webhook_url };
    }
  }
  if (req.webhookUrl) checkOutboundUrl(c.env, req.webhookUrl, "webhook_url");
  // async results are always stored and linked (they outlive the request); previews are not streamed
  if (req.type !== "chat_completion") {
    req.responseFormat = "url";
    req.spec.partialImages = 0;
  }
  return req;
}
