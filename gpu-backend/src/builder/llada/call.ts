// One transformer call in plain arrays, and its contract tensors (names, dtypes, shapes of
// contract.ts), independent of any runtime: `new ort.Tensor(t.type, t.data, t.dims)` makes an
// onnxruntime feed, and the same arrays serve a Triton request.

import { TRANSFORMER_INPUTS } from "../../engine/contract";

/** One mode's inputs (image_* or text_*), flat row-major arrays as in the contract. */
export interface ModeInputs {
  G: number;
  K: number;
  M: number;
  /** [G,K,M] flat indices row*L + pos into the [R,L] batch (the contract's general form, offsets 0). */
  targets: ArrayLike<number | bigint>;
  /** [G,K] guidance weights. */
  weights: ArrayLike<number>;
  /** [G,M] uniforms in [0,1). */
  uniforms: ArrayLike<number>;
  /** [G] temperatures (0 = argmax). */
  temperature: ArrayLike<number>;
}

export interface TransformerCall {
  R: number;
  L: number;
  /** [R,L] right-padded ids. */
  inputIds: ArrayLike<number | bigint>;
  /** [R] true lengths. */
  seqLens: ArrayLike<number | bigint>;
  image: ModeInputs;
  text: ModeInputs;
}

export interface ContractTensor {
  type: "int32" | "int64" | "float32";
  data: Int32Array | BigInt64Array | Float32Array;
  dims: number[];
}

/** An empty mode (G = 0), e.g. the text part of an image-only call. */
export function emptyMode(K = 1, M = 0): ModeInputs {
  return { G: 0, K, M, targets: [], weights: [], uniforms: [], temperature: [] };
}

/** An int64 contract tensor of `dims` from numbers or bigints (checks the element count). */
export function int64(a: ArrayLike<number | bigint>, dims: number[]): ContractTensor {
  const n = dims.reduce((x, y) => x * y, 1);
  if (a.length !== n) throw new Error(`expected ${n} values for [${dims}], got ${a.length}`);
  return { type: "int64", data: BigInt64Array.from(Array.from(a, (v) => BigInt(v))), dims };
}

/** An int32 contract tensor of `dims` from numbers or bigints (checks the element count and the range). */
export function int32(a: ArrayLike<number | bigint>, dims: number[]): ContractTensor {
  const n = dims.reduce((x, y) => x * y, 1);
  if (a.length !== n) throw new Error(`expected ${n} values for [${dims}], got ${a.length}`);
  const data = Int32Array.from(Array.from(a, Number));
  data.forEach((v, i) => {
    if (v !== Number(a[i])) throw new RangeError(`${a[i]} does not fit int32`);
  });
  return { type: "int32", data, dims };
}

/** A float32 contract tensor of `dims` (checks the element count). */
export function float32(a: ArrayLike<number>, dims: number[]): ContractTensor {
  const n = dims.reduce((x, y) => x * y, 1);
  if (a.length !== n) throw new Error(`expected ${n} values for [${dims}], got ${a.length}`);
  return { type: "float32", data: Float32Array.from(a), dims };
}

/** The contract input tensors of a call, by input name: targets in the general form, a list per branch. */
export function callTensors(call: TransformerCall): Record<string, ContractTensor> {
  const I = TRANSFORMER_INPUTS;
  const { image: im, text: tx } = call;
  return {
    [I.inputIds.name]: int32(call.inputIds, [call.R, call.L]),
    [I.seqLens.name]: int32(call.seqLens, [call.R]),
    [I.imageTargets.name]: int32(im.targets, [im.G, im.K, im.M]),
    [I.imageBranchOffsets.name]: int32(new Array(im.G * im.K).fill(0), [im.G, im.K]),
    [I.imageWeights.name]: float32(im.weights, [im.G, im.K]),
    [I.imageUniforms.name]: float32(im.uniforms, [im.G, im.M]),
    [I.imageTemperature.name]: float32(im.temperature, [im.G]),
    [I.textTargets.name]: int32(tx.targets, [tx.G, tx.K, tx.M]),
    [I.textBranchOffsets.name]: int32(new Array(tx.G * tx.K).fill(0), [tx.G, tx.K]),
    [I.textWeights.name]: float32(tx.weights, [tx.G, tx.K]),
    [I.textUniforms.name]: float32(tx.uniforms, [tx.G, tx.M]),
    [I.textTemperature.name]: float32(tx.temperature, [tx.G]),
  };
}
