// The model repository of the embedded backend: Triton's layout (`<repo>/<model>/config.pbtxt`,
// `<repo>/<model>/<version>/model.onnx`, or `<version>/model.onnx/` as a directory holding model.onnx and
// its external data), version policies, loading every model at startup (Triton's model-control-mode
// "none"), and Triton's lookup errors.

import { readFile, readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { Status } from "../triton/errors";
import type { ModelConfig } from "../triton/model-config";
import { ConfigError, backendOf, completeFromModel, emptyModelConfig, identityIO, normalizeModelConfig, parseModelConfig } from "./config";
import { IdentityExecutor, OrtWorkerPool, type Executor } from "./executor";
import { ModelVersion } from "./model";
import { PbtxtError } from "../triton/pbtxt";
import { RpcError } from "./request";

export interface ModelEntry {
  name: string;
  dir: string;
  config?: ModelConfig;
  /** A model-level load failure (bad config, no versions): the model is UNAVAILABLE with this reason. */
  error?: string;
  versions: Map<number, ModelVersion>;
}

export interface RepositoryOptions {
  pool: OrtWorkerPool;
  /** Upper bound on instances per model version (saves memory on small machines). */
  instanceCap?: number;
  /** Triton's --model-config-name: use `<model>/configs/<name>.pbtxt` where it exists, else config.pbtxt. */
  configName?: string;
  log?: (msg: string) => void;
}

async function exists(p: string): Promise<"file" | "dir" | undefined> {
  try {
    const s = await stat(p);
    return s.isDirectory() ? "dir" : "file";
  } catch {
    return undefined;
  }
}

/** Version directories: numeric names that do not start with "0". */
async function listVersions(dir: string): Promise<number[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && /^[1-9][0-9]*$/.test(e.name))
    .map((e) => Number(e.name))
    .sort((a, b) => a - b);
}

function selectVersions(config: ModelConfig, available: number[]): number[] {
  const p = config.version_policy;
  if (p?.all) return available;
  if (p?.specific) return available.filter((v) => p.specific?.versions.includes(v));
  const n = Math.max(1, p?.latest?.num_versions ?? 1);
  return available.slice(-n);
}

/**
 * std::stol semantics for version strings, as Triton parses them: leading digits count, "" means latest (-1).
 */
export function parseVersion(s: string): number {
  if (s === "") return -1;
  const m = /^\s*([+-]?\d+)/.exec(s);
  if (!m) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `failed to get model version from specified version string '${s}' (details: stol), version should be an integral value > 0`,
    );
  }
  const v = Number(m[1]);
  if (v < 0) throw new RpcError(Status.INVALID_ARGUMENT, `invalid model version specified '${s}' , version should be an integral value > 0`);
  return v;
}

export class ModelRepository {
  readonly models = new Map<string, ModelEntry>();

  constructor(
    readonly root: string,
    private readonly opts: RepositoryOptions,
  ) {}

  private log(msg: string): void {
    this.opts.log?.(msg);
  }

