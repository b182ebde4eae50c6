// The model layer reports bad input as its own InvalidArgument (model/ knows nothing of gRPC); task families
// re-throw it as the orchestrator's INVALID_ARGUMENT naming the same field.
import { invalidArgument } from "../errors";
import { InvalidArgument } from "../model/errors";

export async function asInvalid<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof InvalidArgument) throw invalidArgument(e.field, e.message.replace(/^[^:]+: /, ""));
    throw e;
  }
}
