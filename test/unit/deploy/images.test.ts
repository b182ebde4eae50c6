// The GPU host's packaging, checked without a container engine (none runs on CI or dev machines): the
// Dockerfile's stages, that every COPY source exists and is not excluded by .dockerignore, that the entry
// points exist, that the production install holds every package the orchestrator imports, and that the
// compose file wires Triton and the orchestrator to the same engines and to each other.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ROOT } from "../../../scripts/start-stack";

interface Instruction {
  op: string;
  args: string;
  stage: string;
}

/** Dockerfile instructions with continuation lines joined, each tagged with its stage name. */
function dockerfile(path: string): { instructions: Instruction[]; args: Map<string, string> } {
  const lines = readFileSync(path, "utf8").split("\n");
  const joined: string[] = [];
  let cur = "";
  for (const raw of lines) {
    const line = raw.trimEnd();
    if (!cur && (line.trim().startsWith("#") || !line.trim())) continue;
    if (line.endsWith("\\")) cur += line.slice(0, -1) + " ";
    else {
      joined.push(cur + line);
      cur = "";
    }
  }
  const args = new Map<string, string>();
  let stage = "";
  const instructions = joined.map((l) => {
    const m = /^\s*(\w+)\s+(.*)$/.exec(l)!;
    const op = m[1].toUpperCase();
    if (op === "FROM") stage = / AS (\S+)/i.exec(m[2])?.[1] ?? "";
    if (op === "ARG" && !stage) {
      const [k, v] = m[2].split("=");
      args.set(k, v ?? "");
    }
    return { op, args: m[2], stage };
  });
  return { instructions, args };
}

/** The exec-form array of CMD/ENTRYPOINT. */
const execForm = (i: Instruction | undefined): string[] => JSON.parse(i!.args) as string[];

function dockerignored(path: string, patterns: string[]): boolean {
  const first = path.split("/")[0];
  return patterns.some((p) => (p.startsWith("**/") ? path.split("/").includes(p.slice(3)) : p === first || p === path || (p.startsWith("*.") && path.endsWith(p.slice(1)))));
}

const { instructions, args } = dockerfile(join(ROOT, "Dockerfile"));
const ignore = readFileSync(join(ROOT, ".dockerignore"), "utf8")
  .split("\n")
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith("#"));
const stages = new Set(instructions.filter((i) => i.op === "FROM").map((i) => i.stage));
const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };

