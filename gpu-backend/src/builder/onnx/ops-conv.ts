// Convolutional building blocks on top of GraphBuilder: Conv, GroupNorm, SiLU, the diffusers
// ResnetBlock2D, Downsample2D and Upsample2D. Only ops that both onnxruntime and the TensorRT ONNX parser
// handle natively are used (opset 17): GroupNorm is the classic Reshape -> InstanceNormalization ->
// Reshape -> Mul -> Add pattern (TensorRT maps it onto its normalization layer), SiLU is x * Sigmoid(x).

import type { GraphBuilder } from "./graph-builder";

/**
 * Returns the initializer name of a named parameter, registering it on first use. `dims` reshapes the
 * stored tensor (same bytes), e.g. a GroupNorm weight [C] used as [C, 1, 1].
 */
export type ParamFn = (name: string, dims?: number[]) => string;

export interface ConvOptions {
  kernel?: number;
  stride?: number;
  /** [top, left, bottom, right]; default "same" for odd kernels. */
  pads?: [number, number, number, number];
}

/** Conv with `${prefix}.weight` [O, I, k, k] and `${prefix}.bias` [O]. */
export function conv2d(g: GraphBuilder, x: string, p: ParamFn, prefix: string, opts: ConvOptions = {}): string {
  const k = opts.kernel ?? 3;
  const s = opts.stride ?? 1;
  const half = (k - 1) >> 1;
  const pads = opts.pads ?? [half, half, half, half];
  return g.op("Conv", [x, p(`${prefix}.weight`), p(`${prefix}.bias`)], {
    kernel_shape: [k, k],
    strides: [s, s],
    pads: [...pads],
    dilations: [1, 1],
    group: 1,
  });
}

const unitConstants = new WeakMap<GraphBuilder, Map<string, string>>();

function cachedConst(g: GraphBuilder, key: string, make: () => string): string {
  let m = unitConstants.get(g);
  if (!m) unitConstants.set(g, (m = new Map()));
  let v = m.get(key);
  if (!v) m.set(key, (v = make()));
  return v;
}

/** torch.nn.GroupNorm(groups, channels, eps, affine=True) over an NCHW tensor. */
export function groupNorm(
  g: GraphBuilder,
  x: string,
  p: ParamFn,
  prefix: string,
  channels: number,
  groups: number,
  eps: number,
): string {
  if (channels % groups !== 0) throw new Error(`${prefix}: ${groups} groups do not divide ${channels} channels`);
  const grouped = cachedConst(g, `gshape${groups}`, () => g.constInt64([0, groups, -1]));
  const ones = cachedConst(g, `ones${groups}`, () => g.constFloat(new Array(groups).fill(1)));
  const zeros = cachedConst(g, `zeros${groups}`, () => g.constFloat(new Array(groups).fill(0)));
  const r = g.op("Reshape", [x, grouped]);
  const n = g.op("InstanceNormalization", [r, ones, zeros], { epsilon: { float: eps } });
  const back = g.op("Reshape", [n, g.op("Shape", [x])]);
  const scaled = g.op("Mul", [back, p(`${prefix}.weight`, [channels, 1, 1])]);
  return g.op("Add", [scaled, p(`${prefix}.bias`, [channels, 1, 1])]);
}

export function silu(g: GraphBuilder, x: string): string {
  return g.op("Mul", [x, g.op("Sigmoid", [x])]);
}

/** diffusers ResnetBlock2D without time embedding: x + conv2(silu(gn2(conv1(silu(gn1(x)))))). */
export function resnetBlock2D(
  g: GraphBuilder,
  x: string,
  p: ParamFn,
  r: { prefix: string; inC: number; outC: number },
  groups: number,
  eps: number,
): string {
  let h = silu(g, groupNorm(g, x, p, `${r.prefix}.norm1`, r.inC, groups, eps));
  h = conv2d(g, h, p, `${r.prefix}.conv1`);
  h = silu(g, groupNorm(g, h, p, `${r.prefix}.norm2`, r.outC, groups, eps));
  h = conv2d(g, h, p, `${r.prefix}.conv2`);
  const shortcut = r.inC !== r.outC ? conv2d(g, x, p, `${r.prefix}.conv_shortcut`, { kernel: 1 }) : x;
  return g.op("Add", [shortcut, h]);
}

/** diffusers Downsample2D(use_conv, padding=0): pad right and bottom by one, 3x3 conv with stride 2. */
export function downsample2D(g: GraphBuilder, x: string, p: ParamFn, prefix: string): string {
  return conv2d(g, x, p, prefix, { kernel: 3, stride: 2, pads: [0, 0, 1, 1] });
}

/** diffusers Upsample2D(use_conv): nearest 2x (torch `interpolate(scale_factor=2)`), then a 3x3 conv. */
export function upsample2D(g: GraphBuilder, x: string, p: ParamFn, prefix: string): string {
  const scales = cachedConst(g, "scales2x", () => g.constFloat([1, 1, 2, 2]));
  const up = g.op("Resize", [x, "", scales], {
    mode: "nearest",
    coordinate_transformation_mode: "asymmetric",
    nearest_mode: "floor",
  });
  return conv2d(g, up, p, prefix);
}
