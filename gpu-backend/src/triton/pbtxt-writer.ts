// Writes protobuf text format (what Triton's config.pbtxt is) from plain objects, for the subset model
// configs use; the repository builder generates every config.pbtxt with it. pbtxt.ts reads it back.

import { isPbEnum, type PbEnum } from "./pbtxt";

export type PbScalar = string | number | boolean | PbEnum;
export type PbValue = PbScalar | PbMessage | PbScalar[] | PbMessage[];
export interface PbMessage {
  [field: string]: PbValue | undefined;
}

function isMessage(v: unknown): v is PbMessage {
  return typeof v === "object" && v !== null && !Array.isArray(v) && !isPbEnum(v);
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
