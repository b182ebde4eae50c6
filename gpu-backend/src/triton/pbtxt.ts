// Protobuf text format (what Triton's config.pbtxt is), read by the embedded backend and by the repository
// builder: a tokenizer and parser into a generic tree, a schema-driven conversion to a plain object using
// the protobufjs reflection of proto/triton, so repeated vs. singular fields, maps, enums and 64-bit
// integers come out right, and a schema-free field view for reading back configs we generate (the
// writer is pbtxt-writer.ts). Supported: nested messages with
// `{}` or `<>`, `field: value` and `field value` for messages, repeated fields as `[a, b]` lists and as
// repeated entries, map fields as repeated `{ key: .. value: .. }` entries, enums by name or number,
// single- and double-quoted strings with C and \u/\U escapes (adjacent strings concatenate), integers (decimal, hex,
// octal), floats (incl. 1e-3, 1.5f, inf, nan), booleans (true/false/t/f/True/False/1/0), `#` comments and
// optional `,`/`;` separators.

import protobuf from "protobufjs";
import { MODEL_CONFIG_PROTO } from "./proto";

export class PbtxtError extends Error {
  override name = "PbtxtError";
  constructor(
    message: string,
    readonly line: number,
    readonly col: number,
  ) {
    super(`${message} (line ${line}, column ${col})`);
  }
}

type TokKind = "ident" | "str" | "num" | "punct";
interface Tok {
  kind: TokKind;
  text: string; // for str: decoded value
  line: number;
  col: number;
}

const PUNCT = new Set(["{", "}", "[", "]", "<", ">", ":", ",", ";", "-"]);

function decodeEscapes(raw: string, line: number, col: number): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i];
    if (c !== "\\") {
      out += c;
      continue;
    }
    const n = raw[++i];
    switch (n) {
      case "n":
        out += "\n";
        break;
      case "t":
        out += "\t";
        break;
      case "r":
        out += "\r";
        break;
      case "a":
        out += "\x07";
        break;
      case "b":
        out += "\b";
        break;
      case "f":
        out += "\f";
        break;
      case "v":
        out += "\v";
        break;
      case "\\":
      case "'":
      case '"':
      case "?":
        out += n;
        break;
      case "u":
      case "U": {
        const len = n === "u" ? 4 : 8;
        const hex = raw.slice(i + 1, i + 1 + len);
        if (!new RegExp(`^[0-9a-fA-F]{${len}}$`).test(hex)) throw new PbtxtError(`invalid \\${n} escape`, line, col);
        out += String.fromCodePoint(parseInt(hex, 16));
        i += len;
        break;
      }
      case "x": {
        const m = /^[0-9a-fA-F]{1,2}/.exec(raw.slice(i + 1));
        if (!m) throw new PbtxtError("invalid \\x escape", line, col);
        out += String.fromCharCode(parseInt(m[0], 16));
        i += m[0].length;
        break;
      }
      default: {
        const m = /^[0-7]{1,3}/.exec(raw.slice(i));
        if (!m) throw new PbtxtError(`invalid escape \\${n}`, line, col);
        out += String.fromCharCode(parseInt(m[0], 8));
        i += m[0].length - 1;
      }
    }
  }
  return out;
}

export function tokenize(text: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  let line = 1;
  let lineStart = 0;
  while (i < text.length) {
    const c = text[i];
    const col = i - lineStart + 1;
    if (c === "\n") {
      line++;
      i++;
      lineStart = i;
      continue;
    }
    if (c === " " || c === "\t" || c === "\r" || c === "\f" || c === "\v") {
      i++;
      continue;
    }
    if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < text.length && text[j] !== c) {
        if (text[j] === "\\") j++;
        if (text[j] === "\n") throw new PbtxtError("unterminated string", line, col);
        j++;
      }
      if (j >= text.length) throw new PbtxtError("unterminated string", line, col);
      toks.push({ kind: "str", text: decodeEscapes(text.slice(i + 1, j), line, col), line, col });
      i = j + 1;
      continue;
    }
    const num = /^(?:0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[fF]?)/.exec(text.slice(i, i + 64));
    if (num && /[0-9.]/.test(c)) {
      toks.push({ kind: "num", text: num[0], line, col });
      i += num[0].length;
      continue;
    }
    const id = /^[A-Za-z_][A-Za-z0-9_.]*/.exec(text.slice(i, i + 256));
    if (id) {
      toks.push({ kind: "ident", text: id[0], line, col });
      i += id[0].length;
      continue;
    }
    if (PUNCT.has(c)) {
      toks.push({ kind: "punct", text: c, line, col });
      i++;
      continue;
    }
    throw new PbtxtError(`unexpected character '${c}'`, line, col);
  }
  return toks;
}

