// Inpainting and outpainting give the caller's pixels back: the VQ decode is blended into the original image
// at the original size, only inside the mask, through a narrow feathered seam that lies inside the mask
// (so every pixel outside it is the caller's byte for byte, and pixels deeper inside than the seam are the
// decode's). For outpainting the caller's image is the extended canvas and the mask its new area, so the
// seam falls on the generated side. Pure: same inputs, same bytes.
import type { RgbImage } from "./image-codec";
import type { PixelMask } from "./mask-grid";
import { resize } from "./resample";

/** Seam width in pixels: the blend weight rises linearly from the mask's edge to 1 at this distance. */
export const SEAM_PX = 8;

/**
 * Per pixel, the decode's weight: 0 outside the mask, min(1, d / seam) inside, d = Euclidean distance (in
 * pixels, centre to centre) to the nearest pixel outside the mask. A mask covering the whole image has no
 * edge, so every pixel weighs 1. Distances beyond the seam are capped, so the work is O(pixels x seam).
 */
export function seamWeights(mask: PixelMask, seam = SEAM_PX): Float32Array {
  const { width: W, height: H, regenerate } = mask;
  if (regenerate.length !== W * H) throw new RangeError(`mask has ${regenerate.length} pixels for ${W}x${H}`);
  if (!Number.isInteger(seam) || seam < 1) throw new RangeError(`seam must be a positive integer, got ${seam}`);
  const cap = seam + 1;
  // Vertical distance to the nearest kept pixel in the same column, capped (two sweeps).
  const col = new Uint16Array(W * H);
  for (let x = 0; x < W; x++) {
    let d = cap;
    for (let y = 0; y < H; y++) {
      const i = y * W + x;
      d = regenerate[i] ? Math.min(cap, d + 1) : 0;
      col[i] = d;
    }
    d = cap;
    for (let y = H - 1; y >= 0; y--) {
      const i = y * W + x;
      d = regenerate[i] ? Math.min(cap, d + 1) : 0;
      if (d < col[i]) col[i] = d;
    }
  }
  // Then the nearest over columns within the seam: min over |dx| <= seam of dx^2 + col^2 (exact up to the cap).
  const out = new Float32Array(W * H);
  const capSq = cap * cap;
  for (let y = 0; y < H; y++) {
    const row = y * W;
    for (let x = 0; x < W; x++) {
      if (!regenerate[row + x]) continue;
      let best = capSq;
      const x0 = Math.max(0, x - seam), x1 = Math.min(W - 1, x + seam);
      for (let xx = x0; xx <= x1; xx++) {
        const c = col[row + xx];
        if (c >= cap) continue;
        const dx = xx - x;
        const dsq = dx * dx + c * c;
        if (dsq < best) best = dsq;
      }
      out[row + x] = best >= seam * seam ? 1 : Math.sqrt(best) / seam;
    }
  }
  return out;
}

/**
 * The painted result at the original's size: the decode (resized with LANCZOS when the model ran at the
 * size floored to 16) weighted by seamWeights, the original elsewhere.
 */
export function blendPainted(original: RgbImage, decoded: RgbImage, mask: PixelMask, seam = SEAM_PX): RgbImage {
  const { width: W, height: H } = original;
  if (mask.width !== W || mask.height !== H) throw new RangeError(`mask ${mask.width}x${mask.height} for a ${W}x${H} image`);
  const gen = decoded.width === W && decoded.height === H ? decoded : resize({ ...decoded, channels: 3 }, W, H, "lanczos");
  const weight = seamWeights(mask, seam);
  const n = W * H;
  const out = new Uint8Array(3 * n);
  for (let c = 0; c < 3; c++) {
    const o = c * n;
    for (let i = 0; i < n; i++) {
      const a = weight[i];
      const src = original.data[o + i];
      out[o + i] = a === 0 ? src : a === 1 ? gen.data[o + i] : Math.round(src + (gen.data[o + i] - src) * a);
    }
  }
  return { width: W, height: H, data: out };
}
