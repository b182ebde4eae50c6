// Image generation, every family: validate (shared checks, then the family's inputs), prepare (VQ-encode
// the inputs, the family's sampler), preview and finish (VQ-decode, encode). The step batcher drives the
// sampler in between. The families (text-to-image.ts, image-to-image.ts, painting.ts) hold what differs;
// params.ts checks the request fields.
import { randomBytes } from "node:crypto";
import type { GenerateRequest } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { vqDecodeImage, vqEncodeImage } from "../engine/vq";
import { invalidArgument } from "../errors";
import { inlineImageWork } from "../image-work/image-work";
import type { PreparedImage } from "../image-work/jobs";
import { encodeImage, encodePreview, type ImageFormat } from "../model/image-codec";
import { answerRegionLength, type ImageCodes } from "../model/layout";
import { initMlCache } from "../sampling/ml-cache";
import { DenoisingTask } from "./denoising-task";
import type { ImageSpec } from "./image-family";
import { asInvalid } from "./invalid";
import { familyOf, validateGenerateParams } from "./params";
import type { EncodedImage, GeneratePipeline, TaskDeps } from "./task";

/** A fresh engine sequence id: random 63 bits, so live sequences never share one. */
function newSequenceId(): bigint {
  return randomBytes(8).readBigUInt64BE() >> 1n || 1n;
}

const MIME: Record<ImageFormat, string> = { png: "image/png", webp: "image/webp", jpeg: "image/jpeg" };

export function createGeneratePipeline(deps: TaskDeps): GeneratePipeline<ImageSpec, DenoisingTask> {
  const { tokenizer, vq, limits } = deps;
  const work = deps.images ?? inlineImageWork;

  return {
    async validate(req: GenerateRequest): Promise<ImageSpec> {
      return asInvalid(async () => {
        const params = validateGenerateParams(req, limits);
        const userTokens = tokenizer.encode(params.prompt, { addSpecialTokens: false }).length;
        if (userTokens > limits.maxPromptTokens) throw invalidArgument("prompt", `${userTokens} tokens exceeds the limit of ${limits.maxPromptTokens}`);
        const family = familyOf(params.kind);
        const pair = family.prompts(params);
        const prompt = tokenizer.encode(pair.cond);
        const uncondPrompt = tokenizer.encode(pair.uncond);

        // Decode and resampling run as image work (off the event loop in the orchestrator), one image at a time.
        const prepared: PreparedImage[] = [];
        for (let i = 0; i < req.images.length; i++) {
          const keepOriginal = params.needsMask && !params.rawDecode;
          prepared.push(await work.prepare(req.images[i], { field: `images[${i}]`, maxPixels: limits.maxInputPixels, prep: family.inputPrep, keepOriginal }));
        }
        const inputs = await family.inputs(prepared, req, params, limits, work);
        const { grid } = inputs;
        const width = grid.w * 16;
        const height = grid.h * 16;
        if (width * height > limits.maxPixels) throw invalidArgument(family.sizeField, `output ${width}x${height} exceeds the pixel budget`);
        // The conditional row is the longest: prompt + input image blocks + answer region.
        const rowLength = prompt.length + family.inputTokens(inputs.images) + answerRegionLength(grid.h, grid.w);
        if (rowLength > limits.maxSequenceTokens) {
          throw invalidArgument(family.sizeField, `${width}x${height} needs ${rowLength} tokens per row, more than the ${limits.maxSequenceTokens} the engine takes`);
        }
        if (params.mlCache && rowLength > limits.maxCachedSequenceTokens) {
          throw invalidArgument("ml_cache", `${width}x${height} needs ${rowLength} tokens per row, more than the ${limits.maxCachedSequenceTokens} the cached model takes`);
        }
        return {
          requestId: req.requestId,
          task: params.kind,
          // A blended painting comes back at the caller's size; everything else at the model's.
          width: inputs.blend?.original.width ?? width,
          height: inputs.blend?.original.height ?? height,
          steps: params.steps,
          seed: params.seed,
          mimeType: MIME[params.format],
          family,
          params,
          prompt,
          uncondPrompt,
          ...inputs,
        };
      });
    },

    async prepare(spec, ctx) {
      const encoded: ImageCodes[] = [];
      for (const img of spec.images) encoded.push(await vqEncodeImage(vq, img, ctx));
      return asInvalid(() => {
        const state = spec.family.init(spec, encoded);
        // Without the stateful model the request runs uncached (its usage reports 0 cached steps).
        const p = spec.params.mlCache;
        const cache = p && deps.mlCache?.() ? { sequenceId: newSequenceId(), run: initMlCache(spec.params.steps, p) } : undefined;
        return new DenoisingTask(state, spec.prompt.length, cache);
      });
    },

    preview(spec, task, ctx): Promise<EncodedImage> {
      // Snapshot now (synchronously): the task moves on while the preview is decoded.
      const codes = task.predictedCodes();
      const grid = task.grid;
      const p = spec.params;
      return (async () => {
        const img = await vqDecodeImage(vq, codes, grid.h, grid.w, ctx);
        const bytes = await encodePreview(img, { maxSide: limits.previewMaxSide, format: p.format, quality: Math.min(p.quality, 75) });
        const scale = Math.min(1, limits.previewMaxSide / Math.max(img.width, img.height));
        return { bytes, mimeType: MIME[p.format], width: Math.max(1, Math.round(img.width * scale)), height: Math.max(1, Math.round(img.height * scale)) };
      })();
    },

    async finish(spec, task, ctx): Promise<EncodedImage> {
      const p = spec.params;
      const decoded = await vqDecodeImage(vq, task.codes(), task.grid.h, task.grid.w, ctx);
      // Painting gives the caller's image back with the generated pixels blended in (unless raw_decode).
      const img = spec.blend ? await work.blend(spec.blend.original, decoded, spec.blend.mask) : decoded;
      const bytes = await encodeImage(img, { format: p.format, quality: p.format === "png" ? undefined : p.quality });
      return { bytes, mimeType: MIME[p.format], width: img.width, height: img.height };
    },
  };
}