// ---- generic tree ---------------------------------------------------------------------------------------

export type PbScalarNode =
  | { kind: "str"; value: string; line: number; col: number }
  | { kind: "num"; value: string; line: number; col: number } // text, possibly with a leading "-"
  | { kind: "ident"; value: string; line: number; col: number }; // enum names, true/false, inf/nan

export interface PbMessageNode {
  kind: "msg";
  entries: PbEntry[];
  line: number;
  col: number;
}

export type PbValueNode = PbScalarNode | PbMessageNode;

export interface PbEntry {
  name: string;
  value: PbValueNode;
  line: number;
  col: number;
}

class Parser {
  private pos = 0;
  constructor(private readonly toks: Tok[]) {}

  private peek(): Tok | undefined {
    return this.toks[this.pos];
  }

  private fail(msg: string, t = this.peek()): never {
    const last = this.toks[this.toks.length - 1];
    throw new PbtxtError(t ? `${msg}, found '${t.text}'` : `${msg}, found end of input`, t?.line ?? last?.line ?? 1, t?.col ?? last?.col ?? 1);
  }

  private isPunct(p: string, t = this.peek()): boolean {
    return t !== undefined && t.kind === "punct" && t.text === p;
  }

  private expectPunct(p: string): Tok {
    const t = this.peek();
    if (!this.isPunct(p, t)) this.fail(`expected '${p}'`);
    this.pos++;
    return t as Tok;
  }

  parseMessage(close?: string): PbEntry[] {
    const entries: PbEntry[] = [];
    for (;;) {
      const t = this.peek();
      if (t === undefined) {
        if (close) this.fail(`expected '${close}'`);
        return entries;
      }
      if (close && this.isPunct(close, t)) {
        this.pos++;
        return entries;
      }
      if (t.kind === "punct" && t.text === "[") this.fail("extension and Any fields are not supported");
      if (t.kind !== "ident") this.fail("expected a field name");
      this.pos++;
      const name = t.text;
      let colon = false;
      if (this.isPunct(":")) {
        this.pos++;
        colon = true;
      }
      const next = this.peek();
      if (this.isPunct("[", next)) {
        this.pos++;
        if (this.isPunct("]")) this.pos++;
        else {
          for (;;) {
            entries.push({ name, value: this.parseValue(true), line: t.line, col: t.col });
            if (this.isPunct(",")) {
              this.pos++;
              continue;
            }
            this.expectPunct("]");
            break;
          }
        }
      } else if (this.isPunct("{", next) || this.isPunct("<", next)) {
        entries.push({ name, value: this.parseValue(true), line: t.line, col: t.col });
      } else {
        if (!colon) this.fail(`expected ':' after field name '${name}'`);
        entries.push({ name, value: this.parseValue(false), line: t.line, col: t.col });
      }
      if (this.isPunct(",") || this.isPunct(";")) this.pos++;
    }
  }

