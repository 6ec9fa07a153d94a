// The ring all-reduce the D replicas of a stage sum their gradients with (`--replicas`), as a pure
// state machine per rank: pieces of messages in, pieces out, no sockets and no clock. The gRPC
// streams between the replicas' workers (worker/replica-ring.ts) are the adapter that carries them.
//
// The flat gradient of a stage is cut into D contiguous chunks. Ranks form the ring 0 -> 1 -> ...
// -> D-1 -> 0. Reduce-scatter, D - 1 steps: at step t rank r sends chunk (r - t) mod D to rank
// r + 1, which adds its own values of that chunk to what it received. Chunk c is thus summed in
// the order of the ranks from c on: ((p_c + p_c+1) + p_c+2) + ... + p_c+D-1 (indices mod D), and
// rank c - 1 ends with its total. All-gather, D - 1 more steps: at step t rank r sends chunk
// (r + 1 - t) mod D, a total, to rank r + 1, which keeps it. Every rank ends with the same bits:
// each chunk is added up once, in an order fixed by D alone, so the same partial sums always give
// the same result, whichever worker computed them (ranks are replica slots, not workers).
//
// Addition is float32's: each sum is stored into a Float32Array, which rounds the exact double sum
// of two float32 values once, as float32 addition does (double has more than 2 x 24 + 2 bits).
// Each link carries 2 (D - 1) / D of the vector: the bandwidth a ring all-reduce is known for.

import { TENSOR_CHUNK_BYTES } from '../domain/tensor-codec.ts';

/** Thrown when a rank is fed a message that is not the one its schedule expects next. */
export class RingOrderError extends Error {
  override readonly name = 'RingOrderError';
}

/** A half-open range of the flat vector: values [from, to). */
export interface ChunkRange {
  readonly from: number;
  readonly to: number;
}

/**
 * One piece of a ring message: the message of ring step `step` (0 .. 2(D - 1) - 1) carries chunk
 * `chunk` of the vector to the next rank, in `count` pieces sent in order (at least one, empty for
 * an empty chunk); piece `index` holds the values that follow those of the pieces before it.
 */
export interface RingPiece {
  readonly step: number;
  readonly chunk: number;
  readonly index: number;
  readonly count: number;
  readonly values: Float32Array;
}

/** Values per piece a rank cuts its own chunk into: ~1 MiB of float32, what one gRPC message carries. */
export const RING_PIECE_VALUES = TENSOR_CHUNK_BYTES / 4;

/** D contiguous chunks of a vector of `length` values, their sizes differing by at most one. */
export function ringChunks(length: number, ranks: number): ChunkRange[] {
  if (!Number.isInteger(ranks) || ranks < 1) throw new RangeError(`ranks must be a positive integer, not ${ranks}`);
  if (!Number.isInteger(length) || length < 0) throw new RangeError(`length must be a non-negative integer, not ${length}`);
  const base = Math.floor(length / ranks);
  const longer = length % ranks;
  const out: ChunkRange[] = [];
  let from = 0;
  for (let c = 0; c < ranks; c++) {
    const to = from + base + (c < longer ? 1 : 0);
    out.push({ from, to });
    from = to;
  }
  return out;
}

const mod = (a: number, n: number) => ((a % n) + n) % n;

/**
 * An all-reduce summed in buckets (overlapped with the backward pass): the buckets, in the order
 * they are summed, each a ring of its own over its range (`RingAllReduce`'s `bucket`); bucket b
 * begins once `ready(b)` resolves, the values of its range being final in every part by then. A
 * rejection of `ready` abandons the all-reduce with that error.
 */
export interface ReducePlan {
  readonly buckets: readonly ChunkRange[];
  ready(bucket: number): Promise<void>;
}

/** Values a bucket of an overlapped all-reduce holds at least (but the first, which takes what is left): 4 MiB of float32. */
export const BUCKET_VALUES = (4 << 20) / 4;

/**
 * The buckets an all-reduce overlapped with the backward pass cuts a flat gradient into: runs of
 * whole variables (`sizes`, in the vector's order), each of at least `minValues` values but the
 * one at the front, listed from the back of the vector, the order a backward pass finishes the
 * variables in (the head's first, the embedding's last). Every replica cuts the same.
 */
