// Retry delays that grow: the n-th retry waits initialMs * factor^n, at most maxMs. Pure: the
// caller owns the timer and the clock.

export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  /** Growth per retry; 1 keeps the delay constant. */
  readonly factor: number;
}

export class Backoff {
  private attempt = 0;

  constructor(readonly options: BackoffOptions) {
    if (!(options.initialMs > 0) || !(options.maxMs >= options.initialMs) || !(options.factor >= 1)) {
      throw new RangeError(`a backoff needs 0 < initialMs <= maxMs and factor >= 1, got ${JSON.stringify(options)}`);
    }
  }

  /** The delay before the next retry; each call moves one retry on. */
  next(): number {
    const { initialMs, maxMs, factor } = this.options;
    const delay = Math.min(maxMs, initialMs * factor ** this.attempt);
    this.attempt += 1;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }
}
