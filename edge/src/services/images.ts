// Image generation of every kind through the orchestrator pool: n outputs fan out as n Generate calls with
// seeds seed, seed+1, ...; progress and preview events are relayed to the caller; the result carries the
// billing units actually consumed (megapixels the model generated and read x steps run). Used by the sync routes and by Job objects.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { Task, ImageFormat, type GenerateRequestSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { OrchestratorPool } from "../backend/pool";
import { ApiError } from "../errors";
import { imageUnitsMilli } from "../metering";
import { LIMITS, TTL } from "../config";
import type { Tenant } from "../principal";

export type OutputFormat = "png" | "webp" | "jpeg";
export type PublicTask = "edit" | "subject" | "control" | "dense" | "style" | "multiview" | "inpaint" | "outpaint";

export const TASKS: Record<PublicTask | "text_to_image", Task> = {
  text_to_image: Task.TEXT_TO_IMAGE,
  edit: Task.EDIT,
  subject: Task.SUBJECT,
  control: Task.CONTROL,
  dense: Task.DENSE,
  style: Task.STYLE,
  multiview: Task.MULTIVIEW,
  inpaint: Task.INPAINT,
  outpaint: Task.OUTPAINT,
};

const FORMATS: Record<OutputFormat, ImageFormat> = { png: ImageFormat.PNG, webp: ImageFormat.WEBP, jpeg: ImageFormat.JPEG };

export interface ImageSpec {
  kind: "image_generation" | "image_edit";
  task: PublicTask | "text_to_image";
  prompt: string;
  /** output size: requested (text-to-image), or the size the orchestrator makes of the inputs (lib/output-size.ts) */
  width: number;
  height: number;
  /** pixels of the input images as the model reads them at every step (lib/output-size.ts); 0 for text-to-image */
  inputPixels: number;
  steps: number;
  n: number;
  seed: number;
  outputFormat: OutputFormat;
  outputQuality?: number;
  partialImages: number;
  guidanceScale?: number;
  imageGuidanceScale?: number;
  temperature?: number;
  /** Who pays, for the orchestrator's fair share (services/specs.ts). */
  tenant?: Tenant;
  /** Present when the request runs with the Max-Logit cache; unset parameters take the orchestrator's defaults. */
  mlCache?: { cacheRatio?: number; warmupRatio?: number; refreshInterval?: number };
  editType?: string;
  /** Inpaint/outpaint: the raw decode instead of the blend into the caller's image. */
  rawDecode?: boolean;
  images: Uint8Array[];
  mask?: Uint8Array;
}

export type ImageEvent =
  | { type: "accepted"; index: number; seed: number; queuePosition: number }
  | { type: "progress"; index: number; step: number; steps: number; maskedRemaining: number }
  | { type: "partial_image"; index: number; partialIndex: number; bytes: Uint8Array; width: number; height: number };

export interface GeneratedImage {
  index: number;
  bytes: Uint8Array;
  mime: string;
  width: number;
  height: number;
  seed: number;
  steps: number;
  promptTokens: number;
  outputTokens: number;
}

export interface ImageRunResult {
  images: GeneratedImage[];
  unitsMilli: number;
  steps: number;
}

/**
 * The steps each output image has run so far, from its progress events: the usage of a stream the client
 * cancelled after a preview reached it (the partial-work rule in docs/edge.md).
 */
export class ImageProgress {
  private readonly steps = new Map<number, number>();

  constructor(private readonly spec: Pick<ImageSpec, "width" | "height" | "inputPixels">) {}

  note(e: ImageEvent): void {
    if (e.type === "progress") this.steps.set(e.index, Math.max(e.step, this.steps.get(e.index) ?? 0));
  }

  usage(): { milli: number; images: number; steps: number } {
    const steps = [...this.steps.values()];
    return {
      milli: steps.reduce((s, n) => s + imageUnitsMilli(this.spec.width, this.spec.height, n, 1, this.spec.inputPixels), 0),
      images: steps.length,
      steps: Math.max(0, ...steps),
    };
  }
}

/** Units reserved before the call: (requested size + input images) x requested steps x n. */
export const estimateImageMilli = (s: Pick<ImageSpec, "width" | "height" | "steps" | "n" | "inputPixels">): number => imageUnitsMilli(s.width, s.height, s.steps, s.n, s.inputPixels);

