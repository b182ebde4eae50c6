// Body size limit enforced before any parsing (Content-Length when present, else counted while streaming).
import { bodyLimit } from "hono/body-limit";
import { ApiError } from "../errors";

export const limitBody = (maxBytes: number) =>
  bodyLimit({
    maxSize: maxBytes,
    onError: () => {
      throw new ApiError(413, "invalid_request_error", `Request body too large (limit ${maxBytes} bytes).`, "request_too_large");
    },
  });
