// The parts an all-reduce overlapped with the backward pass reads: each variable copied in once
// final, a bucket ready only when every variable of it is final in every owner's part, and an
// abandoned step fails the buckets still waiting (and leaves the ready ones alone).

import { describe, expect, it } from 'vitest';
import { GradientFlats } from '../../worker/gradient-flats.ts';

const settled = async (p: Promise<void>) => {
  let state = 'pending';
  p.then(() => (state = 'ready'), () => (state = 'failed'));
  await new Promise((r) => setImmediate(r));
  return state;
};

describe('gradient flats', () => {
  it('says a bucket ready once each of its variables is final in every part, in the order the buckets are summed', async () => {
    // Variables of 3, 5, 2 and 4 values; buckets of at least 6 from the back: [8, 14) then [0, 8).
    const flats = new GradientFlats([3, 5, 2, 4], [new Float32Array(14), new Float32Array(14)], 6);
    expect(flats.plan.buckets).toEqual([
      { from: 8, to: 14 },
      { from: 0, to: 8 },
    ]);
    const ready = [flats.plan.ready(0), flats.plan.ready(1)];
    flats.finalize(0, 3, Float32Array.of(1, 2, 3, 4));
    flats.finalize(0, 2, Float32Array.of(5, 6));
    expect(await settled(ready[0]!)).toBe('pending'); // owner 1's part is not final yet
    flats.finalizeAll(1, (i) => new Float32Array([3, 5, 2, 4][i]!).fill(i + 10));
    expect(await settled(ready[0]!)).toBe('ready');
    expect(await settled(ready[1]!)).toBe('pending');
    expect(Array.from(flats.parts[0]!.subarray(8))).toEqual([5, 6, 1, 2, 3, 4]);
    expect(Array.from(flats.parts[1]!)).toEqual([10, 10, 10, 11, 11, 11, 11, 11, 12, 12, 13, 13, 13, 13]);
    // A variable final already is not copied again.
    flats.finalize(0, 3, Float32Array.of(9, 9, 9, 9));
    expect(Array.from(flats.parts[0]!.subarray(10))).toEqual([1, 2, 3, 4]);
    flats.finalizeAll(0, (i) => new Float32Array([3, 5, 2, 4][i]!));
    expect(await settled(ready[1]!)).toBe('ready');
  });

  it('fails the buckets still waiting when the step is abandoned', async () => {
    const flats = new GradientFlats([4, 4], [new Float32Array(8)], 4);
    flats.finalize(0, 1, new Float32Array(4));
    flats.abandon(new Error('halted'));
    expect(await settled(flats.plan.ready(0))).toBe('ready');
    await expect(flats.plan.ready(1)).rejects.toThrow('halted');
    await expect(flats.plan.ready(2)).rejects.toThrow(RangeError);
  });

  it('refuses values of the wrong length', () => {
    const flats = new GradientFlats([4], [new Float32Array(4)]);
    expect(() => flats.finalize(0, 0, new Float32Array(3))).toThrow(/4 values, not 3/);
  });
});
