// The streaming calls (Generate, Understand) this host is still answering, from admission to the last byte of
// their result: a drain waits for them after the step batcher is idle, because a request's VQ decode and
// image encoding run after it leaves the batcher, and closing the port before they are sent would cut it.
export class InflightCalls {
  private n = 0;
  private waiters: (() => void)[] = [];

  get count(): number {
    return this.n;
  }

  enter(): void {
    this.n++;
  }

  leave(): void {
    this.n = Math.max(0, this.n - 1);
    if (this.n === 0) for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves once no call is open. */
  whenIdle(): Promise<void> {
    if (this.n === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
