// The aMUSEd VQ-GAN configuration (diffusers `VQModel`) and its exact tensor names and shapes.
// docs/model.md §9 and docs/reference/checkpoint-layout.json list the 277 tensors of
// the real checkpoint; `vqTensorShapes` reproduces that list, in the same order, for any config.

export interface VqConfig {
  inChannels: number;
  outChannels: number;
  /** Encoder block widths; the decoder uses them reversed. 2**(n-1) is the downsampling factor. */
  blockOutChannels: number[];
  /** Resnets per encoder down block; decoder up blocks have one more. */
  layersPerBlock: number;
  latentChannels: number;
  numVqEmbeddings: number;
  /** Codebook vector width (diffusers `vq_embed_dim`, null = latentChannels). */
  vqEmbedDim: number;
  normNumGroups: number;
  /** GroupNorm epsilon; diffusers hard-codes 1e-6 in the VQ encoder and decoder. */
  normEps: number;
}

/** The real aMUSEd / Lumina-DiMOO `vqvae/config.json`, as a VqConfig. */
export const AMUSED_VQ_CONFIG: Readonly<VqConfig> = Object.freeze({
  inChannels: 3,
  outChannels: 3,
  blockOutChannels: [128, 256, 256, 512, 768],
  layersPerBlock: 2,
  latentChannels: 64,
  numVqEmbeddings: 8192,
  vqEmbedDim: 64,
  normNumGroups: 32,
  normEps: 1e-6,
});

/**
 * The tiny dev VQ: channel changes in the same blocks as the real model (so the same 277 names), the
 * real 8192-entry codebook (any real code id 0..8191 decodes), a latent width of 8 and 8 norm groups.
 */
export function devVqConfig(): VqConfig {
  return {
    inChannels: 3,
    outChannels: 3,
    blockOutChannels: [16, 32, 32, 48, 64],
    layersPerBlock: 2,
    latentChannels: 8,
    numVqEmbeddings: 8192,
    vqEmbedDim: 8,
    normNumGroups: 8,
    normEps: 1e-6,
  };
}

export function downsampleFactor(cfg: VqConfig): number {
  return 2 ** (cfg.blockOutChannels.length - 1);
}

export function validateVqConfig(cfg: VqConfig): void {
  const bad = (msg: string) => {
    throw new Error(`invalid VQ config: ${msg}`);
  };
  if (cfg.blockOutChannels.length < 1) bad("block_out_channels is empty");
  for (const c of cfg.blockOutChannels)
    if (c % cfg.normNumGroups !== 0) bad(`norm_num_groups ${cfg.normNumGroups} does not divide ${c} channels`);
  if (cfg.layersPerBlock < 1) bad("layers_per_block < 1");
  if (cfg.numVqEmbeddings < 1) bad("num_vq_embeddings < 1");
  if (cfg.latentChannels < 1 || cfg.vqEmbedDim < 1) bad("latent width < 1");
}

/** Reads a diffusers `vqvae/config.json`; rejects options this graph does not implement. */
export function vqConfigFromDiffusers(json: Record<string, unknown>): VqConfig {
  const get = <T>(k: string, dflt: T): T => (json[k] === undefined || json[k] === null ? dflt : (json[k] as T));
  const unsupported = (k: string, v: unknown, want: unknown) => {
    throw new Error(`vqvae/config.json: ${k}=${JSON.stringify(v)} is not supported (the graph implements ${JSON.stringify(want)})`);
  };
  const cls = get<string>("_class_name", "VQModel");
  if (cls !== "VQModel") unsupported("_class_name", cls, "VQModel");
  const act = get<string>("act_fn", "silu");
  if (act !== "silu") unsupported("act_fn", act, "silu");
  const norm = get<string>("norm_type", "group");
  if (norm !== "group") unsupported("norm_type", norm, "group");
  if (get<boolean>("mid_block_add_attention", true) !== false)
    unsupported("mid_block_add_attention", json.mid_block_add_attention ?? true, false);
  const blocks = get<number[]>("block_out_channels", [64]);
  for (const [k, want] of [["down_block_types", "DownEncoderBlock2D"], ["up_block_types", "UpDecoderBlock2D"]] as const) {
    const types = get<string[]>(k, blocks.map(() => want));
    if (types.length !== blocks.length || types.some((t) => t !== want)) unsupported(k, types, `${blocks.length} x ${want}`);
  }
  const latent = get<number>("latent_channels", 3);
  const cfg: VqConfig = {
    inChannels: get<number>("in_channels", 3),
    outChannels: get<number>("out_channels", 3),
    blockOutChannels: [...blocks],
    layersPerBlock: get<number>("layers_per_block", 1),
    latentChannels: latent,
    numVqEmbeddings: get<number>("num_vq_embeddings", 256),
    vqEmbedDim: get<number>("vq_embed_dim", latent),
    normNumGroups: get<number>("norm_num_groups", 32),
    normEps: 1e-6,
  };
  validateVqConfig(cfg);
  return cfg;
}

