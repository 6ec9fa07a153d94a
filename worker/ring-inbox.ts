// The pieces one rank receives from the previous rank in one epoch: handed at once to the
// all-reduce under way (which adds each into its sum as it comes), or kept, in the order they came,
// until the all-reduce of their step (or of their bucket of it) begins (a faster neighbour sends a
// step early). No sockets: worker/replica-ring.ts feeds it.

import type { ReduceChunk } from '../common/wire/reduce-wire.ts';
import { RefusalReason, type Refusal } from '../domain/refusal.ts';

/**
 * Thrown when a well-formed piece is not one this ring can take: of a step or ring step already
 * past. The handler answers it with FAILED_PRECONDITION and the refusal.
 */
export class RingRefusedError extends Error {
  override readonly name = 'RingRefusedError';
  constructor(readonly refusal: Refusal) {
    super(refusal.message);
  }
}

/** The all-reduce under way, as the inbox sees it. */
export interface PieceSink {
  /** Adds a piece in; throws (and changes nothing) for one that is not the next it expects. */
  receive(c: ReduceChunk): void;
  /** The ring step whose pieces it expects next: pieces of earlier ring steps are stale. */
  readonly ringStep: number;
}

/** One all-reduce of one step: the whole vector (bucket 0), or one of its buckets, summed one after another. */
export interface ReduceRound {
  readonly step: number;
  readonly bucket: number;
}

/** Whether round `a` comes before round `b`: steps increase, and within a step the buckets. */
const before = (a: ReduceRound, b: ReduceRound) => a.step < b.step || (a.step === b.step && a.bucket < b.bucket);
const same = (a: ReduceRound, b: ReduceRound) => a.step === b.step && a.bucket === b.bucket;
const named = (r: ReduceRound) => (r.bucket === 0 ? `step ${r.step}` : `bucket ${r.bucket} of step ${r.step}`);
const keyOf = (r: ReduceRound) => `${r.step}/${r.bucket}`;

export class RingInbox {
  /** Pieces of rounds that have not begun, by round, in the order they came. */
  private readonly kept = new Map<string, { readonly round: ReduceRound; readonly pieces: ReduceChunk[] }>();
  private sink: PieceSink | null = null;
  /** The sink of the current round once it has finished or failed: it only says what is stale. */
  private last: PieceSink | null = null;
  private waiter: { resolve(): void; reject(err: Error): void } | null = null;
  private failure: Error | null = null;
  /** Set when the previous rank's stream ended: what it sent is still used, nothing more comes. */
  private gone: Error | null = null;
  /** Rejects with the failure, so that a send waiting for 'drain' hears it too. */
  readonly failed: Promise<never>;
  private rejectFailed!: (err: Error) => void;
  /** The last round begun: pieces of earlier rounds are stale. */
  private round: ReduceRound = { step: -1, bucket: 0 };

  constructor() {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
  }

  /** Why every wait fails (a halt, the stream to the next rank broke, a new epoch), or null. */
  get failedWith(): Error | null {
    return this.failure;
  }

  /**
   * The all-reduce of `step` (of its bucket `bucket`) begins: rounds only go forward; pieces of
   * earlier rounds are dropped, and those of this one already here go to `sink` in the order they
   * came (what a kept piece throws, `begin` throws). Until `end`, each piece of this round that
   * comes goes to `sink` at once.
   */
  begin(step: number, sink: PieceSink, bucket = 0): void {
    const round = { step, bucket };
    if (!before(this.round, round)) throw new RangeError(`all-reduce of ${named(round)} after ${named(this.round)}`);
    this.round = round;
    this.sink = null;
    this.last = sink;
    for (const [key, k] of [...this.kept]) if (before(k.round, round)) this.kept.delete(key);
    const early = this.kept.get(keyOf(round))?.pieces ?? [];
    this.kept.delete(keyOf(round));
    for (const c of early) sink.receive(c);
    this.sink = sink;
  }

  /** The all-reduce of the current step has finished or failed: its sink takes no more pieces. */
  end(): void {
    this.sink = null;
  }

  /** Fails the wait under way and every later one. The first reason stays. */
  fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.rejectFailed(err);
    this.waiter?.reject(err);
    this.waiter = null;
  }

  /** The previous rank's stream ended (it left the epoch or died): a wait for a piece not yet here fails. */
  senderGone(err: Error): void {
    this.gone ??= err;
    this.waiter?.reject(err);
    this.waiter = null;
  }

  /**
   * Resolves once the next piece has gone to the sink; rejects with the failure, or, the previous
   * rank being gone, at once: nothing more will come. One wait at a time.
   */
  next(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.gone) return Promise.reject(this.gone);
    return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
  }

  /**
   * A piece from the previous rank: to the sink if its all-reduce is under way (what the sink
   * throws, `put` throws), else kept. RingRefusedError for one already past.
   */
  put(c: ReduceChunk): void {
    this.refuseStale(c.step, c.ringStep, c.bucket);
    if (this.sink && same(c, this.round)) {
      this.sink.receive(c);
      const w = this.waiter;
      this.waiter = null;
      w?.resolve();
      return;
    }
    const key = keyOf(c);
    const k = this.kept.get(key);
    if (k) k.pieces.push(c);
    else this.kept.set(key, { round: { step: c.step, bucket: c.bucket }, pieces: [c] });
  }

  /** Throws RingRefusedError for a piece of (step, bucket, ringStep) when that ring step is past. */
  refuseStale(step: number, ringStep: number, bucket = 0): void {
    const round = { step, bucket };
    const at = same(round, this.round) ? (this.last?.ringStep ?? 0) : 0;
    if (before(round, this.round) || (same(round, this.round) && ringStep < at)) {
      throw new RingRefusedError({ reason: RefusalReason.wrongStep, message: `ring message ${ringStep} of ${named(round)} is stale: this replica is at message ${at} of ${named(this.round)}` });
    }
  }

  /** Pieces kept, not yet handed over. */
  get pending(): number {
    let n = 0;
    for (const k of this.kept.values()) n += k.pieces.length;
    return n;
  }
}
