// Every documented edit type, through the real validation pipeline and tokenizer: the system prompt, the user
// text (the caller's or the reference's fixed one) and the token ids of both prompts, pinned. The expected
// strings are written out from the reference's utils/prompt_utils.py (docs/model.md §4.4); the ids are
// recorded in fixtures/edit-type-prompts.json (regenerate with UPDATE_GOLDENS=1 after a deliberate change).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { create } from "@bufbuild/protobuf";
import { beforeAll, describe, expect, it } from "vitest";
import { GenerateRequestSchema, Task } from "../../../proto/gen/dimoo/v1/dimoo_pb";
import { devTokenizerJson } from "../../../gpu-backend/src/model/dev-tokenizer";
import { encodeImage } from "../../../gpu-backend/src/model/image-codec";
import { Tokenizer } from "../../../gpu-backend/src/model/tokenizer";
import { createGeneratePipeline } from "../../../gpu-backend/src/tasks/generate";
import { DEFAULT_LIMITS } from "../../../gpu-backend/src/tasks/limits";
import type { VqRunner } from "../../../gpu-backend/src/engine/runners";

const HERE = dirname(fileURLToPath(import.meta.url));
const GOLDENS = join(HERE, "fixtures/edit-type-prompts.json");

const EDIT = "Generate an image applying the following editing instruction based on the original image.";
const CONTROL = "Generate an image according to the text prompt and the given control image.";
const SUBJECT = "Generate an image according to the text prompt and the given object image.";
const STYLE = "Transform the current image into the style of the provided image.";
const VIEW = "Generate a view-image based on the given image.";
const DENSE = "Perform dense prediction on the given images.";
const GENERIC = "Generate an image according to the prompt and image.";
const T2I = "Generate an image according to the text prompt.";

const USER = "make it night";

/** [task, edit_type as sent, reference edit_type, system, user text] */
const CASES: Array<[keyof typeof Task, string, string, string, string]> = [
  ["EDIT", "", "edit", EDIT, USER],
  ["EDIT", "edit_add", "edit_add", EDIT, USER],
  ["EDIT", "remove", "edit_remove", EDIT, USER],
  ["EDIT", "edit_replace", "edit_replace", EDIT, USER],
  ["EDIT", "edit_background", "edit_background", EDIT, USER],
  ["EDIT", "edit_text_transfer", "edit_text_transfer", EDIT, USER],
  ["CONTROL", "canny", "canny_control", CONTROL, USER],
  ["CONTROL", "hed_control", "hed_control", CONTROL, USER],
  ["CONTROL", "depth_control", "depth_control", CONTROL, USER],
  ["CONTROL", "openpose", "openpose_control", CONTROL, USER],
  ["SUBJECT", "", "subject_driven", SUBJECT, USER],
  // The README's dense prediction: the generic branch with the caller's prompt, as the reference runs it.
  ["DENSE", "canny_pred", "canny_pred", GENERIC, USER],
  ["DENSE", "hed_pred", "hed_pred", GENERIC, USER],
  ["DENSE", "depth", "depth_pred", GENERIC, USER],
  ["DENSE", "openpose_pred", "openpose_pred", GENERIC, USER],
  // The prompt builder's dense branch, reachable only by naming it: fixed user text, the caller's ignored.
  ["DENSE", "canny_dense", "canny_dense", DENSE, "Generate a canny edge map according to the image."],
  ["DENSE", "normal_dense", "normal_dense", DENSE, "Generate a normal map according to the image."],
  ["DENSE", "sam2mask_dense", "sam2mask_dense", DENSE, "Generate a sam2 mask according to the image."],
  ["DENSE", "openpose_dense", "openpose_dense", DENSE, "Generate a pose estimation map according to the image."],
  ["STYLE", "", "image_ref_transfer", STYLE, STYLE],
  ["MULTIVIEW", "left", "multi_view_left", VIEW, "Generate the left view based on the provided front view."],
  ["MULTIVIEW", "multi_view_back", "multi_view_back", VIEW, "Generate the back view based on the provided front view."],
  ["INPAINT", "", "", T2I, USER],
  ["OUTPAINT", "", "", T2I, USER],
];

const noVq = {} as VqRunner;
const tokenizer = Tokenizer.fromJSON(devTokenizerJson());
const pipeline = createGeneratePipeline({ tokenizer, vq: noVq, limits: DEFAULT_LIMITS });

let image: Uint8Array;
let mask: Uint8Array;
beforeAll(async () => {
  const px = new Uint8Array(3 * 64 * 64).fill(128);
  image = await encodeImage({ width: 64, height: 64, data: px });
  // White (regenerate) top half in all three planes.
  const m = new Uint8Array(3 * 64 * 64);
  for (let c = 0; c < 3; c++) m.fill(255, c * 64 * 64, c * 64 * 64 + 64 * 32);
  mask = await encodeImage({ width: 64, height: 64, data: m });
});

interface Golden {
  key: string;
  cond: number[];
  uncond: number[];
}

describe("edit types route exactly as the reference's prompt builder", () => {
  const recorded: Golden[] = [];
  const goldens: Golden[] = existsSync(GOLDENS) ? JSON.parse(readFileSync(GOLDENS, "utf8")) : [];

  for (const [task, sent, refType, system, user] of CASES) {
    const key = `${task}/${sent || "-"}`;
    it(key, async () => {
      const images = task === "STYLE" ? [image, image] : [image];
      const painting = task === "INPAINT" || task === "OUTPAINT";
      const spec = await pipeline.validate(
        create(GenerateRequestSchema, { task: Task[task], editType: sent, prompt: USER, images, mask: painting ? mask : new Uint8Array(), seed: 1n }),
      );
      expect(spec.params.editType).toBe(refType);
      const cond = `<system>${system}</system><user>${user}</user>`;
      const uncond = `<system>${system}</system><user><uncondition></user>`;
      expect(spec.family.prompts(spec.params)).toMatchObject({ system, user, cond, uncond });
      expect(spec.prompt).toEqual(tokenizer.encode(cond));
      expect(spec.uncondPrompt).toEqual(tokenizer.encode(uncond));
      expect(tokenizer.decode(spec.prompt)).toContain(`${system}</system><user>${user}`);
      recorded.push({ key, cond: spec.prompt, uncond: spec.uncondPrompt });
      if (!process.env.UPDATE_GOLDENS) {
        const g = goldens.find((x) => x.key === key);
        expect(g, `no golden for ${key}`).toBeDefined();
        expect(spec.prompt).toEqual(g!.cond);
        expect(spec.uncondPrompt).toEqual(g!.uncond);
      }
    });
  }

  it("writes the goldens when asked", () => {
    if (process.env.UPDATE_GOLDENS) writeFileSync(GOLDENS, JSON.stringify(recorded, null, 0).replace(/\},\{/g, "},\n{") + "\n");
    expect(recorded.length).toBe(CASES.length);
  });
});
