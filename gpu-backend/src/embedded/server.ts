// The embedded Triton-compatible gRPC server: inference.GRPCInferenceService (and grpc.health.v1.Health)
// over a model repository served with onnxruntime-node on CPU. `start()` loads the repository, binds the
// port and returns a handle with `close()`.

import * as grpc from "@grpc/grpc-js";
import { Status } from "../triton/errors";
import type { ModelConfig } from "../triton/model-config";
import {
  TRITON_MAX_MESSAGE_BYTES,
  loadTritonGrpc,
  type ModelInferRequestMsg,
  type ModelInferResponseMsg,
  type ModelMetadataResponseMsg,
  type ModelStatisticsMsg,
} from "../triton/proto";
import { datatypeOfConfig } from "../triton/datatypes";
import { OrtWorkerPool } from "./executor";
import type { ModelVersion } from "./model";
import { ModelRepository, parseVersion } from "./repository";
import { RpcError, prepareRequest } from "./request";
import { nowNs } from "./stats";

/** The server version reported by ServerMetadata (the Triton release whose protocol this follows). */
export const EMBEDDED_SERVER_VERSION = "2.73.0";

/** Extensions reported by ServerMetadata: what this backend implements, plus "embedded" to tell it apart. */
export const EMBEDDED_EXTENSIONS = ["sequence", "model_repository", "schedule_policy", "model_configuration", "parameters", "statistics", "embedded"];

export interface StartOptions {
  /** Model repository directory (Triton layout). */
  repository: string;
  /** gRPC port; Triton's default 8001; 0 picks a free port (see handle.port). */
  port?: number;
  /** Bind address; default "127.0.0.1": like Triton the backend has no auth, so it is exposed only on purpose. */
  host?: string;
  /**
   * Load every model before start() resolves and the port opens (Triton's behaviour, default true). With
   * false the port opens at once; models report LOADING until `handle.loaded` resolves.
   */
  waitForModels?: boolean;
  /** Triton's --model-config-name: prefer `<model>/configs/<name>.pbtxt` over config.pbtxt. */
  configName?: string;
  /** Caps instances per model version (instance_group counts above it are reduced). */
  instanceCap?: number;
  /** Worker threads for onnxruntime sessions (default min(4, cores)). */
  ortWorkers?: number;
  /** Log sink (default: none). */
  log?: (line: string) => void;
}

export interface EmbeddedBackend {
  readonly host: string;
  readonly port: number;
  /** "127.0.0.1:<port>" (or host:port), ready for `new TritonClient(url)`. */
  readonly url: string;
  readonly repository: ModelRepository;
  /** Resolves when every model finished loading (successfully or not). */
  readonly loaded: Promise<void>;
  /** Active sequences (with implicit state) of a model's latest ready version. */
  activeSequences(model: string, version?: number): number;
  /** Stops accepting calls, waits briefly for calls in flight, unloads the models. */
  close(): Promise<void>;
}

interface ServerError {
  code: number;
  details: string;
}