  private parseValue(allowMessage: boolean): PbValueNode {
    const t = this.peek();
    if (t === undefined) this.fail("expected a value");
    if (t.kind === "punct" && (t.text === "{" || t.text === "<")) {
      if (!allowMessage) this.fail("unexpected message value");
      this.pos++;
      const entries = this.parseMessage(t.text === "{" ? "}" : ">");
      return { kind: "msg", entries, line: t.line, col: t.col };
    }
    if (t.kind === "str") {
      let value = "";
      while (this.peek()?.kind === "str") value += (this.toks[this.pos++] as Tok).text;
      return { kind: "str", value, line: t.line, col: t.col };
    }
    if (t.kind === "punct" && t.text === "-") {
      this.pos++;
      const n = this.peek();
      if (n?.kind === "num") {
        this.pos++;
        return { kind: "num", value: `-${n.text}`, line: t.line, col: t.col };
      }
      if (n?.kind === "ident" && /^(inf|infinity|nan)$/i.test(n.text)) {
        this.pos++;
        return { kind: "ident", value: `-${n.text}`, line: t.line, col: t.col };
      }
      this.fail("expected a number after '-'");
    }
    if (t.kind === "num") {
      this.pos++;
      return { kind: "num", value: t.text, line: t.line, col: t.col };
    }
    if (t.kind === "ident") {
      this.pos++;
      return { kind: "ident", value: t.text, line: t.line, col: t.col };
    }
    this.fail("expected a value");
  }
}

/** Parses text format into a generic tree (no schema). */
export function parsePbtxt(text: string): PbMessageNode {
  const entries = new Parser(tokenize(text)).parseMessage();
  return { kind: "msg", entries, line: 1, col: 1 };
}

// ---- schema-driven conversion ---------------------------------------------------------------------------

const INT32_TYPES = new Set(["int32", "sint32", "sfixed32"]);
const UINT32_TYPES = new Set(["uint32", "fixed32"]);
const INT64_TYPES = new Set(["int64", "sint64", "sfixed64"]);
const UINT64_TYPES = new Set(["uint64", "fixed64"]);

function parseInteger(node: PbScalarNode, field: string): number {
  if (node.kind !== "num") throw new PbtxtError(`expected an integer for field '${field}', found '${node.value}'`, node.line, node.col);
  const neg = node.value.startsWith("-");
  const body = neg ? node.value.slice(1) : node.value;
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(body)) v = parseInt(body, 16);
  else if (/^0[0-7]+$/.test(body)) v = parseInt(body, 8);
  else if (/^\d+$/.test(body)) v = Number(body);
  else throw new PbtxtError(`expected an integer for field '${field}', found '${node.value}'`, node.line, node.col);
  v = neg ? -v : v;
  if (!Number.isSafeInteger(v)) throw new PbtxtError(`integer out of range for field '${field}': ${node.value}`, node.line, node.col);
  return v;
}

function parseFloatValue(node: PbScalarNode, field: string): number {
  if (node.kind === "ident") {
    const s = node.value.toLowerCase();
    if (s === "inf" || s === "infinity") return Infinity;
    if (s === "-inf" || s === "-infinity") return -Infinity;
    if (s === "nan" || s === "-nan") return NaN;
  }
  if (node.kind === "num") {
    const body = node.value.replace(/[fF]$/, "");
    const v = /^-?0[xX]/.test(body) ? parseInteger({ ...node, value: body }, field) : Number(body);
    if (!Number.isNaN(v)) return v;
  }
  throw new PbtxtError(`expected a number for field '${field}', found '${node.value}'`, node.line, node.col);
}

function parseBool(node: PbScalarNode, field: string): boolean {
  const v = node.value;
  if (v === "true" || v === "True" || v === "t" || v === "1") return true;
  if (v === "false" || v === "False" || v === "f" || v === "0") return false;
  throw new PbtxtError(`expected a boolean for field '${field}', found '${v}'`, node.line, node.col);
}

