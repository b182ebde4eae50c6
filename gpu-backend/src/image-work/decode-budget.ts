// The memory budget for image work in flight: bytes of decoded pixels that jobs may hold at once. A job
// waits (first come, first served, so a large one is not starved by a stream of small ones) until its bytes
// fit; one that could never fit is refused at once by the caller (`fits`).

export class DecodeBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];
  private peak = 0;

  constructor(readonly totalBytes: number) {
    if (!(totalBytes > 0)) throw new RangeError(`decode budget must be positive, got ${totalBytes}`);
  }

  /** Whether a job of this size can ever run. */
  fits(bytes: number): boolean {
    return bytes <= this.totalBytes;
  }

  get inFlightBytes(): number {
    return this.used;
  }

  /** The most bytes ever held at once (for tests and metrics). */
  get peakBytes(): number {
    return this.peak;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves once `bytes` are reserved; call the returned function exactly once to give them back. */
  async acquire(bytes: number): Promise<() => void> {
    if (!this.fits(bytes)) throw new RangeError(`${bytes} bytes exceed the whole budget of ${this.totalBytes}`);
    if (this.waiting.length === 0 && this.used + bytes <= this.totalBytes) this.take(bytes);
    else await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.admit();
    };
  }

  private take(bytes: number): void {
    this.used += bytes;
    if (this.used > this.peak) this.peak = this.used;
  }

  private admit(): void {
    while (this.waiting.length > 0 && this.used + this.waiting[0].bytes <= this.totalBytes) {
      const next = this.waiting.shift()!;
      this.take(next.bytes);
      next.grant();
    }
  }
}
