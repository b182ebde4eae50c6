// VQ-GAN graphs (onnxruntime) against the plain-TS reference forward pass, on the tiny dev config.
//
// Tolerances (measured: latents and decoded floats agree to ~2e-6):
//   - latents (after quant_conv) and the decoder's float output: max |onnx - reference| <= 1e-4
//   - codes: identical wherever the reference's best and second-best squared distances differ by more
//     than 1e-3 (far above the fp32 error of the latents); where they do not (a near tie), the graph's
//     code must be one whose exact distance is within 1e-3 of the best. Exact ties go to the lowest index.
//   - pixels: |onnx - reference| <= 1, and only where reference*255 lies within 1e-3 of a .5 rounding
//     boundary.

import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GraphBuilder } from "../../../gpu-backend/src/builder/onnx/graph-builder";
import { AMUSED_VQ_CONFIG, devVqConfig, vqConfigFromDiffusers, vqConfigToDiffusers, vqParamCount, vqTensorShapes } from "../../../gpu-backend/src/builder/vqgan/config";
import { addQuantizer, buildVqDecoderGraph, buildVqEncoderGraph } from "../../../gpu-backend/src/builder/vqgan/graph";
import { nearestCodes, roundHalfEven, vqDecodeReference, vqEncodeReference, type Tensor4 } from "../../../gpu-backend/src/builder/vqgan/reference";
import { readVqCheckpoint, seededVqWeights, writeVqCheckpoint, type VqWeights } from "../../../gpu-backend/src/builder/vqgan/weights";

const cfg = devVqConfig();
const weights = seededVqWeights(cfg, 1);
const LATENT_TOL = 1e-4;
const MARGIN = 1e-3;

let enc: ort.InferenceSession;
let dec: ort.InferenceSession;

beforeAll(async () => {
  enc = await ort.InferenceSession.create(buildVqEncoderGraph(cfg, weights, { debugOutputs: true }).toBytes());
  dec = await ort.InferenceSession.create(buildVqDecoderGraph(cfg, weights, { debugOutputs: true }).toBytes());
});

/** Deterministic test image: a smooth pattern for image 0, noise for image 1. */
function testPixels(B: number, H: number, W: number): Uint8Array {
  const px = new Uint8Array(B * 3 * H * W);
  let s = 12345;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const i = ((b * 3 + c) * H + y) * W + x;
          if (b % 2 === 0) px[i] = Math.round(127 + 120 * Math.sin((x + 7 * c) / 6) * Math.cos((y - 3 * c) / 5));
          else {
            s = (Math.imul(s, 1103515245) + 12345) >>> 0;
            px[i] = s >>> 24;
          }
        }
  return px;
}

