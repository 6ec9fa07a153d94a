// The ring all-reduce the D replicas of a stage will average their gradients with (`--replicas`,
// not wired in yet), as a pure state machine per rank: chunks in, chunks out, no sockets and no
// clock. The gRPC streams between the replicas' workers are an adapter that carries its messages.
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

/** Thrown when a rank is fed a message that is not the one its schedule expects next. */
export class RingOrderError extends Error {
  override readonly name = 'RingOrderError';
}

/** A half-open range of the flat vector: values [from, to). */
export interface ChunkRange {
  readonly from: number;
  readonly to: number;
}

/** One message of the ring: chunk `chunk` at step `step` (0 .. 2(D - 1) - 1), sent to the next rank. */
export interface RingMessage {
  readonly step: number;
  readonly chunk: number;
  readonly values: Float32Array;
}

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

/** The chunk rank `rank` sends at step `step` of a ring of `ranks` (reduce-scatter, then all-gather). */
export function chunkSent(rank: number, step: number, ranks: number): number {
  return step < ranks - 1 ? mod(rank - step, ranks) : mod(rank + 1 - (step - (ranks - 1)), ranks);
}

/** Steps of a whole all-reduce: D - 1 of reduce-scatter and D - 1 of all-gather. */
export function ringSteps(ranks: number): number {
  return 2 * (ranks - 1);
}

/**
 * One rank's part in one all-reduce. `start()` gives its first message; each message received
 * from the previous rank, fed to `receive`, gives the next one to send (null after the last step).
 * When `done`, `result` holds the sum of every rank's vector, identical on every rank.
 */
export class RingAllReduce {
  readonly chunks: readonly ChunkRange[];
  /** This rank's values, summed into and then overwritten by totals as the ring goes. */
  readonly result: Float32Array;
  private step = 0;
  private started = false;

  constructor(
    readonly rank: number,
    readonly ranks: number,
    own: Float32Array,
  ) {
    if (!Number.isInteger(rank) || rank < 0 || rank >= ranks) throw new RangeError(`rank ${rank} is not one of the ${ranks} ranks`);
    this.chunks = ringChunks(own.length, ranks);
    this.result = Float32Array.from(own);
  }

  get done(): boolean {
    return this.step >= ringSteps(this.ranks);
  }

  /** The first message to send (null with one rank: there is nothing to add). Once only. */
  start(): RingMessage | null {
    if (this.started) throw new RingOrderError(`rank ${this.rank} started twice`);
    this.started = true;
    return this.done ? null : this.message(0);
  }

  /** Takes the previous rank's message of the current step; gives this rank's next message, or null when done. */
  receive(m: RingMessage): RingMessage | null {
    if (!this.started) throw new RingOrderError(`rank ${this.rank} received before it started`);
    if (this.done) throw new RingOrderError(`rank ${this.rank} received step ${m.step} after the last step`);
    const from = mod(this.rank - 1, this.ranks);
    const chunk = chunkSent(from, this.step, this.ranks);
    if (m.step !== this.step || m.chunk !== chunk) {
      throw new RingOrderError(`rank ${this.rank} expected chunk ${chunk} of step ${this.step} from rank ${from}, got chunk ${m.chunk} of step ${m.step}`);
    }
    const { from: at, to } = this.chunks[chunk]!;
    if (m.values.length !== to - at) throw new RingOrderError(`rank ${this.rank}: chunk ${chunk} has ${to - at} values, the message ${m.values.length}`);
    if (this.step < this.ranks - 1) {
      // Reduce-scatter: what came (the ranks before, in ring order) plus this rank's own values.
      for (let i = 0; i < m.values.length; i++) this.result[at + i] = m.values[i]! + this.result[at + i]!;
    } else {
      this.result.set(m.values, at);
    }
    this.step += 1;
    return this.done ? null : this.message(this.step);
  }

  private message(step: number): RingMessage {
    const chunk = chunkSent(this.rank, step, this.ranks);
    const { from, to } = this.chunks[chunk]!;
    return { step, chunk, values: this.result.slice(from, to) };
  }
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
