import { describe, expect, it } from "vitest";
import * as T from "../../../gpu-backend/src/model/tokens";

describe("token ids (docs/model.md §10)", () => {
  it("match the reference", () => {
    expect(T.MASK).toBe(126336);
    expect(T.NEWLINE).toBe(126084);
    expect(T.BOI).toBe(126349);
    expect(T.EOI).toBe(126350);
    expect(T.UNCONDITION).toBe(126351);
    expect(T.BOA).toBe(126354);
    expect(T.EOA).toBe(126355);
    expect(T.PAD).toBe(126339);
    expect(T.IMAGE_OFFSET).toBe(126356);
    expect(T.CODEBOOK_SIZE).toBe(8192);
    expect(T.IMAGE_OFFSET + T.CODEBOOK_SIZE - 1).toBe(134547);
    expect(T.VOCAB_SIZE).toBe(134548);
  });
});