/** The diffusers `config.json` for a VqConfig (what a synthetic checkpoint's `vqvae/config.json` holds). */
export function vqConfigToDiffusers(cfg: VqConfig): Record<string, unknown> {
  const n = cfg.blockOutChannels.length;
  return {
    _class_name: "VQModel",
    _diffusers_version: "0.34.0",
    act_fn: "silu",
    block_out_channels: [...cfg.blockOutChannels],
    down_block_types: Array(n).fill("DownEncoderBlock2D"),
    force_upcast: true,
    in_channels: cfg.inChannels,
    latent_channels: cfg.latentChannels,
    layers_per_block: cfg.layersPerBlock,
    lookup_from_codebook: true,
    mid_block_add_attention: false,
    norm_num_groups: cfg.normNumGroups,
    norm_type: "group",
    num_vq_embeddings: cfg.numVqEmbeddings,
    out_channels: cfg.outChannels,
    sample_size: 32,
    scaling_factor: 0.18215,
    up_block_types: Array(n).fill("UpDecoderBlock2D"),
    vq_embed_dim: cfg.vqEmbedDim === cfg.latentChannels ? null : cfg.vqEmbedDim,
  };
}

/** One resnet of a block: input and output channels (a 1x1 conv_shortcut exists when they differ). */
export interface ResnetSpec {
  prefix: string;
  inC: number;
  outC: number;
}

/** The layer structure shared by the graph builder, the reference forward and the name list. */
export interface VqLayout {
  encoder: {
    convIn: { prefix: string; inC: number; outC: number };
    down: { resnets: ResnetSpec[]; downsample?: { prefix: string; channels: number } }[];
    mid: ResnetSpec[];
    normOut: { prefix: string; channels: number };
    convOut: { prefix: string; inC: number; outC: number };
  };
  quantConv: { prefix: string; inC: number; outC: number };
  codebook: { name: string; size: number; dim: number };
  postQuantConv: { prefix: string; inC: number; outC: number };
  decoder: {
    convIn: { prefix: string; inC: number; outC: number };
    mid: ResnetSpec[];
    up: { resnets: ResnetSpec[]; upsample?: { prefix: string; channels: number } }[];
    normOut: { prefix: string; channels: number };
    convOut: { prefix: string; inC: number; outC: number };
  };
}

