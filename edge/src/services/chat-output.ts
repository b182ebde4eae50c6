// Turns an understanding result into OpenAI's chat.completion object and its usage block (sync route,
// streamed final chunk and async jobs).
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
