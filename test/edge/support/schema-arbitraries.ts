// fast-check arbitraries from the edge's own OpenAPI document (written by the same zod schemas that validate
// requests): valid-shaped values of a JSON Schema, and mutations of them (wrong types, extra fields, values
// out of range, huge or odd strings, missing required fields) that the route must refuse with a 4xx naming
// the field. Used by test/edge/fuzz.test.ts.
import fc from "fast-check";

export type JsonSchema = {
  $ref?: string;
  type?: string | string[];
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  example?: unknown;
  default?: unknown;
};

export interface OpenApiDoc {
  paths: Record<string, Record<string, { parameters?: { name: string; in: string; schema?: JsonSchema }[]; requestBody?: { content: Record<string, { schema: JsonSchema }> } }>>;
  components: { schemas: Record<string, JsonSchema> };
}

/** Strings that have broken parsers, tokenizers and loggers elsewhere. */
export const ODD_STRINGS = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff\ud800",
  "\u202e\u202dRTL",
  "\u200b\u200c\u200d\ufeff",
  "e\u0301\u0301\u0301\u0301",
  "𝕏😀👩‍👩‍👧‍👦",
  "\r\n\r\n--",
  "%00%E0%A4",
  "../../etc/passwd",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "null",
  "1e309",
  "-0",
  "0x2",
  "NaN",
  "Infinity",
  "__proto__",
  "[standin:fail=internal]",
];

/** URLs no outbound request may go to (with private URLs disallowed every one is refused at once). */
export const HOSTILE_URLS = [
  "http://127.0.0.1/",
  "https://127.0.0.1.nip.io/",
  "https://localhost./x.png",
  "https://[::1]/",
  "https://[::ffff:169.254.169.254]/",
  "https://169.254.169.254/latest/meta-data",
  "https://user:pass@example.com/",
  "https://metadata.google.internal./",
  "javascript:alert(1)",
  "file:///etc/passwd",
  "data:text/plain;base64,AAAA",
  "data:image/png;base64,!!!!",
  "ftp://example.com/",
  "https://0x7f.1/",
];

const oddString = fc.oneof(fc.constantFrom(...ODD_STRINGS), fc.string({ unit: "binary", maxLength: 64 }), fc.string({ unit: "grapheme", maxLength: 64 }));

function deref(doc: OpenApiDoc, s: JsonSchema): JsonSchema {
  let cur = s;
  for (let i = 0; cur.$ref && i < 10; i++) cur = doc.components.schemas[cur.$ref.replace("#/components/schemas/", "")];
  return cur;
}

/** Per-field hints: values that are likely to pass the route's checks past the schema, mixed with the schema's. */
export type Hints = Record<string, fc.Arbitrary<unknown>>;

/** A value of schema `s` (valid-shaped: it passes the schema's own constraints, not necessarily the route's others). */
export function valueOf(doc: OpenApiDoc, s0: JsonSchema, hints: Hints = {}, depth = 0, name?: string): fc.Arbitrary<unknown> {
  const s = deref(doc, s0);
  const generic = genericValue(doc, s, hints, depth);
  // a hint is used only where it fits this schema (`n` is 1-4 on images but exactly 1 on chat)
  const hint = name !== undefined ? hints[name]?.filter((v) => fits(doc, s, v)) : undefined;
  return hint ? fc.oneof({ arbitrary: hint, weight: 6 }, { arbitrary: generic, weight: 1 }) : generic;
}

const typeOf = (v: unknown): string => (v === null ? "null" : Array.isArray(v) ? "array" : Number.isInteger(v) ? "integer" : typeof v);

/** The JSON types a schema admits, unions included. */
function typesOf(doc: OpenApiDoc, s0: JsonSchema): Set<string> {
  const s = deref(doc, s0);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return new Set(alternatives.flatMap((a) => [...typesOf(doc, a)]));
  if (s.enum) return new Set(s.enum.map(typeOf).flatMap((t) => (t === "integer" ? ["integer", "number"] : [t])));
  const t = s.type === undefined ? ["string", "number", "integer", "boolean", "array", "object", "null"] : Array.isArray(s.type) ? s.type : [s.type];
  return new Set(t.includes("number") ? [...t, "integer"] : t);
}

