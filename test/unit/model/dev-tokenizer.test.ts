import { describe, expect, it } from "vitest";
import { DEV_SPECIAL_TOKENS, devTokenizerJson } from "../../../gpu-backend/src/model/dev-tokenizer";
import { chatPrompt, textToImagePrompts } from "../../../gpu-backend/src/model/prompts";
import { Tokenizer } from "../../../gpu-backend/src/model/tokenizer";
import { BOA, BOI, BOS, EOA, EOI, EOS, MASK, NEWLINE, PAD, UNCONDITION } from "../../../gpu-backend/src/model/tokens";

describe("dev tokenizer", () => {
  const json = devTokenizerJson() as any;
  const tok = Tokenizer.fromJSON(json);

  it("is deterministic (same JSON every call)", () => {
    expect(JSON.stringify(devTokenizerJson())).toBe(JSON.stringify(json));
  });

  it("has 256 byte tokens plus a few hundred merges, all below 126080", () => {
    expect(json.model.merges.length).toBeGreaterThanOrEqual(300);
    expect(json.model.merges.length).toBeLessThanOrEqual(400);
    const ordinary = Object.entries(json.model.vocab as Record<string, number>).filter(([t]) => !DEV_SPECIAL_TOKENS.some((s) => s.content === t));
    expect(ordinary.length).toBeGreaterThan(256 + 250);
    for (const [, id] of ordinary) expect(id).toBeLessThan(126080);
    const ids = new Set(ordinary.map(([, id]) => id));
    for (let b = 0; b < 256; b++) expect(ids.has(b)).toBe(true);
  });

  it("puts special tokens at the real DiMOO ids", () => {
    const expected: Array<[string, number]> = [
      ["<|startoftext|>", BOS], ["<|endoftext|>", EOS], ["<|mdm_mask|>", MASK], ["<|pad|>", PAD], ["<|image_newline|>", NEWLINE],
      ["<IMAGE>", BOI], ["</IMAGE>", EOI], ["<uncondition>", UNCONDITION], ["<answer>", BOA], ["</answer>", EOA],
      ["<system>", 126340], ["</system>", 126341], ["<user>", 126342], ["</user>", 126343],
    ];
    for (const [content, id] of expected) {
      expect(tok.tokenToId(content), content).toBe(id);
      expect(tok.isSpecial(id)).toBe(true);
    }
  });

  it("tokenizes prompts with the chat markers as single ids; the last prompt token is </user>", () => {
    const p = textToImagePrompts("A red fox in the snow");
    const cond = tok.encode(p.cond);
    const uncond = tok.encode(p.uncond);
    expect(cond[0]).toBe(BOS);
    expect(cond[1]).toBe(126340);
    expect(cond[cond.length - 1]).toBe(126343);
    expect(uncond.slice(-2)).toEqual([UNCONDITION, 126343]);
    // The merges compress the training text: far fewer tokens than bytes.
    expect(cond.length).toBeLessThan(chatPrompt(p.system, p.user).length / 2);
  });

  it("round-trips arbitrary text", () => {
    for (const s of ["Generate a depth map according to the image.", "日本語 🐱 ünï", "x\r\n\t  y"]) {
      expect(tok.decode(tok.encode(s), { skipSpecialTokens: true })).toBe(s);
    }
  });
});
