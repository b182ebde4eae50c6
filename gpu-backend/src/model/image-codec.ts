// Image bytes in and out of the pipeline: decode user uploads (PNG/JPEG/WebP only, pixel-count limited) to
// planar RGB uint8, prepare them exactly as the reference does before VQ encoding (var_center_crop for
// image-to-image and understanding, a LANCZOS resize to multiples of 16 for painting), and encode results.
// sharp does only the codec work; every resampling step that changes what the model sees is Pillow's
// algorithm (resample.ts), so the VQ codes match the reference's for the same input pixels.
//
// Like PIL's Image.open(...).convert("RGB"), decoding ignores EXIF orientation, drops alpha without
// compositing and ignores an embedded ICC profile: the model was trained on the stored values as PIL reads
// them, so a Display P3 or Adobe RGB upload is fed as its stored numbers, not converted to sRGB (sharp would
// convert by default; `ignoreIcc` turns that off).

import sharp, { type Metadata } from "sharp";
import { chooseCropSize, floorTo16, i2iCropSizes, mmuCropSizes, planCenterCrop, type Size } from "./crops";
import { InvalidArgument } from "./errors";
import { crop, resize, type PlanarImage } from "./resample";

/** Planar RGB: `data[c * height * width + y * width + x]`, c = 0 R, 1 G, 2 B. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type ImageFormat = "png" | "jpeg" | "webp";
export const SUPPORTED_INPUT_FORMATS: readonly ImageFormat[] = ["png", "jpeg", "webp"];

export interface DecodeOptions {
  /** Request field the bytes came from, named in errors. */
  field: string;
  /** Largest width*height accepted (checked from the header, before decoding pixels). */
  maxPixels: number;
}

function planar(img: RgbImage): PlanarImage {
  return { width: img.width, height: img.height, channels: 3, data: img.data };
}
function rgb(img: PlanarImage): RgbImage {
  return { width: img.width, height: img.height, data: img.data };
}

/** Interleaved (HWC) to planar (CHW). */
export function hwcToChw(hwc: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[c * n + i] = hwc[i * channels + c];
  return out;
}

/** Planar (CHW) to interleaved (HWC). */
export function chwToHwc(chw: Uint8Array, width: number, height: number, channels: number): Uint8Array {
  const n = width * height;
  const out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = chw[c * n + i];
  return out;
}

/** Reads the header: format and size, with the same checks decodeImage applies. */
export async function probeImage(bytes: Uint8Array, opts: DecodeOptions): Promise<{ format: ImageFormat; width: number; height: number; hasAlpha: boolean }> {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) throw new InvalidArgument(opts.field, "is empty");
  let meta: Metadata;
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch {
    throw new InvalidArgument(opts.field, "is not a decodable image (expected PNG, JPEG or WebP)");
  }
  const format = meta.format as string;
  if (!SUPPORTED_INPUT_FORMATS.includes(format as ImageFormat)) {
    throw new InvalidArgument(opts.field, `unsupported image format "${format}" (expected PNG, JPEG or WebP)`);
  }
  const width = meta.width ?? 0, height = meta.height ?? 0;
  if (width < 1 || height < 1) throw new InvalidArgument(opts.field, "has no pixels");
  if (width * height > opts.maxPixels) {
    throw new InvalidArgument(opts.field, `${width}x${height} = ${width * height} pixels exceeds the limit of ${opts.maxPixels}`);
  }
  return { format: format as ImageFormat, width, height, hasAlpha: meta.hasAlpha === true };
}