function toServerError(e: unknown): ServerError {
  if (e instanceof RpcError) return { code: e.code, details: e.message };
  return { code: Status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}

type UnaryHandler<Req, Res> = (call: grpc.ServerUnaryCall<Req, Res>, cb: grpc.sendUnaryData<Res>) => void;

function unary<Req, Res>(fn: (req: Req, call: grpc.ServerUnaryCall<Req, Res>) => Res | Promise<Res>): UnaryHandler<Req, Res> {
  return (call, cb) => {
    Promise.resolve()
      .then(() => fn(call.request, call))
      .then(
        (res) => cb(null, res),
        (e) => cb(toServerError(e) as grpc.ServerErrorResponse),
      );
  };
}

function metadataOf(mv: ModelVersion, entryVersions: string[]): ModelMetadataResponseMsg {
  const c = mv.config;
  const tensor = (io: { name: string; data_type: string; dims: number[] }) => ({
    name: io.name,
    datatype: datatypeOfConfig(io.data_type),
    shape: c.max_batch_size > 0 ? [-1, ...io.dims] : io.dims,
  });
  return {
    name: c.name,
    versions: entryVersions,
    platform: c.platform || c.backend,
    inputs: c.input.map(tensor),
    outputs: c.output.map(tensor),
  };
}

export async function start(opts: StartOptions): Promise<EmbeddedBackend> {
  const host = opts.host ?? "127.0.0.1";
  const log = opts.log ?? (() => undefined);
  const pool = new OrtWorkerPool(opts.ortWorkers);
  const repo = new ModelRepository(opts.repository, { pool, instanceCap: opts.instanceCap, configName: opts.configName, log });
  await repo.scan();
  const loaded = repo.loadAll();
  if (opts.waitForModels ?? true) await loaded;

  let closing = false;
  const inFlight = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    inFlight.add(p);
    void p.finally(() => inFlight.delete(p)).catch(() => undefined);
    return p;
  };

  const shuttingDown = () => new RpcError(Status.UNAVAILABLE, "GRPC server is shutting down and has stopped accepting new requests.");

  async function runInfer(msg: ModelInferRequestMsg, signal: AbortSignal, receivedNs: bigint): Promise<ModelInferResponseMsg> {
    if (closing) throw shuttingDown();
    const mv = repo.resolve(msg.model_name, msg.model_version);
    let prepared;
    try {
      prepared = prepareRequest(msg, mv.config);
    } catch (e) {
      mv.stats.failed(receivedNs);
      throw e;
    }
    const out = await mv.infer(prepared, signal, receivedNs);
    let bytes = 0;
    for (const t of out.tensors) bytes += t.tensor.raw.byteLength;
    if (bytes > TRITON_MAX_MESSAGE_BYTES) {
      throw new RpcError(Status.INVALID_ARGUMENT, `Response has byte size ${bytes} which exceeds gRPC's byte size limit ${TRITON_MAX_MESSAGE_BYTES}.`);
    }
    return {
      model_name: mv.name,
      model_version: String(mv.version),
      id: msg.id,
      parameters: {},
      outputs: out.tensors.map(({ name, tensor }) => ({ name, datatype: tensor.datatype, shape: tensor.shape, parameters: {} })),
      raw_output_contents: out.tensors.map((t) => t.tensor.raw),
    };
  }

  const readyVersions = (name: string): string[] =>
    [...(repo.models.get(name)?.versions.values() ?? [])]
      .filter((v) => v.state === "READY")
      .map((v) => String(v.version));

  const service: grpc.UntypedServiceImplementation = {
    ServerLive: unary(() => ({ live: !closing })),
    ServerReady: unary(() => ({ ready: !closing && repo.allReady })),
    ModelReady: unary((req: { name: string; version: string }) => {
      repo.resolve(req.name, req.version);
      return { ready: true };
    }),
    ServerMetadata: unary(() => ({ name: "triton", version: EMBEDDED_SERVER_VERSION, extensions: EMBEDDED_EXTENSIONS })),
    ModelMetadata: unary((req: { name: string; version: string }) => metadataOf(repo.resolve(req.name, req.version), readyVersions(req.name))),
    ModelConfig: unary((req: { name: string; version: string }) => ({ config: repo.resolve(req.name, req.version).config as ModelConfig })),
    ModelStatistics: unary((req: { name: string; version: string }) => {
      const version = parseVersion(req.version);
      const stats: ModelStatisticsMsg[] = [];
      const names = req.name ? [req.name] : [...repo.models.keys()];
      for (const name of names) {
        const ready = [...(repo.models.get(name)?.versions.values() ?? [])].filter((v) => v.state === "READY");
        if (req.name) {
          if (ready.length === 0) throw new RpcError(Status.INVALID_ARGUMENT, `requested model '${name}' is not available`);
          if (version !== -1 && !ready.some((v) => v.version === version)) {
            throw new RpcError(Status.INVALID_ARGUMENT, `requested model version is not available for model '${name}'`);
          }
        }
        for (const v of ready) if (version === -1 || v.version === version) stats.push(v.stats.toMsg(name, String(v.version)));
      }
      return { model_stats: stats };
    }),
    RepositoryIndex: unary((req: { repository_name: string; ready: boolean }) => {
      const models: { name: string; version: string; state: string; reason: string }[] = [];
      for (const m of repo.models.values()) {
        if (m.error) {
          if (!req.ready) models.push({ name: m.name, version: "", state: "UNAVAILABLE", reason: m.error });
          continue;
        }
        for (const v of m.versions.values()) {
          if (req.ready && v.state !== "READY") continue;
          models.push({ name: m.name, version: String(v.version), state: v.state, reason: v.reason });
        }
      }
      return { models };
    }),
    RepositoryModelLoad: unary(() => {
      throw new RpcError(Status.UNAVAILABLE, "explicit model load / unload is not allowed if polling is enabled");
    }),
    RepositoryModelUnload: unary(() => {
      throw new RpcError(Status.UNAVAILABLE, "explicit model load / unload is not allowed if polling is enabled");
    }),
    ModelInfer: (call: grpc.ServerUnaryCall<ModelInferRequestMsg, ModelInferResponseMsg>, cb: grpc.sendUnaryData<ModelInferResponseMsg>) => {
      const receivedNs = nowNs();
      const ac = new AbortController();
      call.on("cancelled", () => ac.abort());
      track(
        runInfer(call.request, ac.signal, receivedNs).then(
          (res) => cb(null, res),
          (e) => cb(toServerError(e) as grpc.ServerErrorResponse),
        ),
      );
    },
    ModelStreamInfer: (call: grpc.ServerDuplexStream<ModelInferRequestMsg, unknown>) => {
      const grpcErrorMode = String(call.metadata.get("triton_grpc_error")[0] ?? "").toLowerCase() === "true";
      const ac = new AbortController();
      call.on("cancelled", () => ac.abort());
      let pending = 0;
      let ended = false;
      let failed = false;
      const maybeEnd = () => {
        if (ended && pending === 0 && !failed && !call.cancelled) call.end();
      };
      const final = { triton_final_response: { bool_param: true } };
      call.on("data", (msg: ModelInferRequestMsg) => {
        if (failed) return;
        pending++;
        track(
          runInfer(msg, ac.signal, nowNs())
            .then(
              (res) => {
                if (!failed && !call.cancelled) call.write({ error_message: "", infer_response: { ...res, parameters: final } });
              },
              (e) => {
                if (failed || call.cancelled) return;
                const err = toServerError(e);
                if (grpcErrorMode) {
                  failed = true;
                  call.emit("error", err);
                  return;
                }
                call.write({
                  error_message: err.details,
                  infer_response: { model_name: msg.model_name, model_version: msg.model_version, id: msg.id, parameters: final, outputs: [], raw_output_contents: [] },
                });
              },
            )
            .finally(() => {
              pending--;
              maybeEnd();
            }),
        );
      });
      call.on("end", () => {
        ended = true;
        maybeEnd();
      });
      call.on("error", () => ac.abort());
    },
  };

  const server = new grpc.Server({
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
  });
  const pkg = loadTritonGrpc("string");
  server.addService(pkg.GRPCInferenceService.service, service);
  server.addService(pkg.Health.service, {
    Check: unary(() => ({ status: !closing && repo.allReady ? "SERVING" : "NOT_SERVING" })),
  });
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host.includes(":") ? `[${host}]` : host}:${opts.port ?? 8001}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
  } catch (e) {
    await repo.close();
    await pool.close();
    throw e;
  }
  log(`I Started GRPCInferenceService at ${host}:${port}`);

  const clientHost = host === "0.0.0.0" || host === "::" ? "127.0.0.1" : host;
  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    url: `${clientHost.includes(":") ? `[${clientHost}]` : clientHost}:${port}`,
    repository: repo,
    loaded: loaded.then(() => undefined),
    activeSequences(model: string, version?: number): number {
      const m = repo.models.get(model);
      if (!m) return 0;
      const v = version !== undefined ? m.versions.get(version) : [...m.versions.values()].filter((x) => x.state === "READY").pop();
      return v?.activeSequences ?? 0;
    },
    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        await Promise.race([Promise.allSettled([...inFlight]), new Promise((r) => setTimeout(r, 2000).unref())]);
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => {
            server.forceShutdown();
            resolve();
          }, 1000);
          t.unref();
          server.tryShutdown(() => {
            clearTimeout(t);
            resolve();
          });
        });
        await loaded.catch(() => undefined);
        await repo.close();
        await pool.close();
        log("I embedded backend stopped");
      })();
      return closed;
    },
  };
}
