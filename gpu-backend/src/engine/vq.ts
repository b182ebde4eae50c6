// VQ encoder/decoder calls. The engines take planar uint8 RGB [1, 3, H, W] and int64 codes [1, h, w]; the
// image codec (model/image-codec.ts) works in the same planar layout, so nothing is transposed here. One
// image per call: VQ calls are rare (once per input image, once per result, once per preview) and run
// outside the step loop.
import type { RgbImage } from "../model/image-codec";
import type { EngineCallOptions, VqRunner } from "./runners";
import { VQ_DOWNSAMPLE } from "../model/tokens";

/** VQ-encodes a planar RGB image whose sides are multiples of 16; returns h*w codes, row-major. */
export async function vqEncodeImage(vq: VqRunner, img: RgbImage, opts: EngineCallOptions): Promise<{ h: number; w: number; codes: Int32Array }> {
  if (img.width % VQ_DOWNSAMPLE !== 0 || img.height % VQ_DOWNSAMPLE !== 0) {
    throw new RangeError(`VQ input ${img.width}x${img.height} is not a multiple of ${VQ_DOWNSAMPLE}`);
  }
  if (img.data.length !== img.width * img.height * 3) throw new RangeError(`RGB image ${img.width}x${img.height} has ${img.data.length} bytes`);
  const h = img.height / VQ_DOWNSAMPLE;
  const w = img.width / VQ_DOWNSAMPLE;
  const codes = await vq.encode(img.data, img.height, img.width, opts);
  if (codes.length !== h * w) throw new RangeError(`VQ encoder returned ${codes.length} codes, expected ${h * w}`);
  return { h, w, codes };
}

/** VQ-decodes h*w codebook indices into a planar RGB image of 16w x 16h. */
export async function vqDecodeImage(vq: VqRunner, codes: Int32Array, h: number, w: number, opts: EngineCallOptions): Promise<RgbImage> {
  if (codes.length !== h * w) throw new RangeError(`${codes.length} codes for a ${w}x${h} grid`);
  const width = w * VQ_DOWNSAMPLE;
  const height = h * VQ_DOWNSAMPLE;
  const data = await vq.decode(codes, h, w, opts);
  if (data.length !== width * height * 3) throw new RangeError(`VQ decoder returned ${data.length} bytes, expected ${width * height * 3}`);
  return { width, height, data };
}