  /** Discovers every model directory and registers it (versions in LOADING state). */
  async scan(): Promise<ModelEntry[]> {
    const dirs = (await readdir(this.root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith("."));
    const entries: ModelEntry[] = [];
    for (const d of dirs.sort((a, b) => a.name.localeCompare(b.name))) {
      const entry: ModelEntry = { name: d.name, dir: join(this.root, d.name), versions: new Map() };
      this.models.set(d.name, entry);
      entries.push(entry);
      try {
        const custom = this.opts.configName ? join(entry.dir, "configs", `${this.opts.configName}.pbtxt`) : undefined;
        const cfgPath = custom && (await exists(custom)) === "file" ? custom : join(entry.dir, "config.pbtxt");
        const raw = (await exists(cfgPath)) === "file" ? parseModelConfig(await readFile(cfgPath, "utf8")) : emptyModelConfig();
        entry.config = normalizeModelConfig(raw, d.name);
        const versions = selectVersions(entry.config, await listVersions(entry.dir));
        if (versions.length === 0) throw new ConfigError(`at least one version must be available under the version policy of model '${d.name}'`);
        for (const v of versions) entry.versions.set(v, new ModelVersion(entry.config, v, { modelDir: entry.dir, log: this.opts.log }));
      } catch (e) {
        entry.error = e instanceof PbtxtError ? `failed to parse config.pbtxt of model '${d.name}': ${e.message}` : (e as Error).message;
        this.log(`E model '${d.name}': ${entry.error}`);
      }
    }
    return entries;
  }

  /** Loads every registered version (models in parallel, versions of one model in order). */
  async loadAll(): Promise<void> {
    await Promise.all([...this.models.values()].map((m) => this.loadModel(m)));
  }

  private async loadModel(entry: ModelEntry): Promise<void> {
    if (!entry.config) return;
    let completed = false;
    for (const mv of entry.versions.values()) {
      const instances: Executor[] = [];
      try {
        const config = entry.config;
        const count = Math.min(
          this.opts.instanceCap ?? Infinity,
          config.instance_group.reduce((a, g) => a + Math.max(1, g.count), 0),
        );
        if (backendOf(config) === "identity") {
          const io = identityIO(config);
          const delay = Number(config.parameters.execute_delay_ms?.string_value ?? "") || 0;
          for (let i = 0; i < count; i++) instances.push(new IdentityExecutor(io.inputs, io.outputs, delay));
        } else {
          let path = join(entry.dir, String(mv.version), config.default_model_filename);
          const kind = await exists(path);
          if (kind === "dir") path = join(path, "model.onnx");
          if (!kind || !(await exists(path))) throw new ConfigError(`unable to find '${path}' for model '${entry.name}'`);
          const threads = Number(config.parameters.intra_op_thread_count?.string_value ?? "") || undefined;
          const inter = Number(config.parameters.inter_op_thread_count?.string_value ?? "") || undefined;
          const loaded = await Promise.all(
            Array.from({ length: count }, () => this.opts.pool.load(path, { intraOpNumThreads: threads, interOpNumThreads: inter })),
          );
          instances.push(...loaded);
          if (!completed) {
            completeFromModel(config, loaded[0].inputs, loaded[0].outputs);
            completed = true;
          }
        }
        await mv.start(instances);
        this.log(`I successfully loaded '${entry.name}' version ${mv.version} (${count} instance${count === 1 ? "" : "s"})`);
      } catch (e) {
        mv.state = "UNAVAILABLE";
        mv.reason = (e as Error).message;
        await Promise.all(instances.map((i) => i.close().catch(() => undefined)));
        this.log(`E failed to load '${entry.name}' version ${mv.version}: ${mv.reason}`);
      }
    }
  }

  /** Triton's model lookup (ModelRepositoryManager::GetModel) with its codes and messages. */
  resolve(name: string, versionString: string): ModelVersion {
    const version = parseVersion(versionString);
    const entry = this.models.get(name);
    if (!entry) throw new RpcError(Status.NOT_FOUND, `Request for unknown model: '${name}' is not found`);
    if (version === -1) {
      const ready = [...entry.versions.values()].filter((v) => v.state === "READY").sort((a, b) => b.version - a.version);
      if (ready.length === 0) throw new RpcError(Status.NOT_FOUND, `Request for unknown model: '${name}' has no available versions`);
      return ready[0];
    }
    const mv = entry.versions.get(version);
    if (!mv) throw new RpcError(Status.NOT_FOUND, `Request for unknown model: '${name}' version ${version} is not found`);
    if (mv.state !== "READY") throw new RpcError(Status.UNAVAILABLE, `Request for unknown model: '${name}' version ${version} is not at ready state`);
    return mv;
  }

  /** Strict readiness: every model has all its versions READY. */
  get allReady(): boolean {
    for (const m of this.models.values()) {
      if (m.error || m.versions.size === 0) return false;
      for (const v of m.versions.values()) if (v.state !== "READY") return false;
    }
    return true;
  }

  async close(): Promise<void> {
    await Promise.all([...this.models.values()].flatMap((m) => [...m.versions.values()].map((v) => v.close())));
  }
}
