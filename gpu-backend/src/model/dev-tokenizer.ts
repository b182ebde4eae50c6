// The development tokenizer: a small, deterministic byte-level BPE `tokenizer.json` with DiMOO's special
// tokens at their REAL ids, so the whole stack (layouts, samplers, engine contract, dev transformer) runs
// with true sequence structure without the 126k-entry production tokenizer. Any text encodes (256 byte
// tokens) and round-trips; a few hundred merges learned from the fixed text below keep prompts short.
//
// Id map:
//   0..255            byte tokens (id = byte value), GPT-2 byte alphabet
//   256..655          the DEV_MERGES = 400 merged tokens, in learned order
//   126080 <|startoftext|>   BOS, added by the post-processor (the LLaDA convention; whether the real
//                            DiMOO tokenizer adds it is unverified, docs/model.md §1.2)
//   126081 <|endoftext|>     EOS
//   126084 <|image_newline|> image end-of-row
//   126336 <|mdm_mask|>      MASK
//   126339 <|pad|>           answer padding
//   126340 <system>  126341 </system>  126342 <user>  126343 </user>
//                            (dev-only ids in LLaDA's unused 126340..126345 range; the real tokenizer may
//                            split these strings into ordinary tokens, which the code never depends on)
//   126349 <IMAGE>  126350 </IMAGE>  126351 <uncondition>  126354 <answer>  126355 </answer>
// Pre-tokenizer: Sequence[Split(Llama-3 pattern, Isolated), ByteLevel(no regex)]; decoder ByteLevel.

import { BOA, BOI, BOS, EOA, EOI, EOS, MASK, NEWLINE, PAD, UNCONDITION } from "./tokens";
import { BYTE_TO_CHAR, translateRegex } from "./tokenizer";

export const DEV_SYSTEM_OPEN = 126340;
export const DEV_SYSTEM_CLOSE = 126341;
export const DEV_USER_OPEN = 126342;
export const DEV_USER_CLOSE = 126343;

/** Number of merges learned (fewer only if every corpus word were already a single token). */
export const DEV_MERGES = 400;

/** Llama-3's split pattern (Oniguruma syntax, as it appears in tokenizer.json). */
export const DEV_SPLIT_PATTERN =
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

export const DEV_SPECIAL_TOKENS: ReadonlyArray<{ id: number; content: string }> = [
  { id: BOS, content: "<|startoftext|>" },
  { id: EOS, content: "<|endoftext|>" },
  { id: NEWLINE, content: "<|image_newline|>" },
  { id: MASK, content: "<|mdm_mask|>" },
  { id: PAD, content: "<|pad|>" },
  { id: DEV_SYSTEM_OPEN, content: "<system>" },
  { id: DEV_SYSTEM_CLOSE, content: "</system>" },
  { id: DEV_USER_OPEN, content: "<user>" },
  { id: DEV_USER_CLOSE, content: "</user>" },
  { id: BOI, content: "<IMAGE>" },
  { id: EOI, content: "</IMAGE>" },
  { id: UNCONDITION, content: "<uncondition>" },
  { id: BOA, content: "<answer>" },
  { id: EOA, content: "</answer>" },
];

