// The ring all-reduce the replicas of a stage will average gradients with: every rank ends with
// the same bits, the sum of each chunk taken in the one order the ring fixes, whatever the values;
// each link carries 2 (D - 1) / D of the vector; a message out of order is refused.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Prng } from '../../domain/prng.ts';
import { RingAllReduce, RingOrderError, ringChunks, ringSteps, ringSumReference, type RingMessage } from '../../worker/ring-all-reduce.ts';

/** Runs D ranks to the end, delivering each message to the next rank; returns the ranks and what each sent. */
function runRing(parts: readonly Float32Array[]): { ranks: RingAllReduce[]; sent: number[] } {
  const D = parts.length;
  const ranks = parts.map((p, r) => new RingAllReduce(r, D, p));
  const sent = new Array<number>(D).fill(0);
  let outbox: (RingMessage | null)[] = ranks.map((r) => r.start());
  while (outbox.some((m) => m !== null)) {
    // Every rank sends at once; rank r's message goes to rank r + 1.
    const next: (RingMessage | null)[] = new Array(D).fill(null);
    outbox.forEach((m, r) => {
      if (!m) return;
      sent[r]! += m.values.length;
      next[(r + 1) % D] = ranks[(r + 1) % D]!.receive(m);
    });
    outbox = next;
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
        const parts = partsOf(D * 1000 + length, D, length);
        const { ranks } = runRing(parts);
        const want = bits(ringSumReference(parts));
        for (const r of ranks) {
          expect(r.done).toBe(true);
          expect(bits(r.result).equals(want)).toBe(true);
        }
      }
    }
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

  it('refuses a message out of order, of the wrong chunk or size, or before it started', () => {
    const parts = partsOf(3, 3, 9);
    const r1 = new RingAllReduce(1, 3, parts[1]!);
    expect(() => r1.receive({ step: 0, chunk: 0, values: new Float32Array(3) })).toThrow(/before it started/);
    r1.start();
    expect(() => r1.receive({ step: 1, chunk: 0, values: new Float32Array(3) })).toThrow(RingOrderError);
    expect(() => r1.receive({ step: 0, chunk: 2, values: new Float32Array(3) })).toThrow(/expected chunk 0 of step 0 from rank 0, got chunk 2 of step 0/);
    expect(() => r1.receive({ step: 0, chunk: 0, values: new Float32Array(2) })).toThrow(/chunk 0 has 3 values, the message 2/);
    expect(() => r1.start()).toThrow(/started twice/);
    expect(() => new RingAllReduce(3, 3, parts[0]!)).toThrow(RangeError);
  });
});