export function reduceBuckets(sizes: readonly number[], minValues: number = BUCKET_VALUES): ChunkRange[] {
  if (!Number.isInteger(minValues) || minValues < 1) throw new RangeError(`minValues must be a positive integer, not ${minValues}`);
  const out: ChunkRange[] = [];
  let to = sizes.reduce((n, s) => n + s, 0);
  let from = to;
  for (let i = sizes.length - 1; i >= 0; i--) {
    from -= sizes[i]!;
    if (to - from >= minValues) {
      out.push({ from, to });
      to = from;
    }
  }
  if (to > 0 || out.length === 0) out.push({ from: 0, to });
  return out;
}

/** The chunk rank `rank` sends at step `step` of a ring of `ranks` (reduce-scatter, then all-gather). */
export function chunkSent(rank: number, step: number, ranks: number): number {
  return step < ranks - 1 ? mod(rank - step, ranks) : mod(rank + 1 - (step - (ranks - 1)), ranks);
}

/** Steps of a whole all-reduce: D - 1 of reduce-scatter and D - 1 of all-gather. */
export function ringSteps(ranks: number): number {
  return 2 * (ranks - 1);
}

/**
 * One rank's part in one all-reduce, a piece at a time. `start()` gives the pieces of its first
 * message (views of `own`). Each piece received from the previous rank, fed to `receive` in the
 * order it was sent, is added into `result` (reduce-scatter) or copied there (all-gather) at once,
 * and gives the piece of the next message that covers the same values, ready to be forwarded:
 * a rank sends at step t + 1 exactly the chunk it received at step t, so a piece can go on as soon
 * as it is in, and the ring is a pipeline of pieces rather than of whole messages. When `done`,
 * `result` holds the sum of every rank's vector, identical on every rank.
 *
 * Buffers: `own` is never written, and is read until `done` (its chunk is sent from it, and it is
 * the other operand of every sum), so it must not change meanwhile. `result` is a new array; it is
 * never copied from `own`: in reduce-scatter each value is summed into exactly once (a rank sums a
 * different chunk at each step and never its own chunk), so `received + own` is the very operation,
 * operands and order, that `received + result` was when `result` began as a copy of `own`. A piece
 * returned views `result`; its values change again only when the same values come back round the
 * ring, which they can only after the next rank received that piece: a sender that copies a piece
 * when it writes it may queue the view until then.
 */
export class RingAllReduce {
  readonly chunks: readonly ChunkRange[];
  /** The sum, filled in chunk by chunk as the ring goes. */
  readonly result: Float32Array;
  /** The ring step whose message is being received; `ringSteps(ranks)` once done. */
  private step = 0;
  /** The next piece of that message, the pieces it comes in (known from its first), the values in so far. */
  private index = 0;
  private count = 0;
  private offset = 0;
  private started = false;

  constructor(
    readonly rank: number,
    readonly ranks: number,
    private readonly own: Float32Array,
    /** Values per piece of this rank's own chunk; the pieces it forwards are those it received. */
    readonly pieceValues: number = RING_PIECE_VALUES,
    /**
     * Only the values of `bucket.range` (a bucket of the vector, summed on its own), into
     * `bucket.into` (the whole vector's result, of own's length; nothing outside the range is
     * written). Chunk c is then chunk c of the whole vector cut to the range, so each value is
     * summed in the order it would be in one all-reduce of the whole vector: the same bits.
     */
    bucket?: { readonly range: ChunkRange; readonly into: Float32Array },
  ) {
    if (!Number.isInteger(rank) || rank < 0 || rank >= ranks) throw new RangeError(`rank ${rank} is not one of the ${ranks} ranks`);
    if (!Number.isInteger(pieceValues) || pieceValues < 1) throw new RangeError(`pieceValues must be a positive integer, not ${pieceValues}`);
    const whole = ringChunks(own.length, ranks);
    if (!bucket) {
      this.chunks = whole;
      // One rank adds nothing: its sum is its own values, in a new array as for any D.
      this.result = ranks === 1 ? Float32Array.from(own) : new Float32Array(own.length);
      return;
    }
    const { range, into } = bucket;
    if (!(Number.isInteger(range.from) && Number.isInteger(range.to) && range.from >= 0 && range.from <= range.to && range.to <= own.length)) {
      throw new RangeError(`bucket [${range.from}, ${range.to}) is not a range of a vector of ${own.length} values`);
    }
    if (into.length !== own.length) throw new RangeError(`a bucket's result has ${into.length} values, its vector ${own.length}`);
    this.chunks = whole.map((c) => {
      const from = Math.min(Math.max(c.from, range.from), range.to);
      return { from, to: Math.max(from, Math.min(c.to, range.to)) };
    });
    this.result = into;
    if (ranks === 1) into.set(own.subarray(range.from, range.to), range.from);
  }

