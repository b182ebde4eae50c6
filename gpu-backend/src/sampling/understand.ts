// Image understanding: LLaDA's semi-autoregressive block diffusion (docs/model.md §5.2). The answer region
// is split into blocks; each block gets steps/blocks steps, and each step commits the top-k most confident
// sampled tokens among the masked positions up to the end of the current block (k from
// get_num_transfer_tokens). Committed tokens are final.
//
// Beyond the reference (docs/model.md §5.4, inferred optimisation): we stop after a block that contains </answer>, PAD or
// EOS, since training put only pads after </answer>; the answer is cut at the first such token. Steps that
// commit nothing (k = 0, when a block has fewer masks than steps) are skipped: they cannot change anything.
// CFG (cfg > 0): the uncond row is x with every position that was not MASK at the start set to MASK.

import { InvalidArgument } from "../model/errors";
import { understandingLayout, type ImageCodes } from "../model/layout";
import { EOA, EOS, MASK, PAD, VOCAB_SIZE } from "../model/tokens";
import { understandingGuidance } from "./guidance";
import { checkOutputs, checkSamplingParams } from "./image-denoising";
import { numTransferTokens } from "./mask-schedule";
import { uniforms, type Seed } from "./rng";
import type { StepInputs, StepOutputs } from "../engine/step";

/** Tokens that end an answer. */
export const ANSWER_STOP_TOKENS: readonly number[] = [EOA, PAD, EOS];

export interface UnderstandParams {
  /** Tokenized understandingPrompt(question). */
  prompt: ArrayLike<number>;
  images: readonly ImageCodes[];
  /** Reference CLI default 1024. */
  genLength: number;
  /** Reference CLI default 256. */
  blockLength: number;
  /** Total steps over all blocks, reference CLI default 128; must be a multiple of the block count. */
  steps: number;
  /** Reference default 0. */
  cfgScale: number;
  /** Reference default 0 (argmax). */
  temperature: number;
  seed: Seed;
}

export interface UnderstandState {
  readonly x: Int32Array;
  readonly codeStart: number;
  readonly genLength: number;
  readonly blockLength: number;
  readonly blocks: number;
  readonly stepsPerBlock: number;
  /** Upper bound on engine calls (steps); early stop and skipped empty steps make the real count lower. */
  readonly maxSteps: number;
  readonly weights: Float32Array;
  readonly temperature: number;
  readonly seed: Seed;
  /** Current block and step within it. */
  readonly block: number;
  readonly blockStep: number;
  /** Commits per step of the current block. */
  readonly transfer: readonly number[];
  /** Blocks finished so far. */
  readonly finishedBlocks: number;
  readonly done: boolean;
}

function blockEnd(s: UnderstandState): number {
  return s.codeStart + (s.block + 1) * s.blockLength;
}

function startBlock(s: UnderstandState, block: number): UnderstandState {
  const start = s.codeStart + block * s.blockLength;
  let n = 0;
  for (let p = start; p < start + s.blockLength; p++) if (s.x[p] === MASK) n++;
  return { ...s, block, blockStep: 0, transfer: numTransferTokens(n, s.stepsPerBlock) };
}

function blockHasStop(s: UnderstandState, block: number): boolean {
  const start = s.codeStart + block * s.blockLength;
  for (let p = start; p < start + s.blockLength; p++) if (ANSWER_STOP_TOKENS.includes(s.x[p])) return true;
  return false;
}

/** Moves past steps that commit nothing and past finished blocks; decides when the run is over. */
function settle(s: UnderstandState): UnderstandState {
  let cur = s;
  for (;;) {
    if (cur.done) return cur;
    if (cur.blockStep < cur.stepsPerBlock && cur.transfer[cur.blockStep] > 0) return cur;
    if (cur.blockStep < cur.stepsPerBlock) {
      cur = { ...cur, blockStep: cur.blockStep + 1 };
      continue;
    }
    const finished = cur.block + 1;
    if (blockHasStop(cur, cur.block) || finished === cur.blocks) return { ...cur, finishedBlocks: finished, done: true };
    cur = startBlock({ ...cur, finishedBlocks: finished }, cur.block + 1);
  }
}

