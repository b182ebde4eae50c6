// Image understanding (docs/model.md §5): the image cropped with the 1024 crop list, the single correct
// image block, LLaDA's semi-autoregressive block sampler; the answer streams block by block.
import type { UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { StepInputs, StepOutputs } from "../engine/step";
import { vqEncodeImage } from "../engine/vq";
import { invalidArgument } from "../errors";
import { inlineImageWork } from "../image-work/image-work";
import type { RgbImage } from "../model/image-codec";
import { imageBlockLength } from "../model/layout";
import { understandingPrompt } from "../model/prompts";
import type { Tokenizer } from "../model/tokenizer";
import { advanceUnderstand, answerTokens, initUnderstand, understandDone, understandInputs, type UnderstandState } from "../sampling/understand";
import { asInvalid } from "./invalid";
import type { Limits } from "./limits";
import { checkImageBytes, checkTextLength, finiteIn, randomSeed } from "./params";
import type { TaskDeps, TextTask, UnderstandPipeline, UnderstandSpec } from "./task";

/** Reference CLI defaults, capped by the host's answer limit. */
const DEFAULT_ANSWER_TOKENS = 256;
const DEFAULT_BLOCK_LENGTH = 32;

/** An understanding request's parameters, checked, with defaults filled in. */
export interface QuestionParams {
  question: string;
  maxTokens: number;
  blockLength: number;
  steps: number;
  temperature: number;
  guidanceScale: number;
  seed: bigint;
}

export function validateUnderstandParams(req: UnderstandRequest, limits: Limits): QuestionParams {
  if (req.question.trim().length === 0) throw invalidArgument("question", "question must not be empty");
  checkTextLength("question", req.question, limits);
  if (req.images.length !== 1) throw invalidArgument(req.images.length === 0 ? "images[0]" : "images", "understanding takes exactly one image");
  checkImageBytes(req.images, limits);
  const maxTokens = req.maxTokens || Math.min(DEFAULT_ANSWER_TOKENS, limits.maxAnswerTokens);
  if (maxTokens < 1 || maxTokens > limits.maxAnswerTokens) throw invalidArgument("max_tokens", `must be between 1 and ${limits.maxAnswerTokens}`);
  const blockLength = req.blockLength || Math.min(DEFAULT_BLOCK_LENGTH, maxTokens);
  if (blockLength < 1 || maxTokens % blockLength !== 0) throw invalidArgument("block_length", `must divide max_tokens (${maxTokens})`);
  if (blockLength > limits.maxBlockLength) throw invalidArgument("block_length", `must be at most ${limits.maxBlockLength}`);
  const blocks = maxTokens / blockLength;
  const steps = req.steps || maxTokens;
  if (steps % blocks !== 0) throw invalidArgument("steps", `must be a multiple of the block count (${blocks})`);
  if (steps > Math.max(limits.maxSteps, limits.maxAnswerTokens)) throw invalidArgument("steps", "too many steps");
  const temperature = finiteIn("temperature", req.temperature, 0, 10, 0);
  const guidanceScale = finiteIn("guidance_scale", req.guidanceScale, 0, 50, 0);
  return { question: req.question, maxTokens, blockLength, steps, temperature, guidanceScale, seed: req.seed ?? randomSeed() };
}

/** A validated understanding request. */
export interface QuestionSpec extends UnderstandSpec {
  params: QuestionParams;
  prompt: number[];
  image: RgbImage;
}

/** A running understanding request: the block sampler's state and what has been streamed of the answer. */
export class UnderstandingTask implements TextTask {
  private sent = "";
  constructor(
    private state: UnderstandState,
    private readonly tokenizer: Tokenizer,
    readonly promptTokens: number,
  ) {}
  get totalSteps(): number {
    return this.state.blocks * this.state.stepsPerBlock;
  }
  get outputTokens(): number {
    return answerTokens(this.state).length;
  }
  engineInputs(): StepInputs {
    return understandInputs(this.state);
  }
  advance(out: StepOutputs): void {
    this.state = advanceUnderstand(this.state, out);
  }
  isDone(): boolean {
    return understandDone(this.state);
  }
  text(): string {
    return this.tokenizer.decode(answerTokens(this.state), { skipSpecialTokens: true });
  }
  takeDelta(): string {
    const full = this.text();
    if (full.length <= this.sent.length) return "";
    // Decoding more tokens may re-join bytes at the boundary; only ever send what extends the sent text.
    if (!full.startsWith(this.sent)) return "";
    const delta = full.slice(this.sent.length);
    this.sent = full;
    return delta;
  }
  finishReason(): "stop" | "length" {
    const s = this.state;
    return answerTokens(s).length < s.finishedBlocks * s.blockLength ? "stop" : "length";
  }
}

export function createUnderstandPipeline(deps: TaskDeps): UnderstandPipeline<QuestionSpec, UnderstandingTask> {
  const { tokenizer, vq, limits } = deps;
  const work = deps.images ?? inlineImageWork;
  return {
    async validate(req: UnderstandRequest): Promise<QuestionSpec> {
      return asInvalid(async () => {
        const params = validateUnderstandParams(req, limits);
        const qTokens = tokenizer.encode(params.question, { addSpecialTokens: false }).length;
        if (qTokens > limits.maxPromptTokens) throw invalidArgument("question", `${qTokens} tokens exceeds the limit of ${limits.maxPromptTokens}`);
        const prompt = tokenizer.encode(understandingPrompt(params.question));
        const { image } = await work.prepare(req.images[0], { field: "images[0]", maxPixels: limits.maxInputPixels, prep: "crop1024" });
        const rowLength = prompt.length + imageBlockLength(image.height / 16, image.width / 16) + params.maxTokens + 2;
        if (rowLength > limits.maxSequenceTokens) {
          throw invalidArgument("max_tokens", `the answer and image need ${rowLength} tokens, more than the ${limits.maxSequenceTokens} the engine takes`);
        }
        return { requestId: req.requestId, seed: params.seed, maxTokens: params.maxTokens, params, prompt, image };
      });
    },
    async prepare(spec, ctx) {
      const codes = await vqEncodeImage(vq, spec.image, ctx);
      return asInvalid(() => {
        const state = initUnderstand({
          prompt: spec.prompt,
          images: [codes],
          genLength: spec.params.maxTokens,
          blockLength: spec.params.blockLength,
          steps: spec.params.steps,
          cfgScale: spec.params.guidanceScale,
          temperature: spec.params.temperature,
          seed: spec.params.seed,
        });
        return new UnderstandingTask(state, tokenizer, spec.prompt.length);
      });
    },
  };
}
