// The layout's rules, checked on the source: in gpu-backend/src every import runs from a higher layer to
// the same or a lower one (docs/architecture.md), and edge/src has no import circle, type-only ones included.
import { readFileSync, readdirSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";

/** Lower number = lower layer. Top-level folders (and files) of gpu-backend/src. */
const LAYERS: Record<string, number> = {
  lib: 0,
  "errors.ts": 0,
  model: 1,
  triton: 1,
  engine: 2,
  embedded: 2,
  "image-work": 2,
  builder: 3,
  sampling: 3,
  batcher: 4,
  tasks: 5,
  service: 6,
  cli: 7,
};

interface Edge {
  from: string;
  to: string;
}

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (/\.(ts|mjs)$/.test(name) && !name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

function resolveModule(from: string, spec: string): string {
  const base = resolve(dirname(from), spec);
  for (const cand of [base, `${base}.ts`, join(base, "index.ts")]) {
    try {
      if (statSync(cand).isFile()) return cand;
    } catch {
      // try the next form
    }
  }
  return base;
}

/** Relative imports and re-exports of every source file under `root`. */
function importGraph(root: string): Edge[] {
  const edges: Edge[] = [];
  for (const file of sources(root)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+["'](\.[^"']+)["']/gm)) edges.push({ from: file, to: resolveModule(file, m[1]) });
    for (const m of text.matchAll(/^\s*import\s+["'](\.[^"']+)["']/gm)) edges.push({ from: file, to: resolveModule(file, m[1]) });
  }
  return edges;
}

describe("gpu-backend layers", () => {
  const root = resolve("gpu-backend/src");
  const layerOf = (file: string) => LAYERS[relative(root, file).split("/")[0]];

  it("every top-level folder has a layer", () => {
    for (const name of readdirSync(root)) expect(LAYERS[name], `${name} has no layer in docs/architecture.md`).toBeDefined();
  });

  it("no import runs from a lower layer to a higher one", () => {
    const upward = importGraph(root)
      .filter((e) => e.to.startsWith(root) && layerOf(e.to) > layerOf(e.from))
      .map((e) => `${relative(root, e.from)} -> ${relative(root, e.to)}`);
    expect(upward).toEqual([]);
  });
});

describe("edge modules", () => {
  it("form no import circle", () => {
    const root = resolve("edge/src");
    const next = new Map<string, string[]>();
    for (const e of importGraph(root)) {
      if (!e.to.startsWith(root)) continue;
      next.set(e.from, [...(next.get(e.from) ?? []), e.to]);
    }
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const path: string[] = [];
    const visit = (f: string) => {
      state.set(f, "open");
      path.push(f);
      for (const t of next.get(f) ?? []) {
        if (state.get(t) === "open") cycles.push(path.slice(path.indexOf(t)).concat(t).map((p) => relative(root, p)).join(" -> "));
        else if (!state.has(t)) visit(t);
      }
      path.pop();
      state.set(f, "done");
    };
    for (const f of next.keys()) if (!state.has(f)) visit(f);
    expect(cycles).toEqual([]);
  });
});
