// Protobuf text format (what Triton's config.pbtxt is) for the subset model configs use: a writer from
// plain objects and a small parser (tests and build checks read generated configs back).

/** An enum value, written bare (TYPE_INT64, KIND_GPU). */
export interface PbEnum {
  enum: string;
}
export type PbScalar = string | number | boolean | PbEnum;
export type PbValue = PbScalar | PbMessage | PbScalar[] | PbMessage[];
export interface PbMessage {
  [field: string]: PbValue | undefined;
}

export const pbEnum = (name: string): PbEnum => ({ enum: name });

function isEnum(v: unknown): v is PbEnum {
  return typeof v === "object" && v !== null && !Array.isArray(v) && typeof (v as PbEnum).enum === "string" && Object.keys(v).length === 1;
}

function isMessage(v: unknown): v is PbMessage {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !isEnum(v);
}

function scalar(v: PbScalar): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "boolean") return v ? "true" : "false";
  if (typeof v === "number") {
    if (!Number.isFinite(v)) throw new Error(`pbtxt: non-finite number ${v}`);
    return String(v);
  }
  return v.enum;
}

/**
 * Writes a message. Repeated messages use the list form `field [ {...}, {...} ]`, except map entries
 * (messages with a `key` field), which are written as repeated `field { key: ... value ... }` blocks, the
 * form Triton's documentation uses for `parameters` and warmup `inputs`.
 */
export function toPbtxt(msg: PbMessage, indent = ""): string {
  const lines: string[] = [];
  const inner = indent + "  ";
  for (const [field, v] of Object.entries(msg)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      if (v.length === 0) continue;
      if (v.every((x) => isMessage(x))) {
        const msgs = v as PbMessage[];
        if (msgs.every((m) => "key" in m)) {
          for (const m of msgs) lines.push(`${indent}${field} {`, toPbtxt(m, inner), `${indent}}`);
        } else {
          lines.push(`${indent}${field} [`);
          msgs.forEach((m, i) => lines.push(`${inner}{`, toPbtxt(m, inner + "  "), `${inner}}${i < msgs.length - 1 ? "," : ""}`));
          lines.push(`${indent}]`);
        }
      } else {
        lines.push(`${indent}${field}: [ ${(v as PbScalar[]).map(scalar).join(", ")} ]`);
      }
    } else if (isMessage(v)) {
      lines.push(`${indent}${field} {`, toPbtxt(v, inner), `${indent}}`);
    } else {
      lines.push(`${indent}${field}: ${scalar(v)}`);
    }
  }
  return lines.filter((l) => l !== "").join("\n");
}

// ---- parser ----------------------------------------------------------------------------------------

/** Parsed message: every field maps to the list of its occurrences (scalars as string/number/boolean, enums as PbEnum). */
export interface PbParsed {
  [field: string]: Array<string | number | boolean | PbEnum | PbParsed>;
}

type Tok = { t: "id" | "str" | "num" | "p"; v: string; pos: number };

function tokenize(text: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "#") {
      while (i < text.length && text[i] !== "\n") i++;
    } else if (/\s/.test(c)) i++;
    else if ("{}[]:,;<>".includes(c)) out.push({ t: "p", v: c, pos: i++ });
    else if (c === '"' || c === "'") {
      let j = i + 1;
      let s = "";
      while (j < text.length && text[j] !== c) {
        if (text[j] === "\\") {
          const n = text[++j];
          s += n === "n" ? "\n" : n === "t" ? "\t" : n;
        } else s += text[j];
        j++;
      }
      if (j >= text.length) throw new Error(`pbtxt: unterminated string at ${i}`);
      out.push({ t: "str", v: s, pos: i });
      i = j + 1;
    } else {
      const m = /^[-+]?[A-Za-z0-9_.]+/.exec(text.slice(i));
      if (!m) throw new Error(`pbtxt: unexpected character ${JSON.stringify(c)} at ${i}`);
      const v = m[0];
      out.push({ t: /^[-+]?(\d|\.\d)/.test(v) ? "num" : "id", v, pos: i });
      i += v.length;
    }
  }
  return out;
}

export function parsePbtxt(text: string): PbParsed {
  const toks = tokenize(text);
  let i = 0;
  const peek = () => toks[i];
  const expect = (v: string) => {
    const t = toks[i++];
    if (!t || t.v !== v) throw new Error(`pbtxt: expected '${v}' at ${t ? t.pos : "end"}`);
  };
  const scalarOf = (t: Tok): string | number | boolean | PbEnum => {
    if (t.t === "str") return t.v;
    if (t.t === "num") return Number(t.v);
    if (t.v === "true" || t.v === "True") return true;
    if (t.v === "false" || t.v === "False") return false;
    return { enum: t.v };
  };
  const message = (close: string | null): PbParsed => {
    const m: PbParsed = {};
    for (;;) {
      const t = peek();
      if (!t) {
        if (close) throw new Error(`pbtxt: missing '${close}'`);
        return m;
      }
      if (close && t.v === close && t.t === "p") {
        i++;
        return m;
      }
      if (t.t !== "id") throw new Error(`pbtxt: expected a field name at ${t.pos}`);
      i++;
      const field = t.v;
      const vals = (m[field] ??= []);
      if (peek()?.v === ":") i++;
      const v = peek();
      if (!v) throw new Error(`pbtxt: missing value for ${field}`);
      if (v.v === "{" || v.v === "<") {
        i++;
        vals.push(message(v.v === "{" ? "}" : ">"));
      } else if (v.v === "[") {
        i++;
        while (peek() && peek().v !== "]") {
          const e = peek();
          if (e.v === "{" || e.v === "<") {
            i++;
            vals.push(message(e.v === "{" ? "}" : ">"));
          } else vals.push(scalarOf(toks[i++]));
          if (peek()?.v === ",") i++;
        }
        expect("]");
      } else {
        vals.push(scalarOf(toks[i++]));
      }
      if (peek()?.v === "," || peek()?.v === ";") i++;
    }
  };
  return message(null);
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
  return isEnum(v) ? v.enum : String(v);
}
