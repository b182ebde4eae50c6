// Every DiMOO task as the service sees it: validate (decode and check inputs, tokenize, fill defaults),
// prepare (VQ-encode inputs, build the sampler), preview, finish (VQ-decode, encode). The scheduler drives
// the samplers in between. Faithful to shared/reference/dimoo-model.md:
//   t2i            WxH output; prompts §1.4; guidance (1+s)c - s·u                    §3
//   edit/subject/control/dense/multiview
//                  input cropped with the 512 list; output = crop size; dual guidance    §4.1
//   style          content + style, both 512-list cropped; output = style crop size      §4.2
//   inpaint/outpaint
//                  input LANCZOS-resized to /16 (no crop); arbitrary mask → grid by area
//                  average > 0.5; t2i prompts and guidance; only masked cells count      §4.3
//   understand     1024-list crop, the single correct image block, LLaDA blocks          §5
import { InvalidArgument } from "../model/errors";
import {
  decodeImage,
  encodeImage,
  encodePreview,
  prepareImageToImageInput,
  prepareUnderstandingInput,
  resizeToMultipleOf16,
  type ImageFormat,
  type RgbImage,
} from "../model/image-codec";
import { answerRegionLength, extractImageCodes, gridForPixels, imageBlockLength, type Grid, type ImageCodes } from "../model/layout";
import { countRegenerate, decodeMask, maskToGrid } from "../model/mask-grid";
import { imageToImagePrompts, textToImagePrompts, understandingPrompt } from "../model/prompts";
import type { Tokenizer } from "../model/tokenizer";
import { IMAGE_OFFSET, MASK } from "../model/tokens";
import {
  advanceImageDenoising,
  imageDenoisingCodes,
  imageDenoisingDone,
  imageDenoisingInputs,
  type ImageDenoisingState,
} from "../sampling/image-denoising";
import { initImageToImage } from "../sampling/image-to-image";
import type { StepInputs, StepOutputs } from "../sampling/step-types";
import { initTextToImage } from "../sampling/text-to-image";
import { answerTokens, initUnderstand, understand, type UnderstandState } from "../sampling/understand";
import type { Limits } from "../service/config";
import type {
  CallContext,
  EncodedImage,
  GeneratePipeline,
  GenerateSpec,
  ImageTask,
  TextTask,
  UnderstandPipeline,
  UnderstandSpec,
} from "../service/pipelines";
import { validateGenerateParams, validateUnderstandParams, type GenerateParams, type UnderstandParams } from "../service/validate";
import type { GenerateRequest, UnderstandRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { invalidArgument } from "./errors";
import { vqDecodeImage, vqEncodeImage, type VqRunner } from "./vq";

export interface PipelineDeps {
  tokenizer: Tokenizer;
  vq: VqRunner;
  limits: Limits;
}

const MIME: Record<ImageFormat, string> = { png: "image/png", webp: "image/webp", jpeg: "image/jpeg" };

/** Re-throws the model layer's InvalidArgument as the orchestrator's (same field). */
async function asInvalid<T>(fn: () => Promise<T> | T): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof InvalidArgument) throw invalidArgument(e.field, e.message.replace(/^[^:]+: /, ""));
    throw e;
  }
}

interface GenerateDetail {
  params: GenerateParams;
  prompt: number[];
  uncondPrompt: number[];
  /** Prepared (cropped/resized) input images, planar RGB. */
  images: RgbImage[];
  /** Painting: 1 = regenerate, per output cell. */
  regenerate?: Uint8Array;
  grid: Grid;
}

