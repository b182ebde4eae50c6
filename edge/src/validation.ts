// Request validation with the same zod schemas that generate /openapi.json: errors become OpenAI-style 400s
// whose `param` names the offending field (dotted path) and whose message says what is wrong. The code says
// which: missing_required_parameter (absent), invalid_type (present, of the wrong type) or invalid_value.
import { OpenAPIHono, type z } from "@hono/zod-openapi";
import type { AppEnv } from "./env";
import { invalid, type ApiError } from "./errors";

/** The value at `path` in the request data as sent (undefined when it is absent). */
function valueAt(data: unknown, path: PropertyKey[]): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<PropertyKey, unknown>)[k];
  }
  return v;
}

/** `data` is what was validated: zod does not report inputs, so absence is looked up there. */
export function validationError(error: z.ZodError, data: unknown): ApiError {
  const issue = error.issues[0];
  const param = issue?.path.length ? issue.path.map(String).join(".") : null;
  const code = issue?.code !== "invalid_type" ? "invalid_value" : valueAt(data, issue.path) === undefined ? "missing_required_parameter" : "invalid_type";
  const message = param ? `Invalid '${param}': ${issue.message}` : (issue?.message ?? "Invalid request");
  return invalid(message, param, code);
}

export function parseWith<S extends z.ZodType>(schema: S, data: unknown): z.infer<S> {
  const r = schema.safeParse(data);
  if (!r.success) throw validationError(r.error, data);
  return r.data;
}

/** A router whose validation failures are thrown to app.onError (OpenAI error shape). */
export const createRouter = () =>
  new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      // the hook also gets the data it validated (@hono/zod-validator passes it along)
      if (!result.success) throw validationError(result.error, (result as { data?: unknown }).data);
    },
  });
