// A Hugging Face `tokenizer.json` reader, encoder and decoder for byte-level BPE tokenizers (the LLaDA /
// DiMOO family), so the orchestrator tokenizes prompts in-process with the same ids as
// `AutoTokenizer(...)(s)["input_ids"]` and decodes answers like `batch_decode(..., skip_special_tokens=True)`.
//
// Pipeline (HF semantics): added tokens are cut out first (leftmost-longest, whole string; non-normalized
// ones on the raw text, normalized ones after the normalizer), every other piece goes through the
// normalizer, the pre-tokenizer (ByteLevel / Split / Sequence) and the BPE model; then the post-processor
// (TemplateProcessing adds BOS/EOS when add_special_tokens). Anything outside that subset fails at load with
// an UnsupportedTokenizer error naming the component, rather than silently tokenizing differently.
//
// Not covered: transformers-level options that live in tokenizer_config.json (e.g. add_bos_token rewriting
// the post-processor, clean_up_tokenization_spaces on decode); pass the effective tokenizer.json.

import { readFile } from "node:fs/promises";
import { UnsupportedTokenizer } from "./errors";

export interface EncodeOptions {
  /** Apply the post-processor (BOS/EOS template). Default true, like HF. */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop added tokens marked special. Default false, like HF. */
  skipSpecialTokens?: boolean;
}

export interface AddedToken {
  id: number;
  content: string;
  special: boolean;
  singleWord: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
}

// ---------------------------------------------------------------------------------------------------------
// Byte-level alphabet (GPT-2 bytes_to_unicode): printable bytes map to themselves, the rest to U+0100+.

function buildByteMaps(): { byteToChar: string[]; charToByte: Map<string, number> } {
  const bs: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = bs.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const byteToChar: string[] = new Array(256);
  const charToByte = new Map<string, number>();
  for (let i = 0; i < 256; i++) {
    const ch = String.fromCodePoint(cs[i]);
    byteToChar[bs[i]] = ch;
    charToByte.set(ch, bs[i]);
  }
  return { byteToChar, charToByte };
}

export const { byteToChar: BYTE_TO_CHAR, charToByte: CHAR_TO_BYTE } = buildByteMaps();

const utf8 = new TextEncoder();
const utf8Lossy = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

// Byte alphabet code points are all below 0x144, so a flat table beats a Map on the hot paths.
const CODE_TO_BYTE = new Int16Array(0x200).fill(-1);
for (const [ch, b] of CHAR_TO_BYTE) CODE_TO_BYTE[ch.charCodeAt(0)] = b;

const byteLevelCache = new Map<string, string>();

/** UTF-8 bytes of `s` as byte-level characters (pieces repeat a lot in real text, hence the cache). */
export function toByteLevel(s: string): string {
  const hit = byteLevelCache.get(s);
  if (hit !== undefined) return hit;
  const out = toByteLevelUncached(s);
  if (byteLevelCache.size >= 50_000) byteLevelCache.clear();
  if (s.length <= 64) byteLevelCache.set(s, out);
  return out;
}

function toByteLevelUncached(s: string): string {
  let ascii = true;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      ascii = false;
      break;
    }
  }
  let out = "";
  if (ascii) {
    for (let i = 0; i < s.length; i++) out += BYTE_TO_CHAR[s.charCodeAt(i)];
    return out;
  }
  for (const b of utf8.encode(s)) out += BYTE_TO_CHAR[b];
  return out;
}

/** GPT-2's pre-tokenization regex (the ByteLevel pre-tokenizer's `use_regex`). */
export const GPT2_PATTERN = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

// ---------------------------------------------------------------------------------------------------------
// Oniguruma patterns to JS: the tokenizers crate uses Oniguruma; JS (Node 20) lacks inline modifiers, so
// `(?i:...)` is rewritten with explicit case classes. Possessive/atomic constructs are rejected.

function caseClass(ch: string): string {
  const lo = ch.toLowerCase(), up = ch.toUpperCase();
  return lo === up ? ch : `[${lo}${up}]`;
}

