// Connect transport to one orchestrator over fetch (connect-web), with the service token on every call.
// Workers cannot speak native gRPC (no trailers, no HTTP/2 control), so the orchestrator serves the Connect
// protocol on the same port. The fetch wrapper adapts connect-web's browser defaults to workerd: redirects
// are refused by hand ("error" mode is not implemented at the edge), and a body that Cloudflare already
// decompressed loses its stale content-encoding/length headers (connect-es Workers conformance workaround).
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { DimooService } from "../../../proto/gen/dimoo/v1/dimoo_pb";

export type FetchFn = (input: RequestInfo | URL, init?: RequestInit) => Promise<Response>;
export type DimooClient = Client<typeof DimooService>;

export function edgeFetch(base: FetchFn = (i, init) => fetch(i, init)): FetchFn {
  return async (input, init) => {
    const res = await base(input, { ...init, redirect: "manual" });
    if (res.status >= 300 && res.status < 400) throw new TypeError(`orchestrator answered a redirect (${res.status})`);
    const enc = res.headers.get("content-encoding");
    if (enc && enc !== "identity") {
      // fetch in workerd has already decoded the body; the header would make connect decode it twice.
      const headers = new Headers(res.headers);
      headers.delete("content-encoding");
      headers.delete("content-length");
      return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
    }
    return res;
  };
}

const serviceToken = (token: string | undefined): Interceptor => (next) => async (req) => {
  if (token) req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

export function createDimooClient(baseUrl: string, token: string | undefined, fetchFn?: FetchFn): DimooClient {
  const transport = createConnectTransport({
    baseUrl,
    useBinaryFormat: true,
    fetch: edgeFetch(fetchFn) as typeof globalThis.fetch,
    interceptors: [serviceToken(token)],
  });
  return createClient(DimooService, transport);
}