describe("Dockerfile", () => {
  it("has the stages the compose file and the docs name, on Node 20", () => {
    expect([...stages]).toEqual(expect.arrayContaining(["deps", "app", "engine-builder", "orchestrator"]));
    // The default target is the last stage: the orchestrator.
    expect(instructions.filter((i) => i.op === "FROM").at(-1)!.stage).toBe("orchestrator");
    expect(args.get("NODE_IMAGE")).toMatch(/^node:20[-.]/);
  });

  it("copies only paths that exist in the repository and that .dockerignore lets through", () => {
    const copies = instructions.filter((i) => i.op === "COPY" && !i.args.includes("--from="));
    expect(copies.length).toBeGreaterThan(0);
    for (const c of copies) {
      const parts = c.args.split(/\s+/).filter((p) => !p.startsWith("--"));
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(join(ROOT, src)), `COPY ${src}`).toBe(true);
        expect(dockerignored(src, ignore), `COPY ${src} is excluded by .dockerignore`).toBe(false);
      }
    }
    // Every --from names an earlier stage.
    for (const c of instructions.filter((i) => i.op === "COPY" && i.args.includes("--from="))) {
      expect(stages.has(/--from=(\S+)/.exec(c.args)![1])).toBe(true);
    }
  });

  it("installs production dependencies only, and they hold every package the orchestrator imports (tsx included)", () => {
    const install = instructions.find((i) => i.op === "RUN" && i.args.includes("npm ci"));
    expect(install?.args).toContain("--omit=dev");
    const imported = new Set<string>();
    const walk = (dir: string) => {
      for (const name of readdirSync(dir)) {
        const p = join(dir, name);
        if (statSync(p).isDirectory()) walk(p);
        else if (/\.(ts|mjs|js)$/.test(name)) {
          for (const m of readFileSync(p, "utf8").matchAll(/(?:from\s+|import\()\s*"([^".][^"]*)"/g)) {
            if (m[1].startsWith("node:")) continue;
            const parts = m[1].split("/");
            imported.add(m[1].startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]);
          }
        }
      }
    };
    walk(join(ROOT, "gpu-backend", "src"));
    walk(join(ROOT, "proto", "gen"));
    expect(imported.size).toBeGreaterThan(3);
    for (const name of [...imported, "tsx"]) expect(pkg.dependencies[name], `${name} must be a production dependency`).toBeDefined();
  });

  it("runs the orchestrator as a non-root user, with an entry point that exists", () => {
    const final = instructions.filter((i) => i.stage === "orchestrator");
    const user = final.filter((i) => i.op === "USER").at(-1)?.args;
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
    const cmd = execForm(final.find((i) => i.op === "CMD"));
    expect(cmd.slice(0, 3)).toEqual(["node", "--import", "tsx"]);
    const script = cmd[3];
    expect(existsSync(join(ROOT, script))).toBe(true);
    // The script sits under a copied folder.
    expect(instructions.some((i) => i.op === "COPY" && i.stage === "app" && script.startsWith(i.args.split(/\s+/)[0]))).toBe(true);
    const builder = execForm(instructions.find((i) => i.stage === "engine-builder" && i.op === "ENTRYPOINT"));
    expect(existsSync(join(ROOT, builder[3]))).toBe(true);
  });
});

describe("compose file for one GPU host", () => {
  const file = join(ROOT, "deploy", "compose", "compose.yaml");
  const compose = parseYaml(readFileSync(file, "utf8")) as {
    services: Record<string, { image: string; build?: { context: string; target: string }; environment?: Record<string, string>; volumes?: string[]; expose?: string[]; depends_on?: Record<string, { condition: string }>; stop_grace_period?: string; user?: string; command?: string[] }>;
  };
  const s = compose.services;

  it("builds its images from this Dockerfile's stages", () => {
    for (const name of ["orchestrator", "engine-build"]) {
      const b = s[name].build!;
      expect(relative(ROOT, join(file, "..", b.context))).toBe("");
      expect(stages.has(b.target)).toBe(true);
    }
    expect(s.triton.image).toMatch(/^nvcr\.io\/nvidia\/tritonserver:\$\{TRITON_TAG[^}]*\}-py3$/);
  });

  it("shares the engine directory between Triton, the orchestrator and the engine build, and links them", () => {
    const mount = (svc: string) => s[svc].volumes!.find((v) => v.includes(":/engines"))!.split(":")[0];
    expect(mount("triton").startsWith("${ENGINE_DIR")).toBe(true);
    expect(mount("orchestrator").startsWith("${ENGINE_DIR")).toBe(true);
    expect(mount("engine-build").startsWith("${ENGINE_DIR")).toBe(true);
    expect(s.triton.command).toContain("--model-repository=/engines/repository");
    expect(s["engine-build"].command).toEqual(expect.arrayContaining(["--out", "/engines/repository"]));
    expect(s.orchestrator.environment!.MODEL_REPOSITORY).toBe("/engines/repository");
    expect(s.orchestrator.environment!.TRITON_URL).toBe("triton:8001");
    expect(s.triton.expose).toContain("8001");
    expect(s.orchestrator.depends_on!.triton.condition).toBe("service_healthy");
  });

  it("gives the orchestrator longer to stop than its drain grace period", () => {
    const grace = Number(/DRAIN_GRACE_MS:-(\d+)/.exec(s.orchestrator.environment!.DRAIN_GRACE_MS)![1]);
    expect(Number.parseInt(s.orchestrator.stop_grace_period!, 10) * 1000).toBeGreaterThan(grace);
    expect(s.orchestrator.user).not.toMatch(/^0/);
  });
});
