// Image understanding (captioning / visual question answering) through the orchestrator pool, with text
// deltas relayed as they arrive. Billing: input megapixels x answer steps actually run.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { UnderstandRequestSchema } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import type { OrchestratorPool } from "../backend/pool";
import { ApiError } from "../errors";
import { understandUnitsMilli } from "../metering";
import type { Tenant } from "../principal";

export interface UnderstandSpec {
  question: string;
  images: Uint8Array[];
  /** total input pixels, read from the image headers at the edge */
  inputPixels: number;
  maxTokens: number;
  steps?: number;
  temperature?: number;
  seed?: number;
  /** Who pays, for the orchestrator's fair share (services/specs.ts). */
  tenant?: Tenant;
}

export interface UnderstandResult {
  text: string;
  finishReason: "stop" | "length";
  promptTokens: number;
  completionTokens: number;
  steps: number;
  unitsMilli: number;
}

export const estimateUnderstandMilli = (s: UnderstandSpec): number => understandUnitsMilli(s.inputPixels, s.steps ?? s.maxTokens);

export async function runUnderstand(
  pool: OrchestratorPool,
  spec: UnderstandSpec,
  opts: { requestId: string; signal?: AbortSignal; onDelta?: (text: string) => void | Promise<void> },
): Promise<UnderstandResult> {
  const req: MessageInitShape<typeof UnderstandRequestSchema> = {
    requestId: opts.requestId,
    question: spec.question,
    images: spec.images,
    maxTokens: spec.maxTokens,
    steps: spec.steps ?? 0,
    temperature: spec.temperature,
    seed: spec.seed !== undefined ? BigInt(spec.seed) : undefined,
    tenant: spec.tenant,
  };
  for await (const ev of pool.understand(req, { signal: opts.signal })) {
    const e = ev.event;
    if (e.case === "delta") await opts.onDelta?.(e.value.text);
    else if (e.case === "result") {
      const steps = e.value.usage?.steps || spec.steps || spec.maxTokens;
      return {
        text: e.value.text,
        finishReason: e.value.finishReason === "length" ? "length" : "stop",
        promptTokens: e.value.usage?.promptTokens ?? 0,
        completionTokens: e.value.usage?.outputTokens ?? 0,
        steps,
        unitsMilli: understandUnitsMilli(spec.inputPixels, steps),
      };
    }
  }
  throw new ApiError(502, "server_error", "The model server ended the stream without a result.", "backend_error");
}