function convertScalar(field: protobuf.Field, node: PbValueNode): unknown {
  if (node.kind === "msg") {
    if (field.resolvedType instanceof protobuf.Type) return convertMessage(field.resolvedType, node);
    throw new PbtxtError(`field '${field.name}' is not a message`, node.line, node.col);
  }
  if (field.resolvedType instanceof protobuf.Type) {
    throw new PbtxtError(`expected '{' for message field '${field.name}'`, node.line, node.col);
  }
  if (field.resolvedType instanceof protobuf.Enum) {
    const e = field.resolvedType;
    if (node.kind === "ident") {
      if (!(node.value in e.values)) {
        throw new PbtxtError(`unknown enum value '${node.value}' for field '${field.name}' (${e.name})`, node.line, node.col);
      }
      return node.value;
    }
    const n = parseInteger(node, field.name);
    const name = e.valuesById[n];
    if (name === undefined) throw new PbtxtError(`unknown enum number ${n} for field '${field.name}'`, node.line, node.col);
    return name;
  }
  const t = field.type;
  if (t === "string") {
    if (node.kind !== "str") throw new PbtxtError(`expected a string for field '${field.name}', found '${node.value}'`, node.line, node.col);
    return node.value;
  }
  if (t === "bytes") {
    if (node.kind !== "str") throw new PbtxtError(`expected a string for field '${field.name}'`, node.line, node.col);
    return Buffer.from(node.value, "latin1");
  }
  if (t === "bool") return parseBool(node, field.name);
  if (t === "float" || t === "double") return parseFloatValue(node, field.name);
  const v = parseInteger(node, field.name);
  if ((UINT32_TYPES.has(t) || UINT64_TYPES.has(t)) && v < 0) {
    throw new PbtxtError(`negative value for unsigned field '${field.name}'`, node.line, node.col);
  }
  if ((INT32_TYPES.has(t) && (v < -2147483648 || v > 2147483647)) || (UINT32_TYPES.has(t) && v > 4294967295)) {
    throw new PbtxtError(`integer out of range for field '${field.name}': ${v}`, node.line, node.col);
  }
  if (!INT32_TYPES.has(t) && !UINT32_TYPES.has(t) && !INT64_TYPES.has(t) && !UINT64_TYPES.has(t)) {
    throw new PbtxtError(`unsupported field type ${t}`, node.line, node.col);
  }
  return v;
}

function mapKey(field: protobuf.MapField, node: PbValueNode | undefined, entry: PbEntry): string {
  if (!node) throw new PbtxtError(`map entry for '${field.name}' has no key`, entry.line, entry.col);
  if (node.kind === "msg") throw new PbtxtError(`map key of '${field.name}' must be a scalar`, node.line, node.col);
  if (field.keyType === "string") {
    if (node.kind !== "str") throw new PbtxtError(`expected a string key for '${field.name}'`, node.line, node.col);
    return node.value;
  }
  if (field.keyType === "bool") return String(parseBool(node, field.name));
  return String(parseInteger(node, field.name));
}

/** Converts a parsed message to a plain object of `type`, checking every field against the schema. */
export function convertMessage(type: protobuf.Type, msg: PbMessageNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const oneofSeen = new Map<string, string>();
  for (const e of msg.entries) {
    const field = type.fields[e.name];
    if (!field) throw new PbtxtError(`unknown field '${e.name}' in ${type.fullName.replace(/^\./, "")}`, e.line, e.col);
    field.resolve();
    if (field.partOf) {
      const other = oneofSeen.get(field.partOf.name);
      if (other !== undefined && other !== e.name) {
        throw new PbtxtError(`field '${e.name}' is specified along with field '${other}', another member of oneof '${field.partOf.name}'`, e.line, e.col);
      }
      oneofSeen.set(field.partOf.name, e.name);
    }
    if (field instanceof protobuf.MapField) {
      if (e.value.kind !== "msg") throw new PbtxtError(`expected '{' for map field '${e.name}'`, e.line, e.col);
      const key = e.value.entries.find((x) => x.name === "key");
      const valueEntry = e.value.entries.find((x) => x.name === "value");
      for (const x of e.value.entries) {
        if (x.name !== "key" && x.name !== "value") throw new PbtxtError(`unknown field '${x.name}' in map entry '${e.name}'`, x.line, x.col);
      }
      const k = mapKey(field, key?.value, e);
      let v: unknown;
      if (field.resolvedType instanceof protobuf.Type) {
        v = valueEntry ? convertScalar(field, valueEntry.value) : {};
      } else {
        if (!valueEntry) throw new PbtxtError(`map entry '${e.name}' has no value`, e.line, e.col);
        v = convertScalar(field, valueEntry.value);
      }
      const m = (out[e.name] ??= {}) as Record<string, unknown>;
      m[k] = v;
    } else if (field.repeated) {
      ((out[e.name] ??= []) as unknown[]).push(convertScalar(field, e.value));
    } else {
      if (e.name in out) throw new PbtxtError(`non-repeated field '${e.name}' is specified multiple times`, e.line, e.col);
      out[e.name] = convertScalar(field, e.value);
    }
  }
  return out;
}