/** Whether `v` meets `s`'s own constraints (the ones a hint could break). */
function fits(doc: OpenApiDoc, s0: JsonSchema, v: unknown): boolean {
  const s = deref(doc, s0);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return alternatives.some((a) => fits(doc, a, v));
  if (s.enum && !s.enum.includes(v)) return false;
  if (!typesOf(doc, s).has(typeOf(v))) return false;
  if (typeof v === "number" && ((s.minimum !== undefined && v < s.minimum) || (s.maximum !== undefined && v > s.maximum))) return false;
  if (typeof v === "string" && ((s.minLength !== undefined && v.length < s.minLength) || (s.maxLength !== undefined && v.length > s.maxLength) || (s.pattern && !new RegExp(s.pattern).test(v)))) return false;
  if (Array.isArray(v) && s.items) return v.every((x) => fits(doc, s.items!, x)) && v.length >= (s.minItems ?? 0) && v.length <= (s.maxItems ?? Infinity);
  return true;
}

function genericValue(doc: OpenApiDoc, s: JsonSchema, hints: Hints, depth: number): fc.Arbitrary<unknown> {
  if (s.const !== undefined) return fc.constant(s.const);
  if (s.enum) return fc.constantFrom(...s.enum);
  const alternatives = s.anyOf ?? s.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((a) => valueOf(doc, a, hints, depth + 1)));
  if (s.allOf) return valueOf(doc, s.allOf[0], hints, depth + 1);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "string": {
      if (s.format === "binary") return fc.constant("binary");
      if (s.format === "uri") return fc.constantFrom(...HOSTILE_URLS);
      if (s.pattern) {
        const re = new RegExp(s.pattern);
        const matching = fc.stringMatching(re).filter((v) => v.length <= (s.maxLength ?? 1e9));
        return s.example !== undefined ? fc.oneof(matching, fc.constant(s.example)) : matching;
      }
      const min = s.minLength ?? 0;
      const max = Math.max(min, Math.min(s.maxLength ?? 48, 48));
      return fc.oneof(fc.string({ minLength: min, maxLength: max }), fc.constantFrom(...ODD_STRINGS).filter((v) => v.length >= min && v.length <= max));
    }
    case "integer":
    case "number": {
      const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? s.exclusiveMinimum + (type === "integer" ? 1 : 1e-6) : -1e6);
      const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? s.exclusiveMaximum - (type === "integer" ? 1 : 1e-6) : 1e6);
      if (type === "integer") return fc.oneof(fc.constantFrom(lo, hi), fc.integer({ min: Math.max(lo, Number.MIN_SAFE_INTEGER), max: Math.min(hi, Number.MAX_SAFE_INTEGER) }));
      return fc.oneof(fc.constantFrom(lo, hi), fc.double({ min: lo, max: hi, noNaN: true, noDefaultInfinity: true }));
    }
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      if (depth > 5 || !s.items) return fc.constant([]);
      return fc.array(valueOf(doc, s.items, hints, depth + 1), { minLength: s.minItems ?? 0, maxLength: Math.max(s.minItems ?? 0, Math.min(s.maxItems ?? 3, 3)) });
    }
    case "object":
    default: {
      if (!s.properties) return fc.constant({});
      const props: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, v] of Object.entries(s.properties)) props[k] = valueOf(doc, v, hints, depth + 1, k);
      return fc.record(props, { requiredKeys: (s.required ?? []).filter((k) => k in props) });
    }
  }
}

/** One way to spoil a valid-shaped object; `field` names the top-level field at fault, when one is. */
export type Mutation =
  | { kind: "wrong_type"; field: string; value: unknown }
  | { kind: "out_of_range"; field: string; value: unknown }
  | { kind: "huge_string"; field: string; value: string }
  | { kind: "odd_string"; field: string; value: string }
  | { kind: "drop_required"; field: string }
  | { kind: "extra_fields"; extra: Record<string, unknown> }
  | { kind: "not_an_object"; value: unknown };

