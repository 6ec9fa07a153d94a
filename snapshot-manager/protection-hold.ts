// A recovery's claim on the node's CPU. While its worker restores or waits to be placed, a node's
// snapshot manager sends no shards: coding and streaming a snapshot take both cores of a small
// machine for seconds, and the recovery (a standby reading its state, the other stages hearing the
// halt, the coordinator's round trips) would wait behind them. The worker holds protection when it
// halts or takes over and lets go when it trains again; a hold ends by itself after its time, so a
// worker that dies holding it does not stop protection for good.

export class ProtectionHold {
  private until = 0;
  private timer: NodeJS.Timeout | null = null;
  private waiters: (() => void)[] = [];

  /** `ms` > 0: hold for at most that long from now (a later hold replaces it); -1: let go now; 0: no change. */
  set(ms: number): void {
    if (ms === 0) return;
    if (ms < 0) {
      this.release();
      return;
    }
    this.until = performance.now() + ms;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.release(), ms);
    this.timer.unref();
  }

  get held(): boolean {
    return this.until > performance.now();
  }

  /** Resolves at once when nothing holds protection, else when the hold ends. */
  async pass(): Promise<void> {
    if (!this.held) return;
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  release(): void {
    this.until = 0;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    for (const w of this.waiters.splice(0)) w();
  }
}
