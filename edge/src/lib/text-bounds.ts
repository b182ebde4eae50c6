// Bounds on caller text, checked by the request schemas before anything is reserved. Characters are
// capped per field and in total. Tokens can only be bounded from below without the model's tokenizer:
// DiMOO's byte-level BPE pre-tokenizes text so that no token spans two separate runs of letters, or of
// digits, so every such run costs at least one token. A text whose lower bound already exceeds the
// orchestrator's prompt limit would be refused by it after a reservation and a round trip; the edge
// refuses it first, and never refuses a text the orchestrator would take.
const RUNS = /[\p{L}\p{M}'\u2019]+|\p{N}+/gu;

/** A lower bound on the tokens `text` becomes. */
export function minTokens(text: string): number {
  let n = 0;
  for (const _ of text.matchAll(RUNS)) n++;
  return n;
}

/** Why `text` is over `maxTokens` tokens for sure, or undefined when it may fit. */
export function overTokens(text: string, maxTokens: number): string | undefined {
  const n = minTokens(text);
  return n > maxTokens ? `is at least ${n} tokens long; the limit is ${maxTokens}` : undefined;
}