async function encode(px: Uint8Array, B: number, H: number, W: number) {
  const out = await enc.run({ pixels: new ort.Tensor("uint8", px, [B, 3, H, W]) });
  return { codes: out.codes, latents: out.latents.data as Float32Array };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** Checks graph codes against the reference under the tie rule; returns the number of near ties. */
function expectCodesMatch(got: BigInt64Array, ref: { codes: Int32Array; margins: Float64Array; latents: Tensor4 }, codebook: Float32Array): number {
  let nearTies = 0;
  const D = cfg.vqEmbedDim;
  const plane = ref.latents.h * ref.latents.w;
  for (let i = 0; i < got.length; i++) {
    const g = Number(got[i]);
    if (ref.margins[i] > MARGIN) {
      expect(g, `position ${i}`).toBe(ref.codes[i]);
      continue;
    }
    nearTies++;
    const n = Math.floor(i / plane);
    const pos = i % plane;
    const dist = (k: number) => {
      let s = 0;
      for (let d = 0; d < D; d++) s += (ref.latents.data[(n * D + d) * plane + pos] - codebook[k * D + d]) ** 2;
      return s;
    };
    expect(dist(g) - dist(ref.codes[i])).toBeLessThanOrEqual(MARGIN);
  }
  return nearTies;
}

describe("VQ-GAN config and tensor names", () => {
  it("lists the 277 diffusers VQModel tensors of aMUSEd with 146,244,675 parameters", () => {
    const shapes = vqTensorShapes(AMUSED_VQ_CONFIG);
    expect(shapes).toHaveLength(277);
    expect(vqParamCount(AMUSED_VQ_CONFIG)).toBe(146_244_675);
    const byName = new Map(shapes);
    // conv_shortcut exactly where the channel count changes; decoder up blocks run the widths reversed
    const shortcuts = shapes.map(([n]) => n).filter((n) => n.endsWith("conv_shortcut.weight"));
    expect(shortcuts).toEqual([
      "encoder.down_blocks.1.resnets.0.conv_shortcut.weight",
      "encoder.down_blocks.3.resnets.0.conv_shortcut.weight",
      "encoder.down_blocks.4.resnets.0.conv_shortcut.weight",
      "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
      "decoder.up_blocks.2.resnets.0.conv_shortcut.weight",
      "decoder.up_blocks.4.resnets.0.conv_shortcut.weight",
    ]);
    expect(byName.get("decoder.up_blocks.1.resnets.0.conv1.weight")).toEqual([512, 768, 3, 3]);
    expect(byName.get("decoder.up_blocks.4.resnets.2.conv2.weight")).toEqual([128, 128, 3, 3]);
    expect(byName.get("encoder.down_blocks.3.downsamplers.0.conv.weight")).toEqual([512, 512, 3, 3]);
    expect(byName.has("encoder.down_blocks.4.downsamplers.0.conv.weight")).toBe(false);
    expect(byName.has("decoder.up_blocks.4.upsamplers.0.conv.weight")).toBe(false);
    expect(byName.get("quantize.embedding.weight")).toEqual([8192, 64]);
    expect(byName.has("quantize.embedding.bias")).toBe(false);
  });

  const layout = new URL("../../../docs/reference/checkpoint-layout.json", import.meta.url);
  it("matches docs/reference/checkpoint-layout.json name for name, in order", () => {
    const j = JSON.parse(readFileSync(layout, "utf8")).amused_vq as { tensors: { name: string; shape: number[] }[]; config: Record<string, unknown> };
    expect(vqTensorShapes(vqConfigFromDiffusers(j.config)).map(([name, shape]) => ({ name, shape }))).toEqual(j.tensors.map((t) => ({ name: t.name, shape: t.shape })));
  });

  it("gives the tiny dev config the identical 277 names with the real 8192-entry codebook", () => {
    const dev = vqTensorShapes(cfg);
    expect(dev.map(([n]) => n)).toEqual(vqTensorShapes(AMUSED_VQ_CONFIG).map(([n]) => n));
    expect(new Map(dev).get("quantize.embedding.weight")).toEqual([8192, 8]);
    expect(vqConfigFromDiffusers(vqConfigToDiffusers(cfg))).toEqual(cfg);
  });

  it("rejects diffusers options the graph does not implement", () => {
    expect(() => vqConfigFromDiffusers({ ...vqConfigToDiffusers(cfg), mid_block_add_attention: true })).toThrow(/mid_block_add_attention/);
    expect(() => vqConfigFromDiffusers({ ...vqConfigToDiffusers(cfg), norm_type: "spatial" })).toThrow(/norm_type/);
    expect(() => vqConfigFromDiffusers({ ...vqConfigToDiffusers(cfg), norm_num_groups: 5 })).toThrow(/divide/);
  });
});

describe("VQ encoder graph vs reference", () => {
  it("encodes a batch of 2 non-square uint8 images to int64 codes [B, H/16, W/16]", async () => {
    const [B, H, W] = [2, 48, 64];
    const px = testPixels(B, H, W);
    const out = await encode(px, B, H, W);
    expect(out.codes.type).toBe("int64");
    expect(out.codes.dims).toEqual([B, 3, 4]);
    const ref = vqEncodeReference(cfg, weights, px, B, H, W);
    expect(maxAbsDiff(out.latents, ref.latents.data)).toBeLessThanOrEqual(LATENT_TOL);
    const nearTies = expectCodesMatch(out.codes.data as BigInt64Array, ref, weights.get("quantize.embedding.weight")!.data);
    expect(nearTies).toBeLessThanOrEqual(2);
    // the seeded codebook is spread like the latents: most positions get distinct codes
    expect(new Set(ref.codes).size).toBeGreaterThan(ref.codes.length / 2);
  });

  it("encodes each image of a batch as it would alone (GroupNorm is per image)", async () => {
    const [B, H, W] = [2, 32, 48];
    const px = testPixels(B, H, W);
    const both = (await encode(px, B, H, W)).codes.data as BigInt64Array;
    const second = (await encode(px.slice(3 * H * W), 1, H, W)).codes.data as BigInt64Array;
    expect(Array.from(both.slice(both.length / 2))).toEqual(Array.from(second));
  });

  it("breaks exact ties toward the lowest code, like torch.argmin", async () => {
    // a 6-entry codebook in 2-D with a duplicated row (1 and 4) and a point equidistant from rows 2 and 5
    const codebook = Float32Array.from([4, 4, 1, 0, 0, 2, -3, -3, 1, 0, 2, 0]); // rows: (4,4) (1,0) (0,2) (-3,-3) (1,0) (2,0)
    const g = new GraphBuilder("quantizer");
    const z = g.input("z", "FLOAT", ["B", 2, "h", "w"]);
    g.op("Identity", [addQuantizer(g, z, codebook, 6, 2)], {}, g.output("codes", "INT64", ["B", "h", "w"]));
    const session = await ort.InferenceSession.create(g.toBytes());
    // positions: (1,0) -> rows 1 and 4 tie at 0; (0.5,0) lies between (0,...)? use exact points below
    const pts = [
      [1, 0], // duplicate rows 1 and 4: distance 0 -> 1
      [1.5, 0], // rows 1, 4 and 5 all at distance 0.25 -> 1
      [-3, -3], // row 3 exactly
      [3, 3], // (4,4): 2; (2,0): 10; (0,2): 10 -> 0
    ];
    const data = new Float32Array(2 * pts.length); // [1, 2, 1, 4] NCHW
    pts.forEach(([x, y], i) => {
      data[i] = x;
      data[pts.length + i] = y;
    });
    const out = await session.run({ z: new ort.Tensor("float32", data, [1, 2, 1, pts.length]) });
    const ref = nearestCodes({ data: Float64Array.from(data), n: 1, c: 2, h: 1, w: pts.length }, codebook, 6, 2);
    expect(Array.from(out.codes.data as BigInt64Array, Number)).toEqual([1, 1, 3, 0]);
    expect(Array.from(ref.codes)).toEqual([1, 1, 3, 0]);
    expect(ref.margins[0]).toBe(0);
  });
});

describe("VQ decoder graph vs reference", () => {
  it("decodes a batch of 2 non-square code grids over the whole code range to uint8 pixels", async () => {
    const [B, h, w] = [2, 3, 2];
    const codes = new BigInt64Array(B * h * w);
    for (let i = 0; i < codes.length; i++) codes[i] = BigInt((i * 2654435761) % 8192);
    codes[0] = 0n;
    codes[codes.length - 1] = 8191n;
    const out = await dec.run({ codes: new ort.Tensor("int64", codes, [B, h, w]) });
    expect(out.pixels.type).toBe("uint8");
    expect(out.pixels.dims).toEqual([B, 3, 48, 32]);
    const ref = vqDecodeReference(cfg, weights, codes, B, h, w);
    expect(maxAbsDiff(out.decoded.data as Float32Array, ref.decoded.data)).toBeLessThanOrEqual(LATENT_TOL);
    const px = out.pixels.data as Uint8Array;
    let differing = 0;
    for (let i = 0; i < px.length; i++) {
      const diff = Math.abs(px[i] - ref.pixels[i]);
      if (diff === 0) continue;
      differing++;
      expect(diff).toBe(1);
      const v = Math.min(1, Math.max(0, ref.decoded.data[i])) * 255;
      expect(Math.abs((v % 1) - 0.5)).toBeLessThan(1e-3);
    }
    expect(differing).toBeLessThanOrEqual(px.length / 1000);
    // the seeded decoder uses the whole pixel range without saturating
    const hist = new Array(4).fill(0);
    for (const v of ref.pixels) hist[v >> 6]++;
    for (const n of hist) expect(n).toBeGreaterThan(px.length / 20);
  });

  it("rounds half to even and clips, as numpy does after .clip(0, 1)", () => {
    expect([0.5, 1.5, 2.5, 254.5, 3.49, -0.2].map(roundHalfEven)).toEqual([0, 2, 2, 254, 3, -0]);
  });

  it("round trip: encode(decode(codes)) matches the reference composition", async () => {
    const [B, h, w] = [1, 2, 3];
    const codes = BigInt64Array.from([5n, 77n, 1024n, 4095n, 8000n, 8191n]);
    const pixels = (await dec.run({ codes: new ort.Tensor("int64", codes, [B, h, w]) })).pixels;
    const again = await encode(pixels.data as Uint8Array, B, h * 16, w * 16);
    expect(again.codes.dims).toEqual([B, h, w]);
    const refPixels = vqDecodeReference(cfg, weights, codes, B, h, w).pixels;
    const ref = vqEncodeReference(cfg, weights, pixels.data as Uint8Array, B, h * 16, w * 16);
    expect(maxAbsDiff(again.latents, ref.latents.data)).toBeLessThanOrEqual(LATENT_TOL);
    expectCodesMatch(again.codes.data as BigInt64Array, ref, weights.get("quantize.embedding.weight")!.data);
    // random weights are no autoencoder, but the composition is deterministic and in range
    for (const c of again.codes.data as BigInt64Array) expect(c >= 0n && c < 8192n).toBe(true);
    expect(maxAbsDiff(refPixels, pixels.data as Uint8Array)).toBeLessThanOrEqual(1);
  });
});

describe("VQ safetensors checkpoint (diffusers layout, real names)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "vq-ckpt-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("loads an F32 checkpoint with the 277 names bit-identically, giving identical graphs and outputs", async () => {
    await writeVqCheckpoint(join(dir, "f32"), cfg, weights);
    const loaded = await readVqCheckpoint(join(dir, "f32"));
    expect(loaded.config).toEqual(cfg);
    expect(loaded.dtype).toBe("F32");
    expect(loaded.weights.size).toBe(277);
    for (const [name, t] of weights) expect(Buffer.from(loaded.weights.get(name)!.data.buffer).equals(Buffer.from(t.data.buffer)), name).toBe(true);
    expect(Buffer.from(buildVqEncoderGraph(loaded.config, loaded.weights).toBytes()).equals(Buffer.from(buildVqEncoderGraph(cfg, weights).toBytes()))).toBe(true);
    expect(Buffer.from(buildVqDecoderGraph(loaded.config, loaded.weights).toBytes()).equals(Buffer.from(buildVqDecoderGraph(cfg, weights).toBytes()))).toBe(true);
    const s = await ort.InferenceSession.create(buildVqEncoderGraph(loaded.config, loaded.weights).toBytes());
    const px = testPixels(1, 32, 32);
    const a = (await s.run({ pixels: new ort.Tensor("uint8", px, [1, 3, 32, 32]) })).codes.data as BigInt64Array;
    const b = (await encode(px, 1, 32, 32)).codes.data as BigInt64Array;
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it("loads F16 and BF16 checkpoints as their rounded fp32 values", async () => {
    for (const dtype of ["F16", "BF16"] as const) {
      await writeVqCheckpoint(join(dir, dtype), cfg, weights, { dtype });
      const loaded = await readVqCheckpoint(join(dir, dtype));
      expect(loaded.dtype).toBe(dtype);
      const w0 = weights.get("decoder.conv_out.bias")!.data;
      const l0 = loaded.weights.get("decoder.conv_out.bias")!.data;
      for (let i = 0; i < w0.length; i++) expect(Math.abs(l0[i] - w0[i])).toBeLessThanOrEqual(Math.abs(w0[i]) * (dtype === "F16" ? 1e-3 : 8e-3));
    }
  });

  it("names every missing, unexpected or mis-shaped tensor", async () => {
    const broken: VqWeights = new Map(weights);
    broken.delete("encoder.down_blocks.1.resnets.0.conv_shortcut.weight");
    broken.set("encoder.extra.weight", { shape: [1], data: new Float32Array(1) });
    broken.set("quantize.embedding.weight", { shape: [4096, 8], data: new Float32Array(4096 * 8) });
    await expect(writeVqCheckpoint(join(dir, "broken"), cfg, broken)).rejects.toThrow(
      /missing encoder\.down_blocks\.1\.resnets\.0\.conv_shortcut\.weight.*quantize\.embedding\.weight: shape \[4096,8\], expected \[8192,8\].*unexpected tensor encoder\.extra\.weight/,
    );
    await expect(readVqCheckpoint(join(dir, "nothing-here"))).rejects.toThrow(/missing .*config\.json/);
  });
});
