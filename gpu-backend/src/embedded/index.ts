// The embedded Triton-compatible backend (see docs/triton.md).
export { start, start as startEmbeddedBackend, EMBEDDED_EXTENSIONS, EMBEDDED_SERVER_VERSION, type EmbeddedBackend, type StartOptions } from "./server";
export { ModelRepository, parseVersion, type ModelEntry } from "./repository";
export { ConfigError, normalizeModelConfig, parseModelConfig } from "./config";
export { PbtxtError, parsePbtxt, parseTextProto } from "../triton/pbtxt";
export { OrtWorkerPool, IdentityExecutor, type Executor, type RawTensor } from "./executor";
