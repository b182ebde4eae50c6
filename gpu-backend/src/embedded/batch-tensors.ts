// Raw tensors as batching needs them: requests concatenated along the batch dimension for one execution
// and the outputs split back per request, and zero-filled tensors for warmup and initial sequence state.

import { ELEMENT_SIZE, elementCount, type DataType } from "../triton/datatypes";
import { Status } from "../triton/errors";
import type { RawTensor } from "./executor";
import { RpcError } from "./request";

/** Concatenates tensors along dimension 0 (raw row-major bytes concatenate; BYTES elements too). */
export function concatBatch(parts: RawTensor[]): RawTensor {
  if (parts.length === 1) return parts[0];
  let total = 0;
  let rows = 0;
  for (const p of parts) {
    total += p.raw.byteLength;
    rows += p.shape[0];
  }
  const raw = new Uint8Array(total);
  let pos = 0;
  for (const p of parts) {
    raw.set(p.raw, pos);
    pos += p.raw.byteLength;
  }
  return { datatype: parts[0].datatype, shape: [rows, ...parts[0].shape.slice(1)], raw };
}

/** Splits a batched output into per-request slices of `sizes` rows (views, no copies). */
export function splitBatch(t: RawTensor, sizes: number[], name: string): RawTensor[] {
  const total = sizes.reduce((a, b) => a + b, 0);
  if (sizes.length === 1) return [t];
  if (t.shape.length === 0 || t.shape[0] !== total) {
    throw new RpcError(Status.INTERNAL, `output '${name}' has shape [${t.shape.join(",")}], expected a batch dimension of ${total}`);
  }
  const rest = t.shape.slice(1);
  const perRow = elementCount(rest);
  const out: RawTensor[] = [];
  if (t.datatype === "BYTES") {
    const dv = new DataView(t.raw.buffer, t.raw.byteOffset, t.raw.byteLength);
    let pos = 0;
    for (const s of sizes) {
      const start = pos;
      for (let e = 0; e < s * perRow; e++) pos += 4 + dv.getUint32(pos, true);
      out.push({ datatype: t.datatype, shape: [s, ...rest], raw: t.raw.subarray(start, pos) });
    }
    return out;
  }
  const rowBytes = perRow * ELEMENT_SIZE[t.datatype];
  let pos = 0;
  for (const s of sizes) {
    out.push({ datatype: t.datatype, shape: [s, ...rest], raw: t.raw.subarray(pos, pos + s * rowBytes) });
    pos += s * rowBytes;
  }
  return out;
}

export function zeroTensor(datatype: DataType, shape: number[]): RawTensor {
  const n = elementCount(shape);
  if (datatype === "BYTES") return { datatype, shape, raw: new Uint8Array(4 * n) }; // n empty strings
  return { datatype, shape, raw: new Uint8Array(n * ELEMENT_SIZE[datatype]) };
}
