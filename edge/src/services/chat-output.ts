// Turns an understanding result into OpenAI's chat.completion object and its usage block (sync route,
// streamed final chunk and async jobs), and frames the chat.completion.chunk events of a stream.
import { BILLING_UNIT, milliToUnits } from "../metering";
import type { UnderstandResult } from "./understand";

export function chatUsage(r: UnderstandResult) {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.completionTokens,
    total_tokens: r.promptTokens + r.completionTokens,
    billing_unit: BILLING_UNIT,
    billing_units: milliToUnits(r.unitsMilli),
  };
}

export function chatCompletion(id: string, model: string, r: UnderstandResult, created = Math.floor(Date.now() / 1000)) {
  return {
    id,
    object: "chat.completion" as const,
    created,
    model,
    choices: [{ index: 0, message: { role: "assistant" as const, content: r.text, refusal: null }, finish_reason: r.finishReason, logprobs: null }],
    usage: chatUsage(r),
  };
}

/** The chat.completion.chunk objects of one streamed answer (same id, model and creation time throughout). */
export function chatChunks(id: string, model: string, created = Math.floor(Date.now() / 1000)) {
  const frame = (choices: unknown[], extra: Record<string, unknown> = {}) => JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices, ...extra });
  return {
    delta: (delta: Record<string, unknown>, finish: string | null = null) => frame([{ index: 0, delta, finish_reason: finish, logprobs: null }]),
    usage: (r: UnderstandResult) => frame([], { usage: chatUsage(r) }),
  };
}