/** The sampler of one image request, one step at a time, plus what previews need. */
export class DenoisingTask implements ImageTask {
  private last?: { positions: Int32Array; tokens: Int32Array };
  constructor(
    private state: ImageDenoisingState,
    readonly promptTokens: number,
  ) {}
  get totalSteps(): number {
    return this.state.totalSteps;
  }
  get maskedRemaining(): number {
    return this.state.masked.length;
  }
  get outputTokens(): number {
    return this.state.initialMasked;
  }
  get grid(): Grid {
    return this.state.grid;
  }
  engineInputs(): StepInputs {
    return imageDenoisingInputs(this.state);
  }
  advance(out: StepOutputs): void {
    const positions = this.state.masked;
    this.state = advanceImageDenoising(this.state, out);
    this.last = { positions, tokens: out.tokens };
  }
  isDone(): boolean {
    return imageDenoisingDone(this.state);
  }
  /** Final codes (h*w). */
  codes(): Int32Array {
    return imageDenoisingCodes(this.state);
  }
  /** Codes of the current prediction: committed cells, and the last sampled token where still masked. */
  predictedCodes(): Int32Array {
    const x = this.state.x.slice();
    if (this.last) {
      const { positions, tokens } = this.last;
      for (let i = 0; i < positions.length; i++) if (x[positions[i]] === MASK) x[positions[i]] = tokens[i] + IMAGE_OFFSET;
    }
    // Cells never sampled yet (before the first step) show code 0.
    for (let i = 0; i < x.length; i++) if (x[i] === MASK) x[i] = IMAGE_OFFSET;
    return extractImageCodes(x, this.state.codeStart, this.state.grid);
  }
}

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
    return understand.engineInputs(this.state);
  }
  advance(out: StepOutputs): void {
    this.state = understand.advance(this.state, out);
  }
  isDone(): boolean {
    return understand.isDone(this.state);
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

export function createGeneratePipeline(deps: PipelineDeps): GeneratePipeline {
  const { tokenizer, vq, limits } = deps;
  const detailOf = (spec: GenerateSpec) => spec.detail as GenerateDetail;

  return {
    async validate(req: GenerateRequest): Promise<GenerateSpec> {
      return asInvalid(async () => {
        const p = validateGenerateParams(req, limits);
        const userTokens = tokenizer.encode(p.prompt, { addSpecialTokens: false }).length;
        if (userTokens > limits.maxPromptTokens) throw invalidArgument("prompt", `${userTokens} tokens exceeds the limit of ${limits.maxPromptTokens}`);
        const paint = p.kind === "inpaint" || p.kind === "outpaint";
        const pair = p.kind === "t2i" || paint ? textToImagePrompts(p.prompt) : imageToImagePrompts(p.editType, p.prompt);
        const prompt = tokenizer.encode(pair.cond);
        const uncondPrompt = tokenizer.encode(pair.uncond);

        const decoded: RgbImage[] = [];
        for (let i = 0; i < req.images.length; i++) {
          decoded.push(await decodeImage(req.images[i], { field: `images[${i}]`, maxPixels: limits.maxInputPixels }));
        }
        let images: RgbImage[];
        let grid: Grid;
        let regenerate: Uint8Array | undefined;
        if (p.kind === "t2i") {
          images = [];
          grid = gridForPixels(p.height, p.width);
        } else if (paint) {
          const src = decoded[0];
          const resized = resizeToMultipleOf16(src, "images[0]");
          images = [resized];
          grid = gridForPixels(resized.height, resized.width);
          const mask = await decodeMask(req.mask, { field: "mask", width: src.width, height: src.height, maxPixels: limits.maxInputPixels });
          regenerate = maskToGrid(mask, grid);
          if (countRegenerate(regenerate) === 0) throw invalidArgument("mask", "selects no 16x16 cell to regenerate");
        } else {
          images = decoded.map((img) => prepareImageToImageInput(img));
          const last = images[images.length - 1];
          grid = gridForPixels(last.height, last.width);
        }
        const width = grid.w * 16;
        const height = grid.h * 16;
        const sizeField = p.kind === "t2i" ? "width" : "images[0]";
        if (width * height > limits.maxPixels) throw invalidArgument(sizeField, `output ${width}x${height} exceeds the pixel budget`);
        // The conditional row is the longest: prompt + input image blocks + answer region.
        const rowLength =
          prompt.length + images.reduce((n, img) => n + imageBlockLength(img.height / 16, img.width / 16), 0) * (paint ? 0 : 1) + answerRegionLength(grid.h, grid.w);
        if (rowLength > limits.maxSequenceTokens) {
          throw invalidArgument(sizeField, `${width}x${height} needs ${rowLength} tokens per row, more than the ${limits.maxSequenceTokens} the engine takes`);
        }
        const detail: GenerateDetail = { params: p, prompt, uncondPrompt, images, regenerate, grid };
        return {
          requestId: req.requestId,
          task: p.kind,
          width,
          height,
          steps: p.steps,
          seed: p.seed,
          mimeType: MIME[p.format],
          detail,
        };
      });
    },

    async prepare(spec: GenerateSpec, ctx: CallContext): Promise<ImageTask> {
      const d = detailOf(spec);
      const p = d.params;
      const encoded: ImageCodes[] = [];
      for (const img of d.images) encoded.push(await vqEncodeImage(vq, img, ctx));
      return asInvalid(() => {
        let state: ImageDenoisingState;
        if (p.kind === "t2i" || p.kind === "inpaint" || p.kind === "outpaint") {
          state = initTextToImage({
            prompt: d.prompt,
            uncondPrompt: d.uncondPrompt,
            grid: d.grid,
            known: d.regenerate ? { codes: encoded[0].codes, regenerate: d.regenerate } : undefined,
            cfgScale: p.guidanceScale,
            timesteps: p.steps,
            temperature: p.temperature,
            seed: p.seed,
          });
        } else {
          state = initImageToImage({
            prompt: d.prompt,
            uncondPrompt: d.uncondPrompt,
            images: encoded,
            grid: d.grid,
            cfgText: p.guidanceScale,
            cfgImage: p.imageGuidanceScale,
            timesteps: p.steps,
            temperature: p.temperature,
            seed: p.seed,
          });
        }
        return new DenoisingTask(state, d.prompt.length);
      });
    },

    preview(spec: GenerateSpec, task: ImageTask, ctx: CallContext): Promise<EncodedImage> {
      const t = task as DenoisingTask;
      // Snapshot now (synchronously): the task moves on while the preview is decoded.
      const codes = t.predictedCodes();
      const grid = t.grid;
      const p = detailOf(spec).params;
      return (async () => {
        const img = await vqDecodeImage(vq, codes, grid.h, grid.w, ctx);
        const bytes = await encodePreview(img, { maxSide: limits.previewMaxSide, format: p.format, quality: Math.min(p.quality, 75) });
        const scale = Math.min(1, limits.previewMaxSide / Math.max(img.width, img.height));
        return { bytes, mimeType: MIME[p.format], width: Math.max(1, Math.round(img.width * scale)), height: Math.max(1, Math.round(img.height * scale)) };
      })();
    },

    async finish(spec: GenerateSpec, task: ImageTask, ctx: CallContext): Promise<EncodedImage> {
      const t = task as DenoisingTask;
      const p = detailOf(spec).params;
      const img = await vqDecodeImage(vq, t.codes(), t.grid.h, t.grid.w, ctx);
      const bytes = await encodeImage(img, { format: p.format, quality: p.format === "png" ? undefined : p.quality });
      return { bytes, mimeType: MIME[p.format], width: img.width, height: img.height };
    },
  };
}

interface UnderstandDetail {
  params: UnderstandParams;
  prompt: number[];
  image: RgbImage;
}

export function createUnderstandPipeline(deps: PipelineDeps): UnderstandPipeline {
  const { tokenizer, vq, limits } = deps;
  return {
    async validate(req: UnderstandRequest): Promise<UnderstandSpec> {
      return asInvalid(async () => {
        const p = validateUnderstandParams(req, limits);
        const qTokens = tokenizer.encode(p.question, { addSpecialTokens: false }).length;
        if (qTokens > limits.maxPromptTokens) throw invalidArgument("question", `${qTokens} tokens exceeds the limit of ${limits.maxPromptTokens}`);
        const prompt = tokenizer.encode(understandingPrompt(p.question));
        const image = prepareUnderstandingInput(await decodeImage(req.images[0], { field: "images[0]", maxPixels: limits.maxInputPixels }));
        const rowLength = prompt.length + imageBlockLength(image.height / 16, image.width / 16) + p.maxTokens + 2;
        if (rowLength > limits.maxSequenceTokens) {
          throw invalidArgument("max_tokens", `the answer and image need ${rowLength} tokens, more than the ${limits.maxSequenceTokens} the engine takes`);
        }
        const detail: UnderstandDetail = { params: p, prompt, image };
        return { requestId: req.requestId, seed: p.seed, maxTokens: p.maxTokens, detail };
      });
    },
    async prepare(spec: UnderstandSpec, ctx: CallContext): Promise<TextTask> {
      const d = spec.detail as UnderstandDetail;
      const codes = await vqEncodeImage(vq, d.image, ctx);
      return asInvalid(() => {
        const state = initUnderstand({
          prompt: d.prompt,
          images: [codes],
          genLength: d.params.maxTokens,
          blockLength: d.params.blockLength,
          steps: d.params.steps,
          cfgScale: d.params.guidanceScale,
          temperature: d.params.temperature,
          seed: d.params.seed,
        });
        return new UnderstandingTask(state, tokenizer, d.prompt.length);
      });
    },
  };
}
