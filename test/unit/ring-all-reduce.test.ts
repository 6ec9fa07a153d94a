// The ring all-reduce the replicas of a stage sum gradients with: every rank ends with the same
// bits, the sum of each chunk taken in the one order the ring fixes, whatever the values and
// whatever the interleaving of the links, with pieces forwarded as they come; each link carries
// 2 (D - 1) / D of the vector; a piece out of order is refused; `own` is never written.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../domain/prng.ts';
import { RingAllReduce, RingOrderError, reduceBuckets, ringChunks, ringSteps, ringSumReference, type ChunkRange, type RingPiece } from '../../worker/ring-all-reduce.ts';

/**
 * Runs D ranks to the end: each link is a FIFO of pieces from rank r to rank r + 1, and each turn
 * `pick` chooses which link delivers its next piece (any interleaving a network may make). A piece
 * stays a view of its sender's arrays until it is delivered, the latest a sender could copy it:
 * if the values of a view in flight changed, the sums would. Returns the ranks and the values each sent.
 */
function runRing(parts: readonly Float32Array[], pieceValues?: number, pick: (links: number) => number = () => 0, bucket?: { range: ChunkRange; into: readonly Float32Array[] }): { ranks: RingAllReduce[]; sent: number[] } {
  const D = parts.length;
  const ranks = parts.map((p, r) => new RingAllReduce(r, D, p, pieceValues, bucket && { range: bucket.range, into: bucket.into[r]! }));
  const sent = new Array<number>(D).fill(0);
  const links: RingPiece[][] = ranks.map((r) => r.start());
  for (;;) {
    const busy = links.flatMap((l, r) => (l.length > 0 ? [r] : []));
    if (busy.length === 0) break;
    const r = busy[pick(busy.length)]!;
    const piece = links[r]!.shift()!;
    sent[r]! += piece.values.length;
    const out = ranks[(r + 1) % D]!.receive(piece);
    if (out) links[(r + 1) % D]!.push(out);
  }
  return { ranks, sent };
}

