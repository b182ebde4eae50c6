// Which size an input image is cropped to before VQ encoding (docs/model.md §2.5): the reference's
// generate_crop_size_list / var_center_crop / center_crop, as pure size arithmetic. The pixel work lives in
// image-codec.ts. Deviation: the reference crops at a random offset; we use the centre (harmless, and
// deterministic).

/** [width, height] in pixels. */
export type Size = readonly [number, number];

/** Image-to-image inputs: 16x16 patches of 32 px (512 x 512 area). */
export const I2I_CROP_PATCHES = (512 / 32) ** 2;
/** Understanding inputs: 32x32 patches of 32 px (1024 x 1024 area). */
export const MMU_CROP_PATCHES = (1024 / 32) ** 2;

/**
 * All (w, h) = (wp*patch, hp*patch) with wp*hp <= numPatches and aspect <= maxRatio, walking the
 * reference's staircase from the widest to the tallest.
 */
export function generateCropSizeList(numPatches: number, patchSize = 32, maxRatio = 4.0): Size[] {
  if (maxRatio < 1) throw new RangeError("maxRatio must be >= 1");
  const out: Size[] = [];
  let wp = numPatches, hp = 1;
  while (wp > 0) {
    if (Math.max(wp, hp) / Math.min(wp, hp) <= maxRatio) out.push([wp * patchSize, hp * patchSize]);
    if ((hp + 1) * wp <= numPatches) hp += 1;
    else wp -= 1;
  }
  return out;
}

const listCache = new Map<string, Size[]>();
function cachedList(numPatches: number, patchSize: number): Size[] {
  const key = `${numPatches}/${patchSize}`;
  let l = listCache.get(key);
  if (!l) listCache.set(key, (l = generateCropSizeList(numPatches, patchSize)));
  return l;
}

export function i2iCropSizes(): Size[] {
  return cachedList(I2I_CROP_PATCHES, 32);
}
export function mmuCropSizes(): Size[] {
  return cachedList(MMU_CROP_PATCHES, 32);
}

/**
 * var_center_crop's choice: the size keeping the largest fraction of the image,
 * min(cw/w, ch/h) / max(cw/w, ch/h), ties going to the larger (cw, ch) (Python's reverse tuple sort).
 */
export function chooseCropSize(width: number, height: number, sizes: readonly Size[]): Size {
  if (sizes.length === 0) throw new RangeError("empty crop size list");
  let best: Size = sizes[0];
  let bestScore = -1;
  for (const s of sizes) {
    const rw = s[0] / width, rh = s[1] / height;
    const score = Math.min(rw, rh) / Math.max(rw, rh);
    if (score > bestScore || (score === bestScore && (s[0] > best[0] || (s[0] === best[0] && s[1] > best[1])))) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

/** Python 3 round(): half to even. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** The steps of center_crop(img, crop): BOX halvings, one BICUBIC resize, then a centred crop box. */
export interface CropPlan {
  /** Successive sizes after each BOX halving (each `size // 2`). */
  halvings: Size[];
  /** Size after the BICUBIC resize by max(cw/w, ch/h), rounded half-to-even. */
  resized: Size;
  /** Crop box in the resized image. */
  left: number;
  top: number;
  crop: Size;
}

export function planCenterCrop(width: number, height: number, crop: Size): CropPlan {
  const [cw, ch] = crop;
  let w = width, h = height;
  const halvings: Size[] = [];
  while (w >= 2 * cw && h >= 2 * ch) {
    w = Math.floor(w / 2);
    h = Math.floor(h / 2);
    halvings.push([w, h]);
  }
  const scale = Math.max(cw / w, ch / h);
  const resized: Size = [pyRound(w * scale), pyRound(h * scale)];
  return { halvings, resized, left: Math.floor((resized[0] - cw) / 2), top: Math.floor((resized[1] - ch) / 2), crop: [cw, ch] };
}

/** Largest multiple of 16 not above each side (the VQ processor's floor; painting keeps the image size). */
export function floorTo16(width: number, height: number): Size {
  return [Math.floor(width / 16) * 16, Math.floor(height / 16) * 16];
}