  get done(): boolean {
    return this.step >= ringSteps(this.ranks);
  }

  /** The ring step whose pieces `receive` expects next (`ringSteps(ranks)` once done). */
  get ringStep(): number {
    return this.step;
  }

  /** The pieces of the first message, views of `own` (none with one rank: there is nothing to add). Once only. */
  start(): RingPiece[] {
    if (this.started) throw new RingOrderError(`rank ${this.rank} started twice`);
    this.started = true;
    if (this.done) return [];
    const chunk = chunkSent(this.rank, 0, this.ranks);
    const { from, to } = this.chunks[chunk]!;
    const count = Math.max(1, Math.ceil((to - from) / this.pieceValues));
    return Array.from({ length: count }, (_, index) => {
      const at = from + index * this.pieceValues;
      return { step: 0, chunk, index, count, values: this.own.subarray(at, Math.min(to, at + this.pieceValues)) };
    });
  }

  /**
   * Takes the previous rank's next piece, adds it in (or keeps it, in all-gather) and gives the
   * piece of the next message over the same values (a view of `result`), or null at the last step.
   * RingOrderError for a piece that is not the next one, or does not fit its chunk; nothing is
   * changed then.
   */
  receive(p: RingPiece): RingPiece | null {
    if (!this.started) throw new RingOrderError(`rank ${this.rank} received before it started`);
    if (this.done) throw new RingOrderError(`rank ${this.rank} received step ${p.step} after the last step`);
    const prev = mod(this.rank - 1, this.ranks);
    const chunk = chunkSent(prev, this.step, this.ranks);
    if (p.step !== this.step || p.chunk !== chunk) {
      throw new RingOrderError(`rank ${this.rank} expected chunk ${chunk} of step ${this.step} from rank ${prev}, got chunk ${p.chunk} of step ${p.step}`);
    }
    const count = this.index === 0 ? p.count : this.count;
    if (p.index !== this.index || p.count !== count || count < 1) {
      throw new RingOrderError(`rank ${this.rank} expected piece ${this.index}${this.index === 0 ? '' : ` of ${count}`} of step ${this.step}, got piece ${p.index} of ${p.count}`);
    }
    const { from, to } = this.chunks[chunk]!;
    const at = from + this.offset;
    const n = p.values.length;
    const last = p.index === count - 1;
    if (last ? at + n !== to : at + n >= to) {
      throw new RingOrderError(`rank ${this.rank}: chunk ${chunk} has ${to - from} values, the message ${last ? at + n - from : `more than ${to - from}`}`);
    }
    const v = p.values;
    const out = this.result;
    if (this.step < this.ranks - 1) {
      // Reduce-scatter: what came (the ranks before, in ring order) plus this rank's own values.
      addInto(out.subarray(at, at + n), v, this.own.subarray(at, at + n));
    } else {
      out.set(v, at);
    }
    const step = this.step;
    if (last) {
      this.step += 1;
      this.index = 0;
      this.count = 0;
      this.offset = 0;
    } else {
      this.index += 1;
      this.count = count;
      this.offset += n;
    }
    // The next message carries the chunk just received: chunkSent(rank, t + 1) = chunkSent(rank - 1, t).
    if (step + 1 >= ringSteps(this.ranks)) return null;
    return { step: step + 1, chunk, index: p.index, count, values: out.subarray(at, at + n) };
  }
}

/**
 * `out[i] = received[i] + own[i]` in float32, on views of one length. A function of its own, this
 * small, is compiled to a tight loop at once; inlined in `receive` the loop ran several times slower.
 */
function addInto(out: Float32Array, received: Float32Array, own: Float32Array): void {
  const n = out.length;
  for (let i = 0; i < n; i++) out[i] = received[i]! + own[i]!;
}

/**
 * What the ring computes, added up directly: chunk c as ((p_c + p_c+1) + ...) + p_c+D-1 in
 * float32. The reference the ring is checked against.
 */
export function ringSumReference(parts: readonly Float32Array[]): Float32Array {
  const ranks = parts.length;
  const length = parts[0]?.length ?? 0;
  const out = new Float32Array(length);
  ringChunks(length, ranks).forEach(({ from, to }, c) => {
    for (let i = from; i < to; i++) {
      const acc = new Float32Array(1);
      acc[0] = parts[c]![i]!;
      for (let k = 1; k < ranks; k++) acc[0] = acc[0]! + parts[mod(c + k, ranks)]![i]!;
      out[i] = acc[0]!;
    }
  });
  return out;
}