/** Translates an Oniguruma pattern as used in tokenizer.json into a JS `u`-mode RegExp source. */
export function translateRegex(pattern: string): string {
  if (/\(\?>/.test(pattern)) throw new UnsupportedTokenizer(`regex uses an atomic group (?>...), unsupported: ${pattern}`);
  if (/[^\\][*+?]\+/.test(pattern)) throw new UnsupportedTokenizer(`regex uses a possessive quantifier, unsupported: ${pattern}`);
  let out = "";
  let i = 0;
  // Parenthesis depth at which each open (?i: group started, so its closing paren can be recognised.
  const ciStack: number[] = [];
  let depth = 0;
  let inClass = false;
  while (i < pattern.length) {
    const ch = pattern[i];
    const ci = ciStack.length > 0;
    if (ch === "\\") {
      // Copy escapes verbatim, \p{...} bodies included (never case-expanded).
      let j = i + 2;
      if ((pattern[i + 1] === "p" || pattern[i + 1] === "P") && pattern[i + 2] === "{") j = pattern.indexOf("}", i) + 1;
      out += pattern.slice(i, j);
      i = j;
      continue;
    }
    if (inClass) {
      if (ch === "]") inClass = false;
      out += ci && /[a-z]/i.test(ch) ? ch.toLowerCase() + ch.toUpperCase() : ch;
      i++;
      continue;
    }
    if (ch === "[") {
      inClass = true;
      out += ch;
      i++;
      if (pattern[i] === "^") {
        out += "^";
        i++;
      }
      if (pattern[i] === "]") {
        out += "\\]";
        i++;
      }
      continue;
    }
    if (pattern.startsWith("(?i:", i)) {
      ciStack.push(depth);
      depth++;
      out += "(?:";
      i += 4;
      continue;
    }
    if (/^\(\?[a-zA-Z-]/.test(pattern.slice(i, i + 3))) {
      throw new UnsupportedTokenizer(`regex uses an inline modifier other than (?i:...): ${pattern}`);
    }
    if (ch === "(") {
      depth++;
      out += ch;
      i++;
      continue;
    }
    if (ch === ")") {
      depth--;
      if (ciStack.length > 0 && ciStack[ciStack.length - 1] === depth) ciStack.pop();
      out += ch;
      i++;
      continue;
    }
    if (ci && /[a-z]/i.test(ch)) {
      // Letters inside a quantifier like {1,3} are not letters; those bodies contain digits only.
      out += caseClass(ch);
      i++;
      continue;
    }
    out += ch;
    i++;
  }
  try {
    new RegExp(out, "gu");
  } catch (e) {
    throw new UnsupportedTokenizer(`regex not expressible in JS: ${pattern} (${(e as Error).message})`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Normalizers

type Normalizer = (s: string) => string;

function buildNormalizer(cfg: any): Normalizer | null {
  if (cfg == null) return null;
  switch (cfg.type) {
    case "NFC":
    case "NFD":
    case "NFKC":
    case "NFKD":
      return (s) => s.normalize(cfg.type);
    case "Lowercase":
      return (s) => s.toLowerCase();
    case "Sequence": {
      const parts = (cfg.normalizers as any[]).map(buildNormalizer).filter((n): n is Normalizer => n !== null);
      return (s) => parts.reduce((acc, n) => n(acc), s);
    }
    default:
      throw new UnsupportedTokenizer(`normalizer type "${cfg.type}" is not supported`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Pre-tokenizers: string piece -> string pieces. The ByteLevel one also maps to the byte alphabet.

type PreTokenizer = (pieces: string[]) => string[];
type Behavior = "Removed" | "Isolated" | "MergedWithPrevious" | "MergedWithNext" | "Contiguous";

interface Segment {
  start: number;
  end: number;
  match: boolean;
}

function findSegments(re: RegExp, s: string): Segment[] {
  const segs: Segment[] = [];
  let prev = 0;
  re.lastIndex = 0;
  for (const m of s.matchAll(re)) {
    const start = m.index!, end = start + m[0].length;
    if (start === end) continue;
    if (prev !== start) segs.push({ start: prev, end: start, match: false });
    segs.push({ start, end, match: true });
    prev = end;
  }
  if (prev !== s.length) segs.push({ start: prev, end: s.length, match: false });
  return segs;
}

/** HF SplitDelimiterBehavior applied to match/non-match segments covering the string. */
export function splitByBehavior(s: string, segs: Segment[], behavior: Behavior): string[] {
  type Span = [number, number];
  let spans: Span[] = [];
  switch (behavior) {
    case "Isolated":
      spans = segs.map((g) => [g.start, g.end]);
      break;
    case "Removed":
      spans = segs.filter((g) => !g.match).map((g) => [g.start, g.end]);
      break;
    case "MergedWithPrevious": {
      let prevMatch = false;
      for (const g of segs) {
        if (g.match && !prevMatch && spans.length > 0) spans[spans.length - 1][1] = g.end;
        else spans.push([g.start, g.end]);
        prevMatch = g.match;
      }
      break;
    }
    case "MergedWithNext": {
      let prevMatch = false;
      for (let i = segs.length - 1; i >= 0; i--) {
        const g = segs[i];
        if (g.match && !prevMatch && spans.length > 0) spans[spans.length - 1][0] = g.start;
        else spans.push([g.start, g.end]);
        prevMatch = g.match;
      }
      spans.reverse();
      break;
    }
    case "Contiguous": {
      let prevMatch = false;
      for (const g of segs) {
        if (g.match === prevMatch && spans.length > 0) spans[spans.length - 1][1] = g.end;
        else spans.push([g.start, g.end]);
        prevMatch = g.match;
      }
      break;
    }
    default:
      throw new UnsupportedTokenizer(`Split behavior "${behavior as string}" is not supported`);
  }
  return spans.filter(([a, b]) => b > a).map(([a, b]) => s.slice(a, b));
}

function escapeRegex(s: string): string {
  // u-mode regexes reject identity escapes of anything but syntax characters, so escape exactly those.
  return s.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&");
}

function buildPreTokenizer(cfg: any): PreTokenizer | null {
  if (cfg == null) return null;
  switch (cfg.type) {
    case "ByteLevel": {
      const addPrefixSpace = cfg.add_prefix_space === true;
      const useRegex = cfg.use_regex !== false;
      const re = new RegExp(GPT2_PATTERN, "gu");
      return (pieces) => {
        const out: string[] = [];
        for (let p of pieces) {
          if (addPrefixSpace && !p.startsWith(" ")) p = " " + p;
          const parts = useRegex ? splitByBehavior(p, findSegments(re, p), "Isolated") : [p];
          for (const q of parts) out.push(toByteLevel(q));
        }
        return out;
      };
    }
    case "Split": {
      const pat = cfg.pattern ?? {};
      let source: string;
      if (typeof pat.Regex === "string") source = translateRegex(pat.Regex);
      else if (typeof pat.String === "string") source = escapeRegex(pat.String);
      else throw new UnsupportedTokenizer(`Split pre-tokenizer pattern ${JSON.stringify(pat)} is not supported`);
      const re = new RegExp(source, "gu");
      const behavior = cfg.behavior as Behavior;
      if (!["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"].includes(behavior)) {
        throw new UnsupportedTokenizer(`Split behavior "${String(cfg.behavior)}" is not supported`);
      }
      const invert = cfg.invert === true;
      return (pieces) => {
        const out: string[] = [];
        for (const p of pieces) {
          let segs = findSegments(re, p);
          if (invert) segs = segs.map((g) => ({ ...g, match: !g.match }));
          // A loop, not push(...spread): one long input splits into more pieces than the call stack holds.
          for (const piece of splitByBehavior(p, segs, behavior)) out.push(piece);
        }
        return out;
      };
    }
    case "Sequence": {
      const parts = (cfg.pretokenizers as any[]).map(buildPreTokenizer).filter((p): p is PreTokenizer => p !== null);
      return (pieces) => parts.reduce((acc, p) => p(acc), pieces);
    }
    default:
      throw new UnsupportedTokenizer(`pre_tokenizer type "${cfg.type}" is not supported`);
  }
}

function usesByteLevel(cfg: any): boolean {
  if (cfg == null) return false;
  if (cfg.type === "ByteLevel") return true;
  if (cfg.type === "Sequence") return (cfg.pretokenizers as any[]).some(usesByteLevel);
  return false;
}

// ---------------------------------------------------------------------------------------------------------
// BPE model

class Bpe {
  readonly vocab: Map<string, number>;
  readonly idToToken: Map<number, string>;
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  private readonly unkId: number | null;
  private readonly byteFallback: boolean;
  private readonly fuseUnk: boolean;
  private readonly ignoreMerges: boolean;
  private readonly prefix: string;
  private readonly suffix: string;
  static readonly CACHE_LIMIT = 100_000;

  constructor(cfg: any) {
    if (cfg.type !== undefined && cfg.type !== "BPE") throw new UnsupportedTokenizer(`model type "${cfg.type}" is not supported (only BPE)`);
    if (cfg.dropout != null && cfg.dropout !== 0) throw new UnsupportedTokenizer(`BPE dropout ${cfg.dropout} is not supported (non-deterministic)`);
    if (cfg.vocab == null || typeof cfg.vocab !== "object") throw new UnsupportedTokenizer("BPE model has no vocab");
    this.vocab = new Map(Object.entries(cfg.vocab as Record<string, number>));
    this.idToToken = new Map();
    for (const [t, id] of this.vocab) this.idToToken.set(id, t);
    this.prefix = cfg.continuing_subword_prefix ?? "";
    this.suffix = cfg.end_of_word_suffix ?? "";
    const merges = (cfg.merges ?? []) as unknown[];
    merges.forEach((m, rank) => {
      let a: string, b: string;
      if (typeof m === "string") {
        const parts = m.split(" ");
        if (parts.length !== 2) throw new UnsupportedTokenizer(`BPE merge #${rank} "${m}" is not "a b"`);
        [a, b] = parts;
      } else if (Array.isArray(m) && m.length === 2 && typeof m[0] === "string" && typeof m[1] === "string") {
        [a, b] = m as [string, string];
      } else throw new UnsupportedTokenizer(`BPE merge #${rank} has an unsupported format: ${JSON.stringify(m)}`);
      if (!this.vocab.has(a) || !this.vocab.has(b) || !this.vocab.has(this.mergedToken(a, b))) {
        throw new UnsupportedTokenizer(`BPE merge #${rank} (${JSON.stringify(a)}, ${JSON.stringify(b)}) uses a token missing from the vocab`);
      }
      const key = a + "\u0000" + b;
      if (!this.ranks.has(key)) this.ranks.set(key, rank);
    });
    this.unkId = cfg.unk_token != null ? (this.vocab.get(cfg.unk_token) ?? null) : null;
    if (cfg.unk_token != null && this.unkId === null) throw new UnsupportedTokenizer(`BPE unk_token ${JSON.stringify(cfg.unk_token)} is not in the vocab`);
    this.byteFallback = cfg.byte_fallback === true;
    this.fuseUnk = cfg.fuse_unk === true;
    this.ignoreMerges = cfg.ignore_merges === true;
  }

  private mergedToken(a: string, b: string): string {
    return this.prefix && b.startsWith(this.prefix) ? a + b.slice(this.prefix.length) : a + b;
  }

  tokenize(word: string): number[] {
    const hit = this.cache.get(word);
    if (hit) return hit;
    const ids = this.tokenizeUncached(word);
    if (this.cache.size >= Bpe.CACHE_LIMIT) this.cache.clear();
    this.cache.set(word, ids);
    return ids;
  }

  private tokenizeUncached(word: string): number[] {
    if (this.ignoreMerges) {
      const id = this.vocab.get(word);
      if (id !== undefined) return [id];
    }
    const chars = Array.from(word);
    // Symbols: token strings (for merge lookup) with ids; unknown pieces become unk / byte tokens.
    const syms: { s: string | null; id: number }[] = [];
    let pendingUnk = false;
    const flushUnk = () => {
      if (pendingUnk) syms.push({ s: null, id: this.unkId! });
      pendingUnk = false;
    };
    chars.forEach((c, i) => {
      let s = c;
      if (i > 0 && this.prefix) s = this.prefix + s;
      if (i === chars.length - 1 && this.suffix) s = s + this.suffix;
      const id = this.vocab.get(s);
      if (id !== undefined) {
        flushUnk();
        syms.push({ s, id });
        return;
      }
      if (this.byteFallback) {
        const bytes = utf8.encode(s); // HF falls back on the prefixed piece, prefix bytes included
        const ids = Array.from(bytes, (b) => this.vocab.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`));
        if (ids.every((x) => x !== undefined)) {
          flushUnk();
          for (const x of ids) syms.push({ s: null, id: x! });
          return;
        }
      }
      if (this.unkId === null) throw new Error(`BPE: ${JSON.stringify(s)} is not in the vocab and the model has no unk_token`);
      if (pendingUnk && !this.fuseUnk) syms.push({ s: null, id: this.unkId });
      pendingUnk = true;
    });
    flushUnk();
    return this.mergeAll(syms);
  }

  /**
   * Repeatedly merges the lowest-ranked adjacent pair, leftmost on ties (HF's order), with a heap over a
   * linked list so a long word without spaces costs O(n log n), not O(n^2).
   */
  private mergeAll(syms: { s: string | null; id: number }[]): number[] {
    const n = syms.length;
    if (n < 2) return syms.map((x) => x.id);
    const str = syms.map((x) => x.s);
    const ids = syms.map((x) => x.id);
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const ver = new Int32Array(n);
    const alive = new Uint8Array(n).fill(1);
    // Heap entries: [rank, left, right, leftVersion, rightVersion].
    const heap: number[][] = [];
    const less = (a: number[], b: number[]) => a[0] < b[0] || (a[0] === b[0] && a[1] < b[1]);
    const push = (e: number[]) => {
      heap.push(e);
      let i = heap.length - 1;
      while (i > 0) {
        const p = (i - 1) >> 1;
        if (!less(heap[i], heap[p])) break;
        [heap[i], heap[p]] = [heap[p], heap[i]];
        i = p;
      }
    };
    const pop = (): number[] => {
      const top = heap[0];
      const last = heap.pop()!;
      if (heap.length > 0) {
        heap[0] = last;
        let i = 0;
        for (;;) {
          const l = 2 * i + 1, r = l + 1;
          let m = i;
          if (l < heap.length && less(heap[l], heap[m])) m = l;
          if (r < heap.length && less(heap[r], heap[m])) m = r;
          if (m === i) break;
          [heap[i], heap[m]] = [heap[m], heap[i]];
          i = m;
        }
      }
      return top;
    };
    const consider = (i: number) => {
      const j = next[i];
      if (i < 0 || j < 0 || str[i] === null || str[j] === null) return;
      const r = this.ranks.get(str[i] + "\u0000" + str[j]);
      if (r !== undefined) push([r, i, j, ver[i], ver[j]]);
    };
    for (let i = 0; i + 1 < n; i++) consider(i);
    while (heap.length > 0) {
      const [, i, j, vi, vj] = pop();
      if (!alive[i] || !alive[j] || next[i] !== j || ver[i] !== vi || ver[j] !== vj) continue;
      const merged = this.mergedToken(str[i]!, str[j]!);
      str[i] = merged;
      ids[i] = this.vocab.get(merged)!;
      ver[i]++;
      alive[j] = 0;
      next[i] = next[j];
      if (next[j] >= 0) prev[next[j]] = i;
      if (prev[i] >= 0) consider(prev[i]);
      consider(i);
    }
    const out: number[] = [];
    for (let i = 0; i >= 0; i = next[i]) out.push(ids[i]);
    return out;
  }
}

// ---------------------------------------------------------------------------------------------------------
// Post-processors: ids of one sequence -> ids with special tokens.

type PostProcessor = (ids: number[]) => number[];

function buildPostProcessor(cfg: any): PostProcessor | null {
  if (cfg == null) return null;
  switch (cfg.type) {
    case "ByteLevel":
      return null; // offsets only
    case "TemplateProcessing": {
      const special = (cfg.special_tokens ?? {}) as Record<string, { ids: number[] }>;
      const single = (cfg.single ?? []) as any[];
      const parts: (number[] | "A")[] = single.map((piece) => {
        if (piece.Sequence) {
          if (piece.Sequence.id !== "A") throw new UnsupportedTokenizer(`TemplateProcessing single template uses sequence ${piece.Sequence.id}`);
          return "A";
        }
        if (piece.SpecialToken) {
          const st = special[piece.SpecialToken.id];
          if (!st) throw new UnsupportedTokenizer(`TemplateProcessing special token ${piece.SpecialToken.id} is not defined`);
          return st.ids.slice();
        }
        throw new UnsupportedTokenizer(`TemplateProcessing piece ${JSON.stringify(piece)} is not supported`);
      });
      return (ids) => parts.flatMap((p) => (p === "A" ? ids : p));
    }
    case "Sequence": {
      const procs = (cfg.processors as any[]).map(buildPostProcessor).filter((p): p is PostProcessor => p !== null);
      return (ids) => procs.reduce((acc, p) => p(acc), ids);
    }
    default:
      throw new UnsupportedTokenizer(`post_processor type "${cfg.type}" is not supported`);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Decoders: tokens -> text.

type Decoder = (tokens: string[]) => string;

function byteLevelDecode(tokens: string[]): string {
  let bytes = new Uint8Array(256);
  let n = 0;
  const push = (b: number) => {
    if (n === bytes.length) {
      const grown = new Uint8Array(bytes.length * 2);
      grown.set(bytes);
      bytes = grown;
    }
    bytes[n++] = b;
  };
  for (const t of tokens) {
    let ok = true;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (c >= CODE_TO_BYTE.length || CODE_TO_BYTE[c] < 0) {
        ok = false;
        break;
      }
    }
    // HF: a token with any character outside the byte alphabet contributes its raw UTF-8 bytes.
    if (ok) for (let i = 0; i < t.length; i++) push(CODE_TO_BYTE[t.charCodeAt(i)]);
    else for (const b of utf8.encode(t)) push(b);
  }
  return utf8Lossy.decode(bytes.subarray(0, n));
}

function buildDecoder(cfg: any): Decoder {
  if (cfg == null) return (tokens) => tokens.join(" ");
  switch (cfg.type) {
    case "ByteLevel":
      return byteLevelDecode;
    case "Sequence": {
      const ds = cfg.decoders as any[];
      if (ds.length === 1) return buildDecoder(ds[0]);
      throw new UnsupportedTokenizer(`decoder Sequence of ${ds.map((d) => d.type).join(", ")} is not supported (only a single ByteLevel)`);
    }
    default:
      throw new UnsupportedTokenizer(`decoder type "${cfg.type}" is not supported`);
  }
}

// ---------------------------------------------------------------------------------------------------------

interface Piece {
  text: string;
  added: AddedToken | null;
}

// Rust regex's Unicode \w, which HF uses for single_word boundaries (combining marks count as word chars).
const WORD_CHAR = /[\p{Alphabetic}\p{M}\p{Nd}\p{Pc}\p{Join_Control}]/u;
function isWordChar(c: string | undefined): boolean {
  return c !== undefined && WORD_CHAR.test(c);
}

function lastChar(s: string, end: number): string | undefined {
  if (end <= 0) return undefined;
  const cp = s.codePointAt(end - 2);
  return end >= 2 && cp !== undefined && cp > 0xffff ? String.fromCodePoint(cp) : s[end - 1];
}
function firstChar(s: string, start: number): string | undefined {
  const cp = s.codePointAt(start);
  return cp === undefined ? undefined : String.fromCodePoint(cp);
}

/** Splits `text` on added tokens (leftmost-longest), honouring single_word / lstrip / rstrip. */
function splitOnAdded(text: string, re: RegExp | null, byContent: Map<string, AddedToken>): Piece[] {
  if (!re || text.length === 0) return text.length ? [{ text, added: null }] : [];
  const out: Piece[] = [];
  let prev = 0;
  re.lastIndex = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    const tok = byContent.get(m[0])!;
    let start = m.index, end = start + m[0].length;
    if (tok.singleWord && (isWordChar(lastChar(text, start)) || isWordChar(firstChar(text, end)))) {
      re.lastIndex = m.index + 1;
      continue;
    }
    if (tok.lstrip) while (start > prev && /\s/u.test(text[start - 1])) start--;
    if (tok.rstrip) while (end < text.length && /\s/u.test(text[end])) end++;
    if (start > prev) out.push({ text: text.slice(prev, start), added: null });
    out.push({ text: m[0], added: tok });
    prev = end;
    re.lastIndex = end;
  }
  if (prev < text.length) out.push({ text: text.slice(prev), added: null });
  return out;
}

function addedRegex(tokens: AddedToken[]): RegExp | null {
  if (tokens.length === 0) return null;
  const sorted = tokens.map((t) => t.content).sort((a, b) => b.length - a.length || (a < b ? -1 : 1));
  return new RegExp(sorted.map(escapeRegex).join("|"), "gu");
}

export class Tokenizer {
  private readonly bpe: Bpe;
  private readonly normalizer: Normalizer | null;
  private readonly preTokenizer: PreTokenizer | null;
  private readonly postProcessor: PostProcessor | null;
  private readonly decoder: Decoder;
  private readonly added: AddedToken[];
  private readonly addedById = new Map<number, AddedToken>();
  private readonly addedByContent = new Map<string, AddedToken>();
  private readonly rawAddedRe: RegExp | null;
  private readonly normAddedRe: RegExp | null;
  /** Largest id + 1 over the model vocab and the added tokens. */
  readonly vocabSize: number;

  private constructor(json: any) {
    if (json == null || typeof json !== "object") throw new UnsupportedTokenizer("tokenizer.json is not an object");
    if (json.model == null) throw new UnsupportedTokenizer("tokenizer.json has no model");
    if (json.truncation != null) throw new UnsupportedTokenizer("tokenizer.json truncation is not supported");
    if (json.padding != null) throw new UnsupportedTokenizer("tokenizer.json padding is not supported");
    this.bpe = new Bpe(json.model);
    this.normalizer = buildNormalizer(json.normalizer);
    this.preTokenizer = buildPreTokenizer(json.pre_tokenizer);
    if (!usesByteLevel(json.pre_tokenizer) && json.model.byte_fallback !== true && json.model.unk_token == null) {
      // Without a byte alphabet, text outside the vocab would have no encoding at all.
      throw new UnsupportedTokenizer("BPE without a ByteLevel pre-tokenizer, byte_fallback or unk_token is not supported");
    }
    this.postProcessor = buildPostProcessor(json.post_processor);
    this.decoder = buildDecoder(json.decoder);
    this.added = ((json.added_tokens ?? []) as any[]).map((t) => ({
      id: t.id,
      content: t.content,
      special: t.special === true,
      singleWord: t.single_word === true,
      lstrip: t.lstrip === true,
      rstrip: t.rstrip === true,
      normalized: t.normalized === true,
    }));
    for (const t of this.added) {
      if (!Number.isInteger(t.id) || typeof t.content !== "string" || t.content.length === 0) {
        throw new UnsupportedTokenizer(`bad added token ${JSON.stringify(t)}`);
      }
      this.addedById.set(t.id, t);
      this.addedByContent.set(t.content, t);
    }
    this.rawAddedRe = addedRegex(this.added.filter((t) => !t.normalized || this.normalizer === null));
    this.normAddedRe = this.normalizer ? addedRegex(this.added.filter((t) => t.normalized)) : null;
    let max = -1;
    for (const id of this.bpe.idToToken.keys()) if (id > max) max = id;
    for (const id of this.addedById.keys()) if (id > max) max = id;
    this.vocabSize = max + 1;
  }

  /** Parses a tokenizer.json object (or its JSON text). */
  static fromJSON(json: unknown): Tokenizer {
    return new Tokenizer(typeof json === "string" ? JSON.parse(json) : json);
  }

  static async fromFile(path: string): Promise<Tokenizer> {
    return Tokenizer.fromJSON(JSON.parse(await readFile(path, "utf8")));
  }

  /** HF `tokenizer(text)["input_ids"]`. */
  encode(text: string, opts: EncodeOptions = {}): number[] {
    const ids: number[] = [];
    for (const piece of splitOnAdded(text, this.rawAddedRe, this.addedByContent)) {
      if (piece.added) {
        ids.push(piece.added.id);
        continue;
      }
      const normalized = this.normalizer ? this.normalizer(piece.text) : piece.text;
      for (const sub of splitOnAdded(normalized, this.normAddedRe, this.addedByContent)) {
        if (sub.added) {
          ids.push(sub.added.id);
          continue;
        }
        const words = this.preTokenizer ? this.preTokenizer([sub.text]) : [sub.text];
        for (const w of words) for (const id of this.bpe.tokenize(w)) ids.push(id);
      }
    }
    const add = opts.addSpecialTokens ?? true;
    return add && this.postProcessor ? this.postProcessor(ids) : ids;
  }

  /** HF `decode(ids, skip_special_tokens)`; ids unknown to the tokenizer are dropped, as HF does. */
  decode(ids: ArrayLike<number>, opts: DecodeOptions = {}): string {
    const skip = opts.skipSpecialTokens ?? false;
    const tokens: string[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      const a = this.addedById.get(id);
      if (a) {
        if (!(skip && a.special)) tokens.push(a.content);
        continue;
      }
      const t = this.bpe.idToToken.get(id);
      if (t !== undefined) tokens.push(t);
    }
    return this.decoder(tokens);
  }

  tokenToId(token: string): number | undefined {
    return this.addedByContent.get(token)?.id ?? this.bpe.vocab.get(token);
  }

  idToToken(id: number): string | undefined {
    return this.addedById.get(id)?.content ?? this.bpe.idToToken.get(id);
  }

  isSpecial(id: number): boolean {
    return this.addedById.get(id)?.special === true;
  }

  addedTokens(): readonly AddedToken[] {
    return this.added;
  }
}