/** A value of a JSON type the schema does not admit at all. */
const wrongTypeFor = (doc: OpenApiDoc, s: JsonSchema): fc.Arbitrary<unknown> => {
  const t = typesOf(doc, s);
  const all: fc.Arbitrary<unknown>[] = [];
  if (!t.has("string")) all.push(fc.constantFrom("1", "true", "", "x"));
  if (!t.has("number") && !t.has("integer")) all.push(fc.constantFrom(0, 1, -1, 3.5));
  if (!t.has("boolean")) all.push(fc.constant(true));
  if (!t.has("array")) all.push(fc.constant([1, "a"]));
  if (!t.has("object")) all.push(fc.constant({ a: 1 }));
  if (!t.has("null")) all.push(fc.constant(null));
  return all.length ? fc.oneof(...all) : fc.constant(Symbol.for("none"));
};

const outOfRange = (s: JsonSchema): fc.Arbitrary<unknown> | undefined => {
  const t = Array.isArray(s.type) ? s.type[0] : s.type;
  if (t === "integer" || t === "number") {
    const vals: unknown[] = [1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, -0.000001];
    if (s.minimum !== undefined) vals.push(s.minimum - 1);
    if (s.maximum !== undefined) vals.push(s.maximum + 1);
    if (t === "integer") vals.push(1.5);
    return fc.constantFrom(...vals);
  }
  if (t === "string" && s.maxLength !== undefined && s.maxLength < 100_000) return fc.constant("x".repeat(s.maxLength + 1));
  if (t === "string" && s.enum) return fc.constant(`${String(s.enum[0])}-not`);
  return undefined;
};

/** A mutation of an object of schema `s` (its top-level fields). */
export function mutationOf(doc: OpenApiDoc, s0: JsonSchema): fc.Arbitrary<Mutation> {
  const s = deref(doc, s0);
  const fields = Object.keys(s.properties ?? {}).filter((k) => deref(doc, s.properties![k]).format !== "binary");
  const prop = (k: string) => deref(doc, s.properties![k]);
  const options: fc.Arbitrary<Mutation>[] = [
    fc.record({ kind: fc.constant("extra_fields" as const), extra: fc.dictionary(fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom("__proto__", "constructor", "prototype", "")), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) }),
    fc.record({ kind: fc.constant("not_an_object" as const), value: fc.constantFrom(null, 1, "body", [], [{}], true) }),
  ];
  if (fields.length) {
    const field = fc.constantFrom(...fields);
    options.push(field.chain((f) => wrongTypeFor(doc, prop(f)).filter((v) => v !== Symbol.for("none")).map((value) => ({ kind: "wrong_type" as const, field: f, value }))));
    options.push(field.chain((f) => fc.oneof(fc.constant(`x`), oddString).map((value) => ({ kind: "odd_string" as const, field: f, value }))));
    options.push(field.map((f) => ({ kind: "huge_string" as const, field: f, value: "𝕏".repeat(40_000) })));
    const ranged = fields.filter((f) => outOfRange(prop(f)));
    if (ranged.length) options.push(fc.constantFrom(...ranged).chain((f) => outOfRange(prop(f))!.map((value) => ({ kind: "out_of_range" as const, field: f, value }))));
  }
  const required = (s.required ?? []).filter((k) => fields.includes(k));
  if (required.length) options.push(fc.constantFrom(...required).map((field) => ({ kind: "drop_required" as const, field })));
  return fc.oneof(...options);
}

/** `base` with `m` applied. */
export function applyMutation(base: unknown, m: Mutation): unknown {
  if (m.kind === "not_an_object") return m.value;
  const out = { ...(base as Record<string, unknown>) };
  if (m.kind === "drop_required") {
    delete out[m.field];
  } else if (m.kind === "extra_fields") {
    // own properties, "__proto__" included, so that JSON.stringify writes them
    for (const [k, v] of Object.entries(m.extra)) {
      if (!Object.hasOwn(out, k)) Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  } else {
    out[m.field] = m.value;
  }
  return out;
}
