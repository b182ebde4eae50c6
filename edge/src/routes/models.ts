// GET /v1/models and GET /v1/models/{id} (OpenAI list shape; one model).
import { createRoute, z } from "@hono/zod-openapi";
import { createRouter } from "../validation";
import { Model, ModelList } from "../schemas/models";
import { authErrors, ErrorSchema } from "../schemas/common";
import { modelId } from "../services/specs";
import { ApiError } from "../errors";

const CREATED = 1_751_328_000; // 2025-07-01, Lumina-DiMOO release

const list = createRoute({
  method: "get",
  path: "/models",
  tags: ["models"],
  summary: "Models served here",
  security: [{ ApiKey: [] }],
  responses: { 200: { content: { "application/json": { schema: ModelList } }, description: "Models" }, ...authErrors },
});

const one = createRoute({
  method: "get",
  path: "/models/{model}",
  tags: ["models"],
  summary: "One model",
  security: [{ ApiKey: [] }],
  request: { params: z.object({ model: z.string().openapi({ param: { name: "model", in: "path" } }) }) },
  responses: {
    200: { content: { "application/json": { schema: Model } }, description: "Model" },
    404: { content: { "application/json": { schema: ErrorSchema } }, description: "Unknown model" },
    ...authErrors,
  },
});

export const models = createRouter();

const model = (id: string) => ({ id, object: "model" as const, created: CREATED, owned_by: "alpha-vllm" });

models.openapi(list, (c) => c.json({ object: "list" as const, data: [model(modelId(c.env))] }, 200));

models.openapi(one, (c) => {
  const { model: id } = c.req.valid("param");
  if (id !== modelId(c.env)) throw new ApiError(404, "invalid_request_error", `The model '${id}' does not exist`, "model_not_found", "model");
  return c.json(model(id), 200);
});
