// x-request-id on every response: the caller's id when it is a safe token, else a fresh `req_...`.
import { requestId } from "hono/request-id";
import { newId } from "../lib/ids";
import { LIMITS } from "../config";

export const requestIdMiddleware = requestId({ headerName: "x-request-id", limitLength: LIMITS.requestIdChars, generator: () => newId("req") });