export function initUnderstand(p: UnderstandParams): UnderstandState {
  checkSamplingParams(p.steps, p.temperature);
  if (!Number.isInteger(p.genLength) || p.genLength < 1) throw new InvalidArgument("max_tokens", `must be an integer >= 1, got ${p.genLength}`);
  if (!Number.isInteger(p.blockLength) || p.blockLength < 1 || p.genLength % p.blockLength !== 0) {
    throw new InvalidArgument("block_length", `must divide the answer length ${p.genLength}, got ${p.blockLength}`);
  }
  const blocks = p.genLength / p.blockLength;
  if (p.steps % blocks !== 0) throw new InvalidArgument("steps", `must be a multiple of the block count ${blocks}, got ${p.steps}`);
  const layout = understandingLayout(p.prompt, p.images, p.genLength);
  let masks = 0;
  for (const t of layout.row) if (t === MASK) masks++;
  if (masks !== p.genLength) throw new RangeError("MASK tokens outside the answer region");
  const g = understandingGuidance(p.cfgScale);
  const s0: UnderstandState = {
    x: layout.row,
    codeStart: layout.codeStart,
    genLength: p.genLength,
    blockLength: p.blockLength,
    blocks,
    stepsPerBlock: p.steps / blocks,
    maxSteps: p.steps,
    weights: g.weights,
    temperature: p.temperature,
    seed: p.seed,
    block: 0,
    blockStep: 0,
    transfer: [],
    finishedBlocks: 0,
    done: false,
  };
  return settle(startBlock(s0, 0));
}

export function understandDone(s: UnderstandState): boolean {
  return s.done;
}

/** Global step index (counter of the "sample" stream), also the progress. */
export function understandStep(s: UnderstandState): number {
  return s.block * s.stepsPerBlock + s.blockStep;
}

/** Masked positions the current step chooses from: everything still MASK up to the current block's end. */
function candidates(s: UnderstandState): Int32Array {
  const out: number[] = [];
  const end = blockEnd(s);
  for (let p = s.codeStart; p < end; p++) if (s.x[p] === MASK) out.push(p);
  return Int32Array.from(out);
}

export function understandInputs(s: UnderstandState): StepInputs {
  if (s.done) throw new Error("engineInputs called on a finished understanding run");
  const targets = candidates(s);
  const branches = [s.x.slice()];
  if (s.weights.length > 1) {
    const un = new Int32Array(s.x.length).fill(MASK);
    un.set(s.x.subarray(s.codeStart, s.codeStart + s.genLength), s.codeStart);
    branches.push(un);
  }
  return {
    mode: "text",
    branches,
    targets: branches.map(() => targets.slice()),
    weights: s.weights.slice(),
    uniforms: uniforms(s.seed, "sample", understandStep(s), targets.length),
    temperature: s.temperature,
  };
}

export function advanceUnderstand(s: UnderstandState, out: StepOutputs): UnderstandState {
  if (s.done) throw new Error("advance called on a finished understanding run");
  const targets = candidates(s);
  checkOutputs(out, targets.length, VOCAB_SIZE);
  const k = Math.min(s.transfer[s.blockStep], targets.length);
  const order = Array.from({ length: targets.length }, (_, i) => i);
  // NaN confidence ranks last; equal confidences go to the earlier position (torch.topk is unspecified).
  const conf = (i: number) => (Number.isNaN(out.confidence[i]) ? -Infinity : out.confidence[i]);
  order.sort((a, b) => conf(b) - conf(a) || targets[a] - targets[b]);
  const x = s.x.slice();
  for (let j = 0; j < k; j++) x[targets[order[j]]] = out.tokens[order[j]];
  return settle({ ...s, x, blockStep: s.blockStep + 1 });
}

/**
 * Answer token ids of the finished blocks, cut before the first stop token. Grows block by block, so a
 * caller can stream text by decoding what was added since the last call.
 */
export function answerTokens(s: UnderstandState): Int32Array {
  const end = s.codeStart + s.finishedBlocks * s.blockLength;
  let stop = end;
  for (let p = s.codeStart; p < end; p++) {
    if (ANSWER_STOP_TOKENS.includes(s.x[p])) {
      stop = p;
      break;
    }
  }
  return s.x.slice(s.codeStart, stop);
}