export function vqLayout(cfg: VqConfig): VqLayout {
  const boc = cfg.blockOutChannels;
  const n = boc.length;
  const top = boc[n - 1];
  const mid = (side: string): ResnetSpec[] =>
    [0, 1].map((j) => ({ prefix: `${side}.mid_block.resnets.${j}`, inC: top, outC: top }));
  const down = boc.map((outC, i) => {
    const inC = i === 0 ? boc[0] : boc[i - 1];
    const resnets = Array.from({ length: cfg.layersPerBlock }, (_, j) => ({
      prefix: `encoder.down_blocks.${i}.resnets.${j}`,
      inC: j === 0 ? inC : outC,
      outC,
    }));
    return { resnets, downsample: i < n - 1 ? { prefix: `encoder.down_blocks.${i}.downsamplers.0.conv`, channels: outC } : undefined };
  });
  const rev = [...boc].reverse();
  let prev = rev[0];
  const up = rev.map((outC, i) => {
    const inC = prev;
    prev = outC;
    const resnets = Array.from({ length: cfg.layersPerBlock + 1 }, (_, j) => ({
      prefix: `decoder.up_blocks.${i}.resnets.${j}`,
      inC: j === 0 ? inC : outC,
      outC,
    }));
    return { resnets, upsample: i < n - 1 ? { prefix: `decoder.up_blocks.${i}.upsamplers.0.conv`, channels: outC } : undefined };
  });
  return {
    encoder: {
      convIn: { prefix: "encoder.conv_in", inC: cfg.inChannels, outC: boc[0] },
      down,
      mid: mid("encoder"),
      normOut: { prefix: "encoder.conv_norm_out", channels: top },
      convOut: { prefix: "encoder.conv_out", inC: top, outC: cfg.latentChannels },
    },
    quantConv: { prefix: "quant_conv", inC: cfg.latentChannels, outC: cfg.vqEmbedDim },
    codebook: { name: "quantize.embedding.weight", size: cfg.numVqEmbeddings, dim: cfg.vqEmbedDim },
    postQuantConv: { prefix: "post_quant_conv", inC: cfg.vqEmbedDim, outC: cfg.latentChannels },
    decoder: {
      convIn: { prefix: "decoder.conv_in", inC: cfg.latentChannels, outC: top },
      mid: mid("decoder"),
      up,
      normOut: { prefix: "decoder.conv_norm_out", channels: boc[0] },
      convOut: { prefix: "decoder.conv_out", inC: boc[0], outC: cfg.outChannels },
    },
  };
}

export type TensorShapeList = Array<[name: string, shape: number[]]>;

/** Every tensor of the diffusers VQModel state_dict, in the checkpoint's order, with its shape. */
export function vqTensorShapes(cfg: VqConfig): TensorShapeList {
  const L = vqLayout(cfg);
  const out: TensorShapeList = [];
  const conv = (prefix: string, o: number, i: number, k: number) => {
    out.push([`${prefix}.weight`, [o, i, k, k]], [`${prefix}.bias`, [o]]);
  };
  const norm = (prefix: string, c: number) => {
    out.push([`${prefix}.weight`, [c]], [`${prefix}.bias`, [c]]);
  };
  const resnet = (r: ResnetSpec) => {
    norm(`${r.prefix}.norm1`, r.inC);
    conv(`${r.prefix}.conv1`, r.outC, r.inC, 3);
    norm(`${r.prefix}.norm2`, r.outC);
    conv(`${r.prefix}.conv2`, r.outC, r.outC, 3);
    if (r.inC !== r.outC) conv(`${r.prefix}.conv_shortcut`, r.outC, r.inC, 1);
  };
  const e = L.encoder;
  conv(e.convIn.prefix, e.convIn.outC, e.convIn.inC, 3);
  for (const b of e.down) {
    b.resnets.forEach(resnet);
    if (b.downsample) conv(b.downsample.prefix, b.downsample.channels, b.downsample.channels, 3);
  }
  e.mid.forEach(resnet);
  norm(e.normOut.prefix, e.normOut.channels);
  conv(e.convOut.prefix, e.convOut.outC, e.convOut.inC, 3);
  conv(L.quantConv.prefix, L.quantConv.outC, L.quantConv.inC, 1);
  out.push([L.codebook.name, [L.codebook.size, L.codebook.dim]]);
  conv(L.postQuantConv.prefix, L.postQuantConv.outC, L.postQuantConv.inC, 1);
  const d = L.decoder;
  conv(d.convIn.prefix, d.convIn.outC, d.convIn.inC, 3);
  for (const b of d.up) {
    b.resnets.forEach(resnet);
    if (b.upsample) conv(b.upsample.prefix, b.upsample.channels, b.upsample.channels, 3);
  }
  d.mid.forEach(resnet);
  norm(d.normOut.prefix, d.normOut.channels);
  conv(d.convOut.prefix, d.convOut.outC, d.convOut.inC, 3);
  return out;
}

export function vqParamCount(cfg: VqConfig): number {
  return vqTensorShapes(cfg).reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
}
