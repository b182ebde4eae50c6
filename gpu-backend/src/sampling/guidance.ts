// Classifier-free guidance as weights over branch logits (the engine forms sum_k w_k * logits_k at aligned
// target slots). Each reference formula is linear in the branch logits, so it is exactly such a sum:
//   t2i / inpaint / outpaint: (1+s) c - s u                                   (docs/model.md §3.4)
//   image-to-image:           c + st (c - u_text) + si (c - u_img)           (docs/model.md §4.1)
//   understanding:            u + (cfg+1)(c - u) = (1+cfg) c - cfg u         (docs/model.md §5.2)
// A zero-scale branch contributes exactly nothing, so it is dropped rather than computed: guidance 0 means
// one branch (K=1) and one forward per step.

import { InvalidArgument } from "../model/errors";

/** Branch roles; the first is always the conditional row. */
export type BranchRole = "cond" | "uncond" | "uncondText" | "uncondImage";

export interface Guidance {
  roles: BranchRole[];
  weights: Float32Array;
}

function checkScale(field: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new InvalidArgument(field, `must be a finite number >= 0, got ${v}`);
}

/** Text-to-image and painting: [1+s, -s], or [1] when s = 0. */
export function textToImageGuidance(cfgScale: number): Guidance {
  checkScale("cfg_scale", cfgScale);
  if (cfgScale === 0) return { roles: ["cond"], weights: Float32Array.of(1) };
  return { roles: ["cond", "uncond"], weights: Float32Array.of(1 + cfgScale, -cfgScale) };
}

/** Image-to-image: [1+st+si, -st, -si], leaving out whichever unconditional branch has scale 0. */
export function imageToImageGuidance(cfgText: number, cfgImage: number): Guidance {
  checkScale("cfg_scale", cfgText);
  checkScale("cfg_img", cfgImage);
  const roles: BranchRole[] = ["cond"];
  const w: number[] = [1 + cfgText + cfgImage];
  if (cfgText !== 0) {
    roles.push("uncondText");
    w.push(-cfgText);
  }
  if (cfgImage !== 0) {
    roles.push("uncondImage");
    w.push(-cfgImage);
  }
  return { roles, weights: Float32Array.from(w) };
}

/** Understanding: [1+cfg, -cfg] (uncond = prompt positions masked), or [1] when cfg = 0. */
export function understandingGuidance(cfg: number): Guidance {
  checkScale("cfg_scale", cfg);
  if (cfg === 0) return { roles: ["cond"], weights: Float32Array.of(1) };
  return { roles: ["cond", "uncond"], weights: Float32Array.of(1 + cfg, -cfg) };
}
