// GET /v1/models (OpenAI list shape).
import { z } from "@hono/zod-openapi";

export const Model = z.object({ id: z.string(), object: z.literal("model"), created: z.number().int(), owned_by: z.string() }).openapi("Model");
export const ModelList = z.object({ object: z.literal("list"), data: z.array(Model) }).openapi("ModelList");
