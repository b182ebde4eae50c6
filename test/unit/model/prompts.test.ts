import { describe, expect, it } from "vitest";
import {
  chatPrompt,
  imageToImagePrompts,
  isStyleTransfer,
  textToImagePrompts,
  understandingPrompt,
  uncondPrompt,
} from "../../../gpu-backend/src/model/prompts";

describe("prompt templates (docs/model.md §1.4)", () => {
  it("text-to-image cond and uncond, no separators", () => {
    const p = textToImagePrompts("a cat");
    expect(p.cond).toBe("<system>Generate an image according to the text prompt.</system><user>a cat</user>");
    expect(p.uncond).toBe("<system>Generate an image according to the text prompt.</system><user><uncondition></user>");
  });

  it("every image-to-image branch, in the reference's order", () => {
    const cases: Array<[string, string, string]> = [
      ["edit_add", "Generate an image applying the following editing instruction based on the original image.", "add a hat"],
      ["edit_background", "Generate an image applying the following editing instruction based on the original image.", "add a hat"],
      ["depth_control", "Generate an image according to the text prompt and the given control image.", "add a hat"],
      ["subject_driven", "Generate an image according to the text prompt and the given object image.", "add a hat"],
      ["image_ref_transfer", "Transform the current image into the style of the provided image.", "Transform the current image into the style of the provided image."],
      ["multi_view_left", "Generate a view-image based on the given image.", "Generate the left view based on the provided front view."],
      ["depth_dense", "Perform dense prediction on the given images.", "Generate a depth map according to the image."],
      ["openpose_dense", "Perform dense prediction on the given images.", "Generate a pose estimation map according to the image."],
      ["sam2mask_dense", "Perform dense prediction on the given images.", "Generate a sam2 mask according to the image."],
      ["weird_dense", "Perform dense prediction on the given images.", "Generate a dense map according to the image."],
      // README's *_pred types fall through to the generic branch (reference bug kept for parity, docs/model.md §11).
      ["canny_pred", "Generate an image according to the prompt and image.", "add a hat"],
      ["something_else", "Generate an image according to the prompt and image.", "add a hat"],
    ];
    for (const [type, system, user] of cases) {
      const p = imageToImagePrompts(type, "add a hat");
      expect(p.system, type).toBe(system);
      expect(p.user, type).toBe(user);
      expect(p.cond).toBe(chatPrompt(system, user));
      expect(p.uncond).toBe(uncondPrompt(system));
    }
  });

  it("branch precedence: dense beats control, control beats edit", () => {
    expect(imageToImagePrompts("canny_control_dense", "x").system).toBe("Perform dense prediction on the given images.");
    expect(imageToImagePrompts("edit_control", "x").system).toContain("control image");
  });

  it("style transfer detection follows the branch order", () => {
    expect(isStyleTransfer("image_ref_transfer")).toBe(true);
    expect(isStyleTransfer("edit_ref_transfer")).toBe(false);
    expect(isStyleTransfer("edit_add")).toBe(false);
  });

  it("understanding prompt", () => {
    expect(understandingPrompt("What is this?")).toBe(
      "<system>You are a multimodal model that can process both text and images. Answer the following question based on the provided images. Analyze each image and combine relevant details to answer.</system><user>What is this?</user>",
    );
  });
});