/** Image `index`'s request id: the request's with a `.index` suffix when it fans out, within the orchestrator's length limit. */
function imageRequestId(requestId: string, index: number, n: number): string {
  if (n <= 1) return requestId;
  const suffix = `.${index}`;
  return `${requestId.slice(0, LIMITS.requestIdChars - suffix.length)}${suffix}`;
}

export function generateRequest(spec: ImageSpec, index: number, requestId: string): MessageInitShape<typeof GenerateRequestSchema> {
  const steps = spec.steps;
  const previewEvery = spec.partialImages > 0 ? Math.max(1, Math.floor(steps / (spec.partialImages + 1))) : 0;
  return {
    requestId: imageRequestId(requestId, index, spec.n),
    task: TASKS[spec.task],
    prompt: spec.prompt,
    width: spec.task === "text_to_image" ? spec.width : 0,
    height: spec.task === "text_to_image" ? spec.height : 0,
    steps,
    guidanceScale: spec.guidanceScale,
    imageGuidanceScale: spec.imageGuidanceScale,
    temperature: spec.temperature,
    mlCache: spec.mlCache && { enabled: true, ...spec.mlCache },
    tenant: spec.tenant,
    seed: BigInt(spec.seed + index),
    images: spec.images,
    mask: spec.mask ?? new Uint8Array(),
    editType: spec.editType ?? "",
    rawDecode: spec.rawDecode ?? false,
    outputFormat: FORMATS[spec.outputFormat],
    outputQuality: spec.outputQuality ?? 0,
    previewEvery,
    deadlineMs: TTL.syncDeadlineMs,
  };
}

export async function runImages(
  pool: OrchestratorPool,
  spec: ImageSpec,
  opts: { requestId: string; signal?: AbortSignal; onEvent?: (e: ImageEvent) => void | Promise<void> },
): Promise<ImageRunResult> {
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(opts.signal?.reason);
  opts.signal?.addEventListener("abort", onOuterAbort);
  if (opts.signal?.aborted) inner.abort(opts.signal.reason);

  const one = async (index: number): Promise<GeneratedImage> => {
    let partials = 0;
    for await (const ev of pool.generate(generateRequest(spec, index, opts.requestId), { signal: inner.signal })) {
      const e = ev.event;
      if (e.case === "accepted") {
        await opts.onEvent?.({ type: "accepted", index, seed: Number(e.value.seed), queuePosition: e.value.queuePosition });
      } else if (e.case === "progress") {
        await opts.onEvent?.({ type: "progress", index, step: e.value.step, steps: e.value.totalSteps, maskedRemaining: e.value.maskedRemaining });
        if (e.value.preview.length > 0 && partials < spec.partialImages) {
          await opts.onEvent?.({ type: "partial_image", index, partialIndex: partials++, bytes: e.value.preview, width: e.value.previewWidth, height: e.value.previewHeight });
        }
      } else if (e.case === "result") {
        const r = e.value;
        return {
          index,
          bytes: r.image,
          mime: r.mimeType || `image/${spec.outputFormat}`,
          width: r.width,
          height: r.height,
          seed: Number(r.seed),
          steps: r.usage?.steps ?? spec.steps,
          promptTokens: r.usage?.promptTokens ?? 0,
          outputTokens: r.usage?.outputTokens ?? 0,
        };
      }
    }
    throw new ApiError(502, "server_error", "The model server ended the stream without a result.", "backend_error");
  };

  try {
    const images = await Promise.all(
      Array.from({ length: spec.n }, (_, i) =>
        one(i).catch((err) => {
          inner.abort(err);
          throw err;
        }),
      ),
    );
    // charged at the size the model generated, the one the reservation quoted (lib/output-size.ts), whatever
    // size the image is handed back at
    const unitsMilli = images.reduce((s, im) => s + imageUnitsMilli(spec.width, spec.height, im.steps, 1, spec.inputPixels), 0);
    return { images, unitsMilli, steps: images[0]?.steps ?? spec.steps };
  } finally {
    opts.signal?.removeEventListener("abort", onOuterAbort);
  }
}