// Training text: the task prompts plus ordinary captions and answers, so typical requests tokenize into
// realistic lengths. Changing it changes every dev token id: treat it as frozen.
const CORPUS = `Generate an image according to the text prompt.
Generate an image applying the following editing instruction based on the original image.
Generate an image according to the text prompt and the given control image.
Generate an image according to the text prompt and the given object image.
Transform the current image into the style of the provided image.
Generate a view-image based on the given image. Generate the left view based on the provided front view.
Perform dense prediction on the given images. Generate a depth map according to the image.
Generate an image according to the prompt and image.
You are a multimodal model that can process both text and images. Answer the following question based on
the provided images. Analyze each image and combine relevant details to answer.
A photo of a cat sitting on a wooden table next to a window, soft morning light, shallow depth of field.
A red fox running through the snow in a quiet forest at sunset, highly detailed, sharp focus.
An astronaut riding a horse on the moon, digital art, dramatic lighting, wide angle.
A bowl of fresh fruit with apples, oranges and bananas on a kitchen counter.
The city skyline at night with bright lights reflected in the river, long exposure photograph.
A small house in the mountains surrounded by green trees and a clear blue sky.
What is in the image? The image shows a dog playing with a ball in the park.
How many people are in the picture? There are three people standing near the car.
What color is the car? The car is red. Is there a person in the image? Yes, there is.
Describe the scene in detail. A woman is reading a book while sitting on a bench under a large tree.
The quick brown fox jumps over the lazy dog. It is a beautiful day and the weather is warm.
Please answer the question with a single word or phrase. The answer is yes. The answer is no.
Replace the background with a beach. Remove the person on the left. Add a hat to the man.
Change the color of the flowers to yellow and make the sky look like a painting in the style of Van Gogh.
A portrait of an old man with a white beard, oil painting, warm colors, studio lighting, 4k, 8k, 1024.
There is a chart showing the number of visitors in 2023 and 2024; the value increased by 15 percent.
`;

function byteLevel(s: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

let learned: Array<[string, string]> | null = null;

/** Deterministic BPE training: most frequent adjacent pair, ties to the smallest (left, right) strings. */
function learnMerges(): Array<[string, string]> {
  if (learned) return learned;
  const re = new RegExp(translateRegex(DEV_SPLIT_PATTERN), "gu");
  const freq = new Map<string, number>();
  for (const m of CORPUS.matchAll(re)) {
    const w = byteLevel(m[0]);
    freq.set(w, (freq.get(w) ?? 0) + 1);
  }
  const words = [...freq.entries()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([w, n]) => ({ syms: Array.from(w), n }));
  const merges: Array<[string, string]> = [];
  while (merges.length < DEV_MERGES) {
    const counts = new Map<string, number>();
    for (const { syms, n } of words) {
      for (let i = 0; i + 1 < syms.length; i++) {
        const k = syms[i] + "\u0000" + syms[i + 1];
        counts.set(k, (counts.get(k) ?? 0) + n);
      }
    }
    let bestKey: string | null = null, bestN = 0;
    for (const [k, n] of counts) {
      if (n > bestN || (n === bestN && bestKey !== null && k < bestKey)) {
        bestKey = k;
        bestN = n;
      }
    }
    if (bestKey === null) break; // every word is a single token
    const [a, b] = bestKey.split("\u0000") as [string, string];
    merges.push([a, b]);
    for (const w of words) {
      const out: string[] = [];
      for (let i = 0; i < w.syms.length; i++) {
        if (i + 1 < w.syms.length && w.syms[i] === a && w.syms[i + 1] === b) {
          out.push(a + b);
          i++;
        } else out.push(w.syms[i]);
      }
      w.syms = out;
    }
  }
  learned = merges;
  return merges;
}

/** The dev tokenizer.json as a plain object (fresh each call; write it with JSON.stringify). */
export function devTokenizerJson(): object {
  const vocab: Record<string, number> = {};
  for (let b = 0; b < 256; b++) vocab[BYTE_TO_CHAR[b]] = b;
  let next = 256;
  const merges = learnMerges();
  for (const [a, b] of merges) if (!(a + b in vocab)) vocab[a + b] = next++;
  // Special tokens are also model-vocab entries, as in real HF files: the tokenizers crate assigns an
  // added token the id it has in the model vocab, and otherwise renumbers it densely after the vocab.
  for (const t of DEV_SPECIAL_TOKENS) vocab[t.content] = t.id;
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: DEV_SPECIAL_TOKENS.map((t) => ({
      id: t.id,
      content: t.content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: false,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        { type: "Split", pattern: { Regex: DEV_SPLIT_PATTERN }, behavior: "Isolated", invert: false },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<|startoftext|>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<|startoftext|>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<|startoftext|>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<|startoftext|>": { id: "<|startoftext|>", ids: [BOS], tokens: ["<|startoftext|>"] } },
    },
    decoder: { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map(([a, b]) => [a, b]),
    },
  };
}
