import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { devTokenizerJson } from "../../../gpu-backend/src/model/dev-tokenizer";
import { UnsupportedTokenizer } from "../../../gpu-backend/src/model/errors";
import { Tokenizer, translateRegex } from "../../../gpu-backend/src/model/tokenizer";

const HERE = dirname(fileURLToPath(import.meta.url));
const goldens = JSON.parse(readFileSync(join(HERE, "fixtures/hf-tokenizer-goldens.json"), "utf8")) as {
  cases: Array<{ variant: "dev" | "gpt2"; text: string; ids: number[]; idsNoSpecial: number[]; decoded: string; decodedSkip: string }>;
};

/** The same GPT-2-style variant the goldens were produced with (see fixtures/hf-tokenizer-goldens.json). */
function gpt2Variant(): any {
  const j: any = devTokenizerJson();
  j.pre_tokenizer = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
  j.model.merges = j.model.merges.map((m: string[]) => m.join(" "));
  j.post_processor = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
  j.added_tokens = j.added_tokens.map((t: any) =>
    t.content === "<answer>" ? { ...t, lstrip: true, rstrip: true } : t.content === "</answer>" ? { ...t, single_word: true } : t.content === "<user>" ? { ...t, special: false } : t,
  );
  return j;
}

const dev = Tokenizer.fromJSON(devTokenizerJson());
const gpt2 = Tokenizer.fromJSON(gpt2Variant());

describe("tokenizer vs Hugging Face tokenizers (recorded goldens)", () => {
  it("has goldens for both variants", () => {
    expect(goldens.cases.filter((c) => c.variant === "dev").length).toBeGreaterThan(10);
    expect(goldens.cases.filter((c) => c.variant === "gpt2").length).toBeGreaterThan(10);
  });
  for (const c of goldens.cases) {
    it(`${c.variant}: ${JSON.stringify(c.text).slice(0, 60)}`, () => {
      const tok = c.variant === "dev" ? dev : gpt2;
      expect(tok.encode(c.text)).toEqual(c.ids);
      expect(tok.encode(c.text, { addSpecialTokens: false })).toEqual(c.idsNoSpecial);
      expect(tok.decode(c.ids)).toBe(c.decoded);
      expect(tok.decode(c.ids, { skipSpecialTokens: true })).toBe(c.decodedSkip);
    });
  }
});

describe("special tokens", () => {
  it("are matched whole, before BPE, anywhere in the text", () => {
    const ids = dev.encode("a<uncondition>b</answer>", { addSpecialTokens: false });
    expect(ids).toContain(126351);
    expect(ids).toContain(126355);
    // A near miss is ordinary text.
    expect(dev.encode("<uncondition", { addSpecialTokens: false })).not.toContain(126351);
  });

  it("leftmost-longest: overlapping candidates pick the longer token", () => {
    const j: any = devTokenizerJson();
    j.added_tokens.push({ id: 126352, content: "<answer>x", single_word: false, lstrip: false, rstrip: false, normalized: false, special: false });
    j.model.vocab["<answer>x"] = 126352;
    const t = Tokenizer.fromJSON(j);
    expect(t.encode("<answer>x<answer>", { addSpecialTokens: false })).toEqual([126352, 126354]);
  });

  it("skip_special_tokens drops only special added tokens", () => {
    const ids = [126080, ...dev.encode("hi", { addSpecialTokens: false }), 126355, 126339];
    expect(dev.decode(ids)).toBe("<|startoftext|>hi</answer><|pad|>");
    expect(dev.decode(ids, { skipSpecialTokens: true })).toBe("hi");
    // <user> is non-special in the gpt2 variant: kept even when skipping.
    expect(gpt2.decode([126342, 126355], { skipSpecialTokens: true })).toBe("<user>");
  });

  it("unknown ids are dropped on decode (HF behaviour)", () => {
    expect(dev.decode([104, 105, 99999])).toBe("hi");
  });

  it("the post-processor adds BOS only when asked", () => {
    expect(dev.encode("x")[0]).toBe(126080);
    expect(dev.encode("x", { addSpecialTokens: false })[0]).not.toBe(126080);
  });
});

