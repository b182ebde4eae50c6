// Typed errors of the model layer, so the service can map bad user input to INVALID_ARGUMENT with the
// offending field named (and tell it apart from our own bugs, which stay plain Errors).

/** The caller sent something we cannot use; `field` names the request field (e.g. "image", "mask"). */
export class InvalidArgument extends Error {
  readonly code = "INVALID_ARGUMENT" as const;
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = "InvalidArgument";
  }
}

/** A tokenizer.json uses a component or option this implementation does not support. */
export class UnsupportedTokenizer extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UnsupportedTokenizer";
  }
}

export function isInvalidArgument(e: unknown): e is InvalidArgument {
  return e instanceof InvalidArgument;
}
