// Request validation with the same zod schemas that generate /openapi.json: errors become OpenAI-style 400s
// whose `param` names the offending field (dotted path) and whose message says what is wrong.
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { AppEnv } from "./env";
import { invalid, type ApiError } from "./errors";

export function validationError(error: z.ZodError): ApiError {
  const issue = error.issues[0];
  const param = issue?.path.length ? issue.path.map(String).join(".") : null;
  const code = issue?.code === "invalid_type" && (issue as { input?: unknown }).input === undefined ? "missing_required_parameter" : "invalid_value";
  const message = param ? `Invalid '${param}': ${issue.message}` : (issue?.message ?? "Invalid request");
  return invalid(message, param, code);
}

export function parseWith<S extends z.ZodType>(schema: S, data: unknown): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw validationError(r.error);
  return r.data;
}

/** A router whose validation failures are thrown to app.onError (OpenAI error shape). */
export const createRouter = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationError(result.error);
    },
  });