describe("round trips", () => {
  const samples = ["", "plain ascii", "  leading and trailing  ", "line\nbreaks\r\n\ttabs", "ünïcödé, 日本語, emoji 🐱‍👤, RTL שלום", "\u0000\u0001\u007f control", "a".repeat(5000), "1234567890".repeat(30)];
  for (const s of samples) {
    it(JSON.stringify(s).slice(0, 40), () => {
      for (const t of [dev, gpt2]) {
        const ids = t.encode(s, { addSpecialTokens: false });
        expect(t.decode(ids)).toBe(t === gpt2 && s.length > 0 && !s.startsWith(" ") ? " " + s : s);
      }
    });
  }

  it("invalid UTF-8 from a byte-token slice decodes with U+FFFD instead of throwing", () => {
    const ids = dev.encode("é", { addSpecialTokens: false });
    expect(ids).toEqual([0xc3, 0xa9]);
    expect(dev.decode([0xc3])).toBe("\ufffd");
  });

  it("is fast on long inputs (BPE words are cached)", () => {
    const text = "The quick brown fox jumps over the lazy dog. ".repeat(2000);
    const t0 = performance.now();
    const ids = dev.encode(text);
    const ms = performance.now() - t0;
    expect(dev.decode(ids, { skipSpecialTokens: true })).toBe(text);
    expect(ms).toBeLessThan(2000);
  });

  it("splits inputs with more pieces than the call stack holds", () => {
    // 400k pre-tokens from one string: spreading them into push() overflows the stack.
    const text = "a ".repeat(400_000);
    const ids = dev.encode(text, { addSpecialTokens: false });
    expect(ids.length).toBeGreaterThanOrEqual(400_000);
    expect(dev.decode(ids)).toBe(text);
  });

  it("long words without spaces do not go quadratic", () => {
    // 60k letters in one pre-token: a naive rescan-all-pairs BPE takes minutes here.
    const word = "theandonimage".repeat(5000);
    const t0 = performance.now();
    const ids = dev.encode(word, { addSpecialTokens: false });
    expect(performance.now() - t0).toBeLessThan(3000);
    expect(dev.decode(ids)).toBe(word);
    expect(ids.length).toBeLessThan(word.length * 0.6); // merges applied, not just bytes
  });
});

describe("component support", () => {
  const base = () => devTokenizerJson() as any;
  it("names unsupported components", () => {
    const cases: Array<[(j: any) => void, RegExp]> = [
      [(j) => (j.model.type = "WordPiece"), /model type "WordPiece"/],
      [(j) => (j.pre_tokenizer = { type: "Metaspace" }), /pre_tokenizer type "Metaspace"/],
      [(j) => (j.normalizer = { type: "BertNormalizer" }), /normalizer type "BertNormalizer"/],
      [(j) => (j.decoder = { type: "WordPiece" }), /decoder type "WordPiece"/],
      [(j) => (j.post_processor = { type: "RobertaProcessing" }), /post_processor type "RobertaProcessing"/],
      [(j) => (j.model.dropout = 0.1), /dropout/],
      [(j) => (j.model.merges = [["x", "nope"]]), /missing from the vocab/],
      [(j) => (j.model.merges = ["a b c"]), /is not "a b"/],
      [(j) => (j.pre_tokenizer.pretokenizers[0].behavior = "Sideways"), /Split behavior "Sideways"/],
      [(j) => (j.pre_tokenizer.pretokenizers[0].pattern = { Regex: "a++" }), /possessive/],
      [(j) => (j.pre_tokenizer.pretokenizers[0].pattern = { Regex: "(?>ab)" }), /atomic/],
      [(j) => (j.pre_tokenizer.pretokenizers[0].pattern = { Regex: "(?x)a b" }), /inline modifier/],
    ];
    for (const [mutate, re] of cases) {
      const j = base();
      mutate(j);
      expect(() => Tokenizer.fromJSON(j)).toThrow(UnsupportedTokenizer);
      expect(() => Tokenizer.fromJSON(j)).toThrow(re);
    }
  });

  it("accepts both merge formats with identical results", () => {
    const j = base();
    j.model.merges = j.model.merges.map((m: string[]) => m.join(" "));
    const t = Tokenizer.fromJSON(j);
    const s = "Generate an image according to the text prompt.";
    expect(t.encode(s)).toEqual(dev.encode(s));
  });

  it("translates (?i:...) groups into case classes", () => {
    const src = translateRegex("(?i:'s|'ll)|\\p{L}+");
    const re = new RegExp(src, "gu");
    expect("IT'S it'Ll".match(re)).toEqual(["IT", "'S", "it", "'Ll"]);
    expect(src).not.toContain("(?i");
  });

  it("applies ignore_merges: whole-word vocab hits skip merging", () => {
    const j = base();
    // A vocab entry that the merges could never build: with ignore_merges it is used directly.
    j.model.vocab["zqx"] = 5000;
    j.model.ignore_merges = true;
    expect(Tokenizer.fromJSON(j).encode("zqx", { addSpecialTokens: false })).toEqual([5000]);
    j.model.ignore_merges = false;
    expect(Tokenizer.fromJSON(j).encode("zqx", { addSpecialTokens: false })).not.toEqual([5000]);
  });

  it("loads from a file path", async () => {
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    const file = join(dir, "tokenizer.json");
    writeFileSync(file, JSON.stringify(devTokenizerJson()));
    const t = await Tokenizer.fromFile(file);
    expect(t.encode("hello")).toEqual(dev.encode("hello"));
    expect(t.vocabSize).toBe(126356);
  });
});
