// Request and response schemas of /v1/chat/completions (image understanding, OpenAI-compatible).
import { z } from "@hono/zod-openapi";
import { LIMITS } from "../config";
import { overTokens } from "../lib/text-bounds";

const TextPart = z.object({ type: z.literal("text"), text: z.string().max(LIMITS.promptChars) });
const ImagePart = z.object({
  type: z.literal("image_url"),
  image_url: z.object({
    url: z.string().openapi({ description: "data:image/...;base64,... or an https URL (fetched with a size and time cap)" }),
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
});
export const ContentPart = z.discriminatedUnion("type", [TextPart, ImagePart]);

export const ChatMessage = z.object({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(ContentPart).max(LIMITS.contentParts)]).nullable(),
  name: z.string().max(256).optional(),
});

type Message = z.infer<typeof ChatMessage>;

/** The text of a message, as [path below the message, text] pairs. */
const texts = (m: Message): [(string | number)[], string][] =>
  typeof m.content === "string" ? [[["content"], m.content]] : (m.content ?? []).flatMap((p, j) => (p.type === "text" ? [[["content", j, "text"], p.text] as [(string | number)[], string]] : []));

/** The question the orchestrator gets: system/developer text, then the last user message's text. */
export function chatQuestion(messages: Message[]): { system: string[]; question: string } {
  const system: string[] = [];
  let question = "";
  for (const m of messages) {
    const t = texts(m).map(([, text]) => text);
    if (m.role === "system" || m.role === "developer") system.push(t.join("\n"));
    if (m.role === "user") question = t.join("\n");
  }
  return { system, question };
}

/** Every text field within its cap, all text together within the request's, the question within the prompt tokens. */
const ChatMessages = z
  .array(ChatMessage)
  .min(1)
  .max(LIMITS.chatMessages)
  .superRefine((messages, ctx) => {
    let total = 0;
    messages.forEach((m, i) => {
      for (const [path, text] of texts(m)) {
        total += text.length;
        if (text.length > LIMITS.promptChars) ctx.addIssue({ code: "custom", path: [i, ...path], message: `Text of ${text.length} characters; at most ${LIMITS.promptChars} per field` });
      }
    });
    if (total > LIMITS.chatTextChars) ctx.addIssue({ code: "custom", message: `The messages hold ${total} characters of text; at most ${LIMITS.chatTextChars} in all` });
    const { system, question } = chatQuestion(messages);
    const over = overTokens([...system, question].join("\n"), LIMITS.promptTokens);
    if (over) ctx.addIssue({ code: "custom", message: `The question (system and developer text, then the last user message's text) ${over}` });
  });

export const ChatCompletionRequest = z
  .object({
    model: z.string().optional().openapi({ example: "lumina-dimoo" }),
    messages: ChatMessages,
    max_tokens: z.number().int().min(1).max(LIMITS.maxAnswerTokens).optional(),
    max_completion_tokens: z.number().int().min(1).max(LIMITS.maxAnswerTokens).optional(),
    temperature: z.number().min(0).max(10).optional(),
    seed: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
    n: z.literal(1).optional(),
    stream: z.boolean().default(false),
    stream_options: z.object({ include_usage: z.boolean().optional() }).optional(),
    user: z.string().max(256).optional(),
    steps: z.number().int().min(1).max(2048).optional().openapi({ description: "DiMOO extension: denoising steps for the answer" }),
  })
  .openapi("ChatCompletionRequest");

export const ChatUsage = z.object({
  prompt_tokens: z.number().int(),
  completion_tokens: z.number().int(),
  total_tokens: z.number().int(),
  billing_unit: z.literal("megapixel_step"),
  billing_units: z.number(),
});

export const ChatCompletion = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.number().int(),
    model: z.string(),
    choices: z.array(
      z.object({
        index: z.number().int(),
        message: z.object({ role: z.literal("assistant"), content: z.string(), refusal: z.null() }),
        finish_reason: z.enum(["stop", "length"]),
        logprobs: z.null(),
      }),
    ),
    usage: ChatUsage,
  })
  .openapi("ChatCompletion");