let root: protobuf.Root | undefined;

/** The protobufjs reflection of proto/triton/model_config.proto (package inference). */
export function modelConfigRoot(): protobuf.Root {
  if (!root) {
    root = new protobuf.Root();
    root.loadSync(MODEL_CONFIG_PROTO, { keepCase: true });
    root.resolveAll();
  }
  return root;
}

export const TO_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  objects: true,
  oneofs: true,
};

/**
 * Parses text format as message `typeName` (default inference.ModelConfig) into the plain-object form the
 * client's ModelConfig RPC returns: snake_case fields, enums as names, 64-bit integers as numbers, proto3
 * defaults filled in.
 */
export function parseTextProto(text: string, typeName = "inference.ModelConfig"): Record<string, unknown> {
  const type = modelConfigRoot().lookupType(typeName);
  const obj = convertMessage(type, parsePbtxt(text));
  return type.toObject(type.fromObject(obj), TO_OBJECT_OPTIONS);
}

// ---- schema-free field view -----------------------------------------------------------------------------

/** An enum value, written bare (TYPE_INT64, KIND_GPU). */
export interface PbEnum {
  enum: string;
}

export const pbEnum = (name: string): PbEnum => ({ enum: name });

export function isPbEnum(v: unknown): v is PbEnum {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as PbEnum).enum === "string" && Object.keys(v).length === 1;
}

/** A message read without a schema: every field maps to the list of its occurrences. */
export interface PbParsed {
  [field: string]: Array<string | number | boolean | PbEnum | PbParsed>;
}

// Without a schema a bare identifier can only be told apart from a boolean by its spelling, so the
// one-letter and numeric boolean forms the schema accepts stay enums or numbers here.
function fieldValue(node: PbValueNode, field: string): string | number | boolean | PbEnum | PbParsed {
  switch (node.kind) {
    case "msg":
      return pbFields(node);
    case "str":
      return node.value;
    case "num":
      return /^-?(\d+|0[xX][0-9a-fA-F]+)$/.test(node.value) ? parseInteger(node, field) : parseFloatValue(node, field);
    case "ident":
      if (node.value === "true" || node.value === "True") return true;
      if (node.value === "false" || node.value === "False") return false;
      return pbEnum(node.value);
  }
}

/** The fields of a parsed message, in the order they first appear. */
export function pbFields(msg: PbMessageNode): PbParsed {
  const out: PbParsed = {};
  for (const e of msg.entries) (out[e.name] ??= []).push(fieldValue(e.value, e.name));
  return out;
}

/** Parses text format into the schema-free field view. */
export function parsePbtxtFields(text: string): PbParsed {
  return pbFields(parsePbtxt(text));
}

/** The single value of a field (throws when repeated), or undefined. */
export function pbOne<T = string | number | boolean | PbEnum | PbParsed>(m: PbParsed, field: string): T | undefined {
  const v = m[field];
  if (!v || v.length === 0) return undefined;
  if (v.length > 1) throw new Error(`pbtxt: field ${field} is repeated`);
  return v[0] as T;
}

/** Enum name or scalar as text. */
export function pbText(v: unknown): string {
  return isPbEnum(v) ? v.enum : String(v);
}
