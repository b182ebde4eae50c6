// trtexec: locating it, the command line for one engine (optimization profiles, precision, memory), and
// running it with its output kept in a log file.
//
// Flags (docs/triton.md, "Building TensorRT engines"):
//   --onnx=<file path>                   a path, so external data resolves beside the .onnx (no ../ allowed)
//   --saveEngine=<repo>/<m>/1/model.plan
//   --profile=i --minShapes --optShapes --maxShapes   one set per profile (`--profile` only with several)
//   --stronglyTyped                       precision from the ONNX types (bf16 transformer, fp32 VQ);
//                                         TensorRT 11 makes it the default (the flag is then a no-op)
//   --noTF32                              VQ only: fp32 convolutions and the argmin stay IEEE fp32
//   --memPoolSize=workspace:<N>M          tactic workspace cap
//   --builderOptimizationLevel=3 --timingCacheFile=<onnx dir>/timing.cache --skipInference
//   --versionCompatible                   optional (serve with --backend-config=tensorrt,version-compatible=true)
// The plan is tied to the TensorRT version of the serving Triton container and to the GPU's compute
// capability: build inside the same container image (or the same TensorRT release) on the same GPU kind.

import { spawn } from "node:child_process";
import { accessSync, constants, createWriteStream } from "node:fs";
import { delimiter, join } from "node:path";
import type { OptimizationProfile } from "../../engine/profiles";

export interface TrtexecOptions {
  workspaceMiB?: number;
  timingCache?: string;
  stronglyTyped?: boolean;
  noTF32?: boolean;
  versionCompatible?: boolean;
  builderOptimizationLevel?: number;
  extraArgs?: string[];
}

const shapeSpec = (p: OptimizationProfile, which: "min" | "opt" | "max") =>
  Object.entries(p.shapes)
    .map(([name, r]) => `${name}:${r[which].join("x")}`)
    .join(",");

export function trtexecArgs(onnx: string, plan: string, profiles: OptimizationProfile[], o: TrtexecOptions = {}): string[] {
  if (profiles.length === 0) throw new Error("trtexec: at least one optimization profile is needed");
  const args = [`--onnx=${onnx}`, `--saveEngine=${plan}`];
  profiles.forEach((p, i) => {
    if (profiles.length > 1) args.push(`--profile=${i}`);
    args.push(`--minShapes=${shapeSpec(p, "min")}`, `--optShapes=${shapeSpec(p, "opt")}`, `--maxShapes=${shapeSpec(p, "max")}`);
  });
  if (o.stronglyTyped ?? true) args.push("--stronglyTyped");
  if (o.noTF32) args.push("--noTF32");
  args.push(`--memPoolSize=workspace:${o.workspaceMiB ?? 8192}M`);
  args.push(`--builderOptimizationLevel=${o.builderOptimizationLevel ?? 3}`);
  if (o.timingCache) args.push(`--timingCacheFile=${o.timingCache}`);
  if (o.versionCompatible) args.push("--versionCompatible");
  args.push("--skipInference");
  if (o.extraArgs) args.push(...o.extraArgs);
  return args;
}

/** Shell-quoted command line, for logs and the generated build script. */
export function shellCommand(bin: string, args: string[]): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  return [bin, ...args].map(q).join(" ");
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Where TensorRT installs put trtexec (NGC containers: /usr/src/tensorrt/bin). */
export const TRTEXEC_FALLBACKS = ["/usr/src/tensorrt/bin/trtexec", "/opt/tensorrt/bin/trtexec", "/usr/local/tensorrt/bin/trtexec"];

/**
 * Resolves trtexec: an explicit path (must exist), else $TRTEXEC, else PATH, else the usual install
 * directories. Returns null when none is found (the caller decides whether that is an error).
 */
export function findTrtexec(explicit?: string, env: NodeJS.ProcessEnv = process.env, fallbacks: readonly string[] = TRTEXEC_FALLBACKS): string | null {
  if (explicit) {
    if (!executable(explicit)) throw new Error(`trtexec not found or not executable at ${explicit} (--trtexec)`);
    return explicit;
  }
  if (env.TRTEXEC) {
    if (!executable(env.TRTEXEC)) throw new Error(`trtexec not found or not executable at ${env.TRTEXEC} ($TRTEXEC)`);
    return env.TRTEXEC;
  }
  for (const dir of (env.PATH ?? "").split(delimiter)) if (dir && executable(join(dir, "trtexec"))) return join(dir, "trtexec");
  for (const p of fallbacks) if (executable(p)) return p;
  return null;
}

export interface TrtexecRun {
  code: number;
  tensorrtVersion?: string;
  /** Largest "Total Activation Memory" / "Total Weights Memory" TensorRT reported, in bytes. */
  activationBytes?: number;
  weightsBytes?: number;
  logFile: string;
}

/** Runs trtexec, teeing its output to `logFile`; resolves with the exit code and the TensorRT version it reports. */
export function runTrtexec(bin: string, args: string[], logFile: string, onLine?: (line: string) => void): Promise<TrtexecRun> {
  return new Promise((resolve, reject) => {
    const log = createWriteStream(logFile);
    log.write(`$ ${shellCommand(bin, args)}\n`);
    const child = spawn(bin, args, { stdio: ["ignore", "pipe", "pipe"] });
    let version: string | undefined;
    let activationBytes: number | undefined;
    let weightsBytes: number | undefined;
    let pending = "";
    const take = (chunk: Buffer) => {
      log.write(chunk);
      pending += chunk.toString("utf8");
      const lines = pending.split("\n");
      pending = lines.pop() ?? "";
      for (const l of lines) {
        const explicit = /TensorRT version:\s*([\d.]+)/.exec(l);
        if (explicit) version = explicit[1];
        const header = /TensorRT\.trtexec \[TensorRT v(\d+)\]/.exec(l);
        if (header && !version) {
          const n = Number(header[1]); // e.g. 101303 = 10.13.3
          version = `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
        }
        const act = /Total Activation Memory:\s*(\d+)/.exec(l);
        if (act) activationBytes = Math.max(activationBytes ?? 0, Number(act[1]));
        const wts = /Total Weights Memory:\s*(\d+)/.exec(l);
        if (wts) weightsBytes = Math.max(weightsBytes ?? 0, Number(wts[1]));
        onLine?.(l);
      }
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    child.on("error", (e) => {
      log.end();
      reject(new Error(`could not start trtexec (${bin}): ${e.message}`));
    });
    child.on("close", (code) => {
      log.end(() => resolve({ code: code ?? -1, tensorrtVersion: version, activationBytes, weightsBytes, logFile }));
    });
  });
}
