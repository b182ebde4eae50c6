// DiMOO's vocabulary layout: the special token ids and the image-code range, in one place.
// Values from the reference code (config.py); see docs/model.md §1.2 and §10.

export const MASK = 126336;
export const NEWLINE = 126084; // image end-of-row, after every row including the last
export const BOI = 126349; // <IMAGE>
export const EOI = 126350; // </IMAGE>
export const UNCONDITION = 126351; // <uncondition>, the CFG null prompt
export const BOA = 126354; // <answer>
export const EOA = 126355; // </answer>
export const PAD = 126339; // padding after </answer> in understanding
export const BOS = 126080; // <|startoftext|>
export const EOS = 126081; // <|endoftext|>

/** First image-code id: `id = IMAGE_OFFSET + vqIndex`. */
export const IMAGE_OFFSET = 126356;
/** VQ codebook size (aMUSEd VQ-GAN). */
export const CODEBOOK_SIZE = 8192;
/** Logit width of the transformer: 126356 text/special ids + 8192 image codes. */
export const VOCAB_SIZE = IMAGE_OFFSET + CODEBOOK_SIZE; // 134548
/** VQ downsampling: one code per 16x16 pixel cell. */
export const VQ_DOWNSAMPLE = 16;
