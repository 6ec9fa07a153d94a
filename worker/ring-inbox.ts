// The ring messages one rank receives from the previous rank in one epoch: each awaited by the
// all-reduce under way, or kept until it asks (a faster neighbour sends a step early). Keyed by
// (training step, ring step); each is taken once. No sockets: worker/replica-ring.ts feeds it.

import { RefusalReason, type Refusal } from '../domain/refusal.ts';
import type { RingMessage } from './ring-all-reduce.ts';

/**
 * Thrown when a well-formed message is not one this ring can take: of a step or ring step already
 * past, or sent twice. The handler answers it with FAILED_PRECONDITION and the refusal.
 */
export class RingRefusedError extends Error {
  override readonly name = 'RingRefusedError';
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

const key = (step: number, ringStep: number) => `${step}:${ringStep}`;

export class RingInbox {
  private readonly kept = new Map<string, RingMessage>();
  private waiter: { key: string; resolve(m: RingMessage): void; reject(err: Error): void } | null = null;
  private failure: Error | null = null;
  /** Set when the previous rank's stream ended: what it sent can still be taken, nothing more comes. */
  private gone: Error | null = null;
  /** Rejects with the failure, so that a send waiting for 'drain' hears it too. */
  readonly failed: Promise<never>;
  private rejectFailed!: (err: Error) => void;
  /** Every message before (step, ringStep) was taken: a copy of one is stale. */
  private step = -1;
  private ringStep = 0;

  constructor() {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
  }

  /** Why every wait fails (a halt, the stream to the next rank broke, a new epoch), or null. */
  get failedWith(): Error | null {
    return this.failure;
  }

  /** The all-reduce of `step` begins: steps only increase; messages of earlier steps are dropped. */
  begin(step: number): void {
    if (step <= this.step) throw new RangeError(`all-reduce of step ${step} after step ${this.step}`);
    this.step = step;
    this.ringStep = 0;
    for (const k of [...this.kept.keys()]) if (Number(k.split(':')[0]) < step) this.kept.delete(k);
  }

  /** Fails the wait under way and every later one. The first reason stays. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectFailed(err);
    this.waiter?.reject(err);
    this.waiter = null;
  }

  /** The previous rank's stream ended (it left the epoch or died): a wait for a message not yet here fails. */
  senderGone(err: Error): void {
    this.gone ??= err;
    this.waiter?.reject(err);
    this.waiter = null;
  }

  /** The previous rank's message of (step, ringStep), now or once it arrives. One wait at a time. */
  take(step: number, ringStep: number): Promise<RingMessage> {
    if (this.failure) return Promise.reject(this.failure);
    const k = key(step, ringStep);
    const ready = this.kept.get(k);
    if (ready) {
      this.kept.delete(k);
      this.ringStep = ringStep + 1;
      return Promise.resolve(ready);
    }
    if (this.gone) return Promise.reject(this.gone);
    return new Promise((resolve, reject) => (this.waiter = { key: k, resolve, reject }));
  }

  /** A whole message from the previous rank. Throws RingRefusedError for one already past or sent twice. */
  put(step: number, ringStep: number, m: RingMessage): void {
    this.refuseStale(step, ringStep);
    const k = key(step, ringStep);
    if (this.waiter?.key === k) {
      const w = this.waiter;
      this.waiter = null;
      this.ringStep = ringStep + 1;
      w.resolve(m);
      return;
    }
    if (this.kept.has(k)) throw new RingRefusedError({ reason: RefusalReason.wrongStep, message: `ring message ${ringStep} of step ${step} arrived twice` });
    this.kept.set(k, m);
  }

  /** Throws RingRefusedError for a message of (step, ringStep) when that one was taken already. */
  refuseStale(step: number, ringStep: number): void {
    if (step < this.step || (step === this.step && ringStep < this.ringStep)) {
      throw new RingRefusedError({ reason: RefusalReason.wrongStep, message: `ring message ${ringStep} of step ${step} is stale: this replica is at message ${this.ringStep} of step ${this.step}` });
    }
  }

  /** Messages kept, not yet taken. */
  get pending(): number {
    return this.kept.size;
  }
}
