// The size of the image the orchestrator produces for an edit, and the pixels of the inputs the model reads,
// computed at the edge so that reservations and charges quote the work that will run. A mirror of
// gpu-backend/src/model/crops.ts (the reference's 512-area crop list and var_center_crop's choice) and of
// the painting families' multiple-of-16 floor: the edge bundles no orchestrator code, and
// test/edge/output-size.test.ts pins both to the same answers.

/** [width, height] in pixels. */
export type Size = readonly [number, number];

/** Image-to-image inputs: 16x16 patches of 32 px (a 512 x 512 area). */
const I2I_PATCHES = (512 / 32) ** 2;
const PATCH = 32;
const MAX_RATIO = 4;

/** The reference's generate_crop_size_list: its staircase from the widest to the tallest, aspect <= 4. */
function cropSizeList(numPatches: number): Size[] {
  const out: Size[] = [];
  let wp = numPatches;
  let hp = 1;
  while (wp > 0) {
    if (Math.max(wp, hp) / Math.min(wp, hp) <= MAX_RATIO) out.push([wp * PATCH, hp * PATCH]);
    if ((hp + 1) * wp <= numPatches) hp += 1;
    else wp -= 1;
  }
  return out;
}

export const I2I_CROP_SIZES: readonly Size[] = cropSizeList(I2I_PATCHES);

/** var_center_crop's choice: the size keeping the largest fraction of the image, ties to the larger size. */
export function cropSizeFor(width: number, height: number, sizes: readonly Size[] = I2I_CROP_SIZES): Size {
  let best = sizes[0];
  let bestScore = -1;
  for (const s of sizes) {
    const rw = s[0] / width;
    const rh = s[1] / height;
    const score = Math.min(rw, rh) / Math.max(rw, rh);
    if (score > bestScore || (score === bestScore && (s[0] > best[0] || (s[0] === best[0] && s[1] > best[1])))) {
      best = s;
      bestScore = score;
    }
  }
  return best;
}

/** Painting keeps the image, resized to the largest multiple of 16 on each side. */
export const floorTo16 = (width: number, height: number): Size => [Math.floor(width / 16) * 16, Math.floor(height / 16) * 16];

/** The painting tasks: the input image is the canvas, so the output has (about) its size. */
export const isPainting = (task: string) => task === "inpaint" || task === "outpaint";

/**
 * What an edit's model call works on: the output size (image-to-image: the last input's crop size, as the
 * orchestrator takes it; painting: the image floored to multiples of 16) and the pixels of the input images
 * the model attends to at every step (image-to-image: each input at its crop size; painting: none besides
 * the canvas, whose known cells are part of the output grid).
 */
export function editWork(task: string, inputs: readonly { width: number; height: number }[]): { width: number; height: number; inputPixels: number } {
  if (isPainting(task)) {
    const [width, height] = floorTo16(inputs[0].width, inputs[0].height);
    return { width, height, inputPixels: 0 };
  }
  const crops = inputs.map((im) => cropSizeFor(im.width, im.height));
  const [width, height] = crops[crops.length - 1];
  return { width, height, inputPixels: crops.reduce((s, [w, h]) => s + w * h, 0) };
}
