// The one place where orchestrator errors become wire errors: ConnectError with a status code and, where
// the proto promises them, details (FieldViolation for INVALID_ARGUMENT, RetryInfo for RESOURCE_EXHAUSTED).
import { Code, ConnectError } from "@connectrpc/connect";
import { FieldViolationSchema, RetryInfoSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { codeOf, OrchestratorError, toOrchestratorError } from "../errors";

export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const e = err instanceof OrchestratorError ? err : toOrchestratorError(err);
  const code = e.code ?? codeOf(err);
  const details = [];
  if (code === Code.InvalidArgument && e.field) {
    // The status message reads "field: description"; the detail carries the field once, on its own.
    const prefix = `${e.field}: `;
    const description = e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message;
    details.push({ desc: FieldViolationSchema, value: { field: e.field, description } });
  }
  if (code === Code.ResourceExhausted) {
    details.push({ desc: RetryInfoSchema, value: { retryAfterMs: Math.max(1, Math.round(e.retryAfterMs ?? 1000)) } });
  }
  const metadata = new Headers();
  if (code === Code.ResourceExhausted) metadata.set("retry-after-ms", String(Math.round(e.retryAfterMs ?? 1000)));
  return new ConnectError(e.message, code, metadata, details, err);
}