/** Values whose float32 sums depend on the order they are added in. */
function partsOf(seed: number, ranks: number, length: number): Float32Array[] {
  const rng = new Prng(seed);
  return Array.from({ length: ranks }, () => Float32Array.from({ length }, () => (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 8 - 4)));
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('ring all-reduce', () => {
  it('cuts the vector into D contiguous chunks differing by at most one value', () => {
    expect(ringChunks(10, 3)).toEqual([
      { from: 0, to: 4 },
      { from: 4, to: 7 },
      { from: 7, to: 10 },
    ]);
    expect(ringChunks(2, 4).map((c) => c.to - c.from)).toEqual([1, 1, 0, 0]);
    expect(() => ringChunks(5, 0)).toThrow(RangeError);
  });

  it('gives every rank the same bits: each chunk summed once, in the order the ring fixes', () => {
    for (const D of [1, 2, 3, 4, 5]) {
      for (const length of [0, 1, 7, 64, 1001]) {
        for (const pieceValues of [undefined, 1, 5]) {
          const parts = partsOf(D * 1000 + length, D, length);
          const copies = parts.map((p) => Float32Array.from(p));
          const { ranks } = runRing(parts, pieceValues);
          const want = bits(ringSumReference(parts));
          for (const r of ranks) {
            expect(r.done).toBe(true);
            expect(bits(r.result).equals(want)).toBe(true);
          }
          // `own` is read, never written.
          parts.forEach((p, i) => expect(bits(p).equals(bits(copies[i]!))).toBe(true));
        }
      }
    }
  });

  it('gives the same bits whatever the order the links deliver in, pieces forwarded as they come', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 5 }), fc.integer({ min: 0, max: 200 }), fc.integer({ min: 1, max: 9 }), fc.integer(), (D, length, pieceValues, seed) => {
        const parts = partsOf(seed, D, length);
        const rng = new Prng(seed ^ 0x5bd1e995);
        const { ranks } = runRing(parts, pieceValues, (n) => Math.floor(rng.next() * n));
        const want = bits(ringSumReference(parts));
        for (const r of ranks) expect(bits(r.result).equals(want)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('forwards a piece as soon as it is in: the next message over the same values, before the rest of its message', () => {
    const parts = partsOf(4, 3, 30);
    const r1 = new RingAllReduce(1, 3, parts[1]!, 4);
    r1.start();
    const first = new RingAllReduce(0, 3, parts[0]!, 4).start();
    expect(first.map((p) => [p.step, p.chunk, p.index, p.count, p.values.length])).toEqual([
      [0, 0, 0, 3, 4],
      [0, 0, 1, 3, 4],
      [0, 0, 2, 3, 2],
    ]);
    const out = r1.receive(first[0]!)!;
    expect([out.step, out.chunk, out.index, out.count]).toEqual([1, 0, 0, 3]);
    expect(Array.from(out.values)).toEqual(Array.from(parts[0]!.subarray(0, 4), (x, i) => Math.fround(x + parts[1]![i]!)));
  });

  it('with two ranks is the plain float32 sum, and with more the order is the ring\'s (not left to right)', () => {
    const [a, b] = partsOf(7, 2, 500);
    const sum = Float32Array.from(a!, (x, i) => x + b![i]!);
    expect(bits(runRing([a!, b!]).ranks[1]!.result).equals(bits(sum))).toBe(true);
    // Three ranks: chunk 1 is (p1 + p2) + p0, which differs from (p0 + p1) + p2 somewhere.
    const parts = partsOf(11, 3, 3000);
    const leftToRight = Float32Array.from(parts[0]!, (x, i) => {
      const acc = new Float32Array(1);
      acc[0] = x + parts[1]![i]!;
      acc[0] = acc[0]! + parts[2]![i]!;
      return acc[0]!;
    });
    expect(bits(runRing(parts).ranks[0]!.result).equals(bits(leftToRight))).toBe(false);
    expect(bits(runRing(parts).ranks[0]!.result).equals(bits(ringSumReference(parts)))).toBe(true);
  });

  it('is deterministic for any values, and every link carries 2 (D - 1) / D of the vector', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 300 }), fc.integer(), (D, length, seed) => {
        const parts = partsOf(seed, D, length);
        const first = runRing(parts);
        const again = runRing(parts.map((p) => Float32Array.from(p)));
        for (let r = 0; r < D; r++) expect(bits(again.ranks[r]!.result).equals(bits(first.ranks[r]!.result))).toBe(true);
        const chunks = ringChunks(length, D).map((c) => c.to - c.from);
        const longest = Math.max(0, ...chunks);
        for (const s of first.sent) {
          expect(s).toBeLessThanOrEqual(ringSteps(D) * longest);
          expect(s).toBeGreaterThanOrEqual(ringSteps(D) * Math.min(...chunks));
        }
      }),
      { numRuns: 200 },
    );
  });

  it('cuts a gradient into buckets of whole variables from the back, each of at least the minimum but the front one', () => {
    expect(reduceBuckets([3, 5, 2, 4], 6)).toEqual([
      { from: 8, to: 14 },
      { from: 0, to: 8 },
    ]);
    expect(reduceBuckets([3, 5, 2, 4], 100)).toEqual([{ from: 0, to: 14 }]);
    expect(reduceBuckets([3, 5, 2, 4], 1)).toEqual([
      { from: 10, to: 14 },
      { from: 8, to: 10 },
      { from: 3, to: 8 },
      { from: 0, to: 3 },
    ]);
    expect(reduceBuckets([], 4)).toEqual([{ from: 0, to: 0 }]);
  });

  it('summed bucket by bucket, gives the bits of one all-reduce of the whole vector, for any buckets and interleaving', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 1, maxLength: 8 }), fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 9 }), fc.integer(), (D, sizes, minValues, pieceValues, seed) => {
        const length = sizes.reduce((n, x) => n + x, 0);
        const parts = partsOf(seed, D, length);
        const into = parts.map(() => new Float32Array(length).fill(Number.NaN));
        const rng = new Prng(seed ^ 0x1234567);
        for (const range of reduceBuckets(sizes, minValues)) runRing(parts, pieceValues, (n) => Math.floor(rng.next() * n), { range, into });
        const want = bits(ringSumReference(parts));
        for (const r of into) expect(bits(r).equals(want)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a bucket writes only its range of the result', () => {
    const parts = partsOf(5, 3, 20);
    const into = parts.map(() => new Float32Array(20).fill(7));
    runRing(parts, 3, () => 0, { range: { from: 5, to: 12 }, into });
    const want = ringSumReference(parts);
    for (const r of into) {
      expect(Array.from(r.subarray(0, 5))).toEqual([7, 7, 7, 7, 7]);
      expect(Array.from(r.subarray(12))).toEqual(new Array(8).fill(7));
      expect(bits(r.subarray(5, 12)).equals(bits(want.subarray(5, 12)))).toBe(true);
    }
    expect(() => new RingAllReduce(0, 2, parts[0]!, 4, { range: { from: 5, to: 21 }, into: into[0]! })).toThrow(RangeError);
    expect(() => new RingAllReduce(0, 2, parts[0]!, 4, { range: { from: 0, to: 5 }, into: new Float32Array(3) })).toThrow(RangeError);
  });

  it('refuses a piece out of order, of the wrong chunk or size, or before it started, and changes nothing then', () => {
    const parts = partsOf(3, 3, 9);
    const r1 = new RingAllReduce(1, 3, parts[1]!);
    const piece = (over: Partial<RingPiece>): RingPiece => ({ step: 0, chunk: 0, index: 0, count: 1, values: new Float32Array(3), ...over });
    expect(() => r1.receive(piece({}))).toThrow(/before it started/);
    r1.start();
    expect(() => r1.receive(piece({ step: 1 }))).toThrow(RingOrderError);
    expect(() => r1.receive(piece({ chunk: 2 }))).toThrow(/expected chunk 0 of step 0 from rank 0, got chunk 2 of step 0/);
    expect(() => r1.receive(piece({ values: new Float32Array(2) }))).toThrow(/chunk 0 has 3 values, the message 2/);
    expect(() => r1.receive(piece({ index: 1, count: 2 }))).toThrow(/expected piece 0 of step 0, got piece 1 of 2/);
    expect(() => r1.receive(piece({ count: 2 }))).toThrow(/chunk 0 has 3 values, the message more than 3/);
    r1.receive(piece({ count: 2, values: new Float32Array(1) }));
    expect(() => r1.receive(piece({ index: 1, count: 3, values: new Float32Array(2) }))).toThrow(/expected piece 1 of 2 of step 0, got piece 1 of 3/);
    expect(() => r1.receive(piece({ index: 1, count: 2, values: new Float32Array(1) }))).toThrow(/chunk 0 has 3 values, the message 2/);
    expect(r1.ringStep).toBe(0);
    expect(r1.receive(piece({ index: 1, count: 2, values: new Float32Array(2) }))).toMatchObject({ step: 1, chunk: 0, index: 1, count: 2 });
    expect(r1.ringStep).toBe(1);
    expect(() => r1.start()).toThrow(/started twice/);
    expect(() => new RingAllReduce(3, 3, parts[0]!)).toThrow(RangeError);
  });
});