/** Decoded pixels with every channel the file has (1-4), interleaved, 8 bits; for the mask reader too. */
export async function decodeRaw(bytes: Uint8Array, opts: DecodeOptions, mode: "rgb" | "rgba"): Promise<{ width: number; height: number; hwc: Uint8Array }> {
  const probe = await probeImage(bytes, opts);
  try {
    let s = sharp(bytes, { limitInputPixels: opts.maxPixels, autoOrient: false, ignoreIcc: true }).toColourspace("srgb");
    s = mode === "rgba" ? s.ensureAlpha() : s.removeAlpha();
    const { data, info } = await s.raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
    const channels = mode === "rgba" ? 4 : 3;
    if (info.channels !== channels || info.width !== probe.width || info.height !== probe.height) {
      throw new Error(`decoded ${info.width}x${info.height}x${info.channels}`);
    }
    return { width: info.width, height: info.height, hwc: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (e) {
    throw new InvalidArgument(opts.field, `could not be decoded: ${(e as Error).message}`);
  }
}

/** Decodes an upload to planar RGB (alpha dropped, as PIL's convert("RGB")). */
export async function decodeImage(bytes: Uint8Array, opts: DecodeOptions): Promise<RgbImage> {
  const { width, height, hwc } = await decodeRaw(bytes, opts, "rgb");
  return { width, height, data: hwcToChw(hwc, width, height, 3) };
}

/** center_crop(img, crop) with the centre offset: BOX halvings, BICUBIC to the crop scale, centred crop. */
export function centerCrop(img: RgbImage, size: Size): RgbImage {
  const plan = planCenterCrop(img.width, img.height, size);
  let cur = planar(img);
  for (const [w, h] of plan.halvings) cur = resize(cur, w, h, "box");
  cur = resize(cur, plan.resized[0], plan.resized[1], "bicubic");
  return rgb(crop(cur, plan.left, plan.top, plan.crop[0], plan.crop[1]));
}

/** var_center_crop: the best-fitting size of the list, then centerCrop. */
export function varCenterCrop(img: RgbImage, sizes: readonly Size[]): RgbImage {
  return centerCrop(img, chooseCropSize(img.width, img.height, sizes));
}

/** Image-to-image input preparation (512-area crop list). Output is a multiple of 32 on both sides. */
export function prepareImageToImageInput(img: RgbImage): RgbImage {
  return varCenterCrop(img, i2iCropSizes());
}

/** Understanding input preparation (1024-area crop list). */
export function prepareUnderstandingInput(img: RgbImage): RgbImage {
  return varCenterCrop(img, mmuCropSizes());
}

/**
 * Painting input preparation: the VQ processor's LANCZOS resize to the largest multiple of 16 per side
 * (identity when already aligned). Rejects images smaller than one 16x16 cell.
 */
export function resizeToMultipleOf16(img: RgbImage, field = "image"): RgbImage {
  const [w, h] = floorTo16(img.width, img.height);
  if (w < 16 || h < 16) throw new InvalidArgument(field, `${img.width}x${img.height} is smaller than 16x16`);
  return rgb(resize(planar(img), w, h, "lanczos"));
}

export interface EncodeOptions {
  format?: ImageFormat;
  /** 1..100 for JPEG and WebP (default 90); ignored for PNG. */
  quality?: number;
}

function checkQuality(q: number | undefined): number {
  if (q === undefined) return 90;
  if (!Number.isInteger(q) || q < 1 || q > 100) throw new InvalidArgument("quality", `must be an integer in 1..100, got ${q}`);
  return q;
}

function checkImage(img: RgbImage): void {
  if (img.data.length !== img.width * img.height * 3) throw new RangeError(`RGB image ${img.width}x${img.height} has ${img.data.length} bytes`);
}

/** Encodes planar RGB as PNG (default), JPEG or WebP. */
export async function encodeImage(img: RgbImage, opts: EncodeOptions = {}): Promise<Uint8Array> {
  checkImage(img);
  const format = opts.format ?? "png";
  const quality = checkQuality(opts.quality);
  const s = sharp(chwToHwc(img.data, img.width, img.height, 3), { raw: { width: img.width, height: img.height, channels: 3 } });
  let out: Buffer;
  switch (format) {
    case "png":
      out = await s.png().toBuffer();
      break;
    case "jpeg":
      out = await s.jpeg({ quality }).toBuffer();
      break;
    case "webp":
      out = await s.webp({ quality }).toBuffer();
      break;
    default:
      throw new InvalidArgument("format", `unsupported output format "${String(format)}" (png, jpeg or webp)`);
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/**
 * A small preview for progress events: longest side at most `maxSide` (never upscaled), lossy by default.
 * Cosmetic only, so sharp's own resampler is fine here.
 */
export async function encodePreview(img: RgbImage, opts: { maxSide?: number; format?: ImageFormat; quality?: number } = {}): Promise<Uint8Array> {
  checkImage(img);
  const maxSide = opts.maxSide ?? 256;
  if (!Number.isInteger(maxSide) || maxSide < 1) throw new InvalidArgument("preview_size", `must be an integer >= 1, got ${maxSide}`);
  const format = opts.format ?? "webp";
  const quality = checkQuality(opts.quality ?? 60);
  const s = sharp(chwToHwc(img.data, img.width, img.height, 3), { raw: { width: img.width, height: img.height, channels: 3 } }).resize({
    width: maxSide,
    height: maxSide,
    fit: "inside",
    withoutEnlargement: true,
  });
  const out = format === "png" ? await s.png().toBuffer() : format === "jpeg" ? await s.jpeg({ quality }).toBuffer() : await s.webp({ quality }).toBuffer();
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}
