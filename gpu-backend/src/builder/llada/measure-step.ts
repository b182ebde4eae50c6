// Measures one text-to-image step at the 1024x1024 layout through the transformer contract with the dev
// model: the bytes that go in and come out (the tensors a Triton request/response carries) against the
// logits a logits-returning engine would have to ship, and the CPU time of the dev model.
//
//   npx tsx gpu-backend/src/builder/llada/measure-step.ts [model.onnx]
//
// Without a path the dev transformer is built in memory (devTransformerConfig, seed 1).

import * as ort from "onnxruntime-node";
import { BOA, BOI, CODEBOOK_SIZE, EOA, EOI, MASK, NEWLINE, UNCONDITION, VOCAB_SIZE } from "../../model/tokens";
import { callTensors, emptyMode, type TransformerCall } from "./call";
import { devTransformerConfig } from "./config";
import { buildTransformerGraph } from "./graph";
import { memoryResolver } from "./model-file";
import { seededLladaWeights } from "./weights";

export interface StepLayout {
  call: TransformerCall;
  promptLen: number;
  uncondPromptLen: number;
}

/**
 * A t2i step at h x w codes (64 x 64 for 1024x1024): cond = P + [BOA, BOI] + rows(MASK + NEWLINE) +
 * [EOI, EOA], uncond = Pu + the same answer region; all h*w image cells are targets (step 0), K = 2 with
 * weights [1+s, -s].
 */
export function t2iStepLayout(h = 64, w = 64, promptLen = 100, uncondPromptLen = 30, cfgScale = 4): StepLayout {
  const answer: number[] = [BOA, BOI];
  const cells: number[] = [];
  for (let r = 0; r < h; r++) {
    for (let c = 0; c < w; c++) {
      cells.push(answer.length);
      answer.push(MASK);
    }
    answer.push(NEWLINE);
  }
  answer.push(EOI, EOA);
  const prompt = Array.from({ length: promptLen }, (_, i) => (i * 7919 + 13) % 126000);
  const uncond = Array.from({ length: uncondPromptLen }, (_, i) => (i === uncondPromptLen - 1 ? UNCONDITION : (i * 104729 + 7) % 126000));
  const cond = [...prompt, ...answer];
  const un = [...uncond, ...answer];
  const L = cond.length;
  const inputIds = [...cond, ...un, ...new Array(L - un.length).fill(0)];
  const M = h * w;
  const targets = [...cells.map((p) => promptLen + p), ...cells.map((p) => L + uncondPromptLen + p)];
  const uniforms = Array.from({ length: M }, (_, i) => ((i * 0.6180339887) % 1) * 0.999);
  return {
    call: {
      R: 2,
      L,
      inputIds,
      seqLens: [cond.length, un.length],
      image: { G: 1, K: 2, M, targets, weights: [1 + cfgScale, -cfgScale], uniforms, temperature: [1] },
      text: emptyMode(),
    },
    promptLen,
    uncondPromptLen,
  };
}

export interface StepMeasurement {
  L: number;
  M: number;
  bytesIn: number;
  bytesOut: number;
  /** bf16 logits of the codebook slice at the M targets of both branches (what the orchestrator would need). */
  slicedLogitBytes: number;
  /** bf16 full-vocabulary logits of both rows (what `model(x).logits` returns). */
  fullLogitBytes: number;
  seconds: number[];
}

export async function measureT2iStep(session: ort.InferenceSession, layout = t2iStepLayout(), runs = 4): Promise<StepMeasurement> {
  const tensors = callTensors(layout.call);
  const feeds = Object.fromEntries(Object.entries(tensors).map(([k, t]) => [k, new ort.Tensor(t.type, t.data, t.dims)]));
  const bytesIn = Object.values(tensors).reduce((a, t) => a + t.data.byteLength, 0);
  let bytesOut = 0;
  const seconds: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    const out = await session.run(feeds);
    seconds.push((performance.now() - t0) / 1000);
    bytesOut = Object.values(out).reduce((a, t) => a + (t.data as ArrayBufferView).byteLength, 0);
  }
  const { R, L } = layout.call;
  const M = layout.call.image.M;
  return { L, M, bytesIn, bytesOut, slicedLogitBytes: 2 * M * CODEBOOK_SIZE * 2, fullLogitBytes: R * L * VOCAB_SIZE * 2, seconds };
}

async function main(): Promise<void> {
  const path = process.argv[2];
  let session: ort.InferenceSession;
  if (path) session = await ort.InferenceSession.create(path);
  else {
    const cfg = devTransformerConfig();
    session = await ort.InferenceSession.create(buildTransformerGraph(cfg, memoryResolver(seededLladaWeights(cfg)), { weightDtype: "FLOAT" }).toBytes());
  }
  const m = await measureT2iStep(session);
  const kb = (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const mb = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  console.log(`1024x1024 t2i step, R=2 rows of L=${m.L} ids, G=1, K=2, M=${m.M} targets`);
  console.log(`  sent ${m.bytesIn} B (${kb(m.bytesIn)}), received ${m.bytesOut} B (${kb(m.bytesOut)})`);
  console.log(`  vs sliced bf16 logits ${mb(m.slicedLogitBytes)} (${(m.slicedLogitBytes / m.bytesOut).toFixed(0)}x), full-vocab logits ${mb(m.fullLogitBytes)}`);
  console.log(`  dev model CPU time per step (onnxruntime warms its memory arena in the first runs): ${m.seconds.map((s) => s.toFixed(2)).join(", ")} s`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
