// Property tests of the erasure codec against the naive reference: the data itself.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErasureCodecError, NotEnoughShardsError, encodeShards, rebuildFromShards, type Shard } from '../../snapshot-manager/erasure-codec.ts';

const STRIPE = 64; // small stripes so that short inputs span several

describe('erasure codec', () => {
  it('rebuilds the data from any k intact shards, for random data, codes and losses', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (data, k, m, lossSeeds) => {
          const encoded = encodeShards(data, { dataShards: k, parityShards: m }, STRIPE);
          expect(encoded.shards).toHaveLength(k + m);
          const lost = new Set(lossSeeds.slice(0, m).map((x) => x % (k + m)));
          const shards = encoded.shards.map((s) => (lost.has(s.index) ? null : s));
          const rebuilt = rebuildFromShards(encoded.layout, shards);
          expect(rebuilt.data).toEqual(data);
          expect(rebuilt.missing.sort()).toEqual([...lost].sort());
        },
      ),
      { numRuns: 200 },
    );
  });

  it('treats a corrupt shard as missing and still rebuilds', () => {
    const data = Uint8Array.from({ length: 1000 }, (_, i) => (i * 31) & 255);
    const { layout, shards } = encodeShards(data, { dataShards: 4, parityShards: 2 }, STRIPE);
    const flipped = new Uint8Array(shards[1]!.bytes);
    flipped[10]! ^= 0xff;
    const damaged: Shard[] = shards.map((s) => (s.index === 1 ? { ...s, bytes: flipped } : s));
    const rebuilt = rebuildFromShards(layout, [...damaged.slice(0, 5), null]);
    expect(rebuilt.corrupt).toEqual([1]);
    expect(rebuilt.missing).toEqual([5]);
    expect(rebuilt.data).toEqual(data);
  });

  it('refuses to rebuild from fewer than k intact shards, naming the corrupt ones', () => {
    const data = new Uint8Array(500).fill(7);
    const { layout, shards } = encodeShards(data, { dataShards: 4, parityShards: 2 }, STRIPE);
    const bad = { ...shards[0]!, crc32: shards[0]!.crc32 ^ 1 };
    let caught: unknown;
    try {
      rebuildFromShards(layout, [bad, shards[1]!, shards[2]!, null, null, shards[5]!]);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(NotEnoughShardsError);
    expect((caught as Error).message).toBe('only 3 intact shard(s) of the 4 needed (shard(s) 0 failed their checksum): the snapshot cannot be rebuilt');
  });

  it('refuses codes it cannot build', () => {
    expect(() => encodeShards(new Uint8Array(10), { dataShards: 0, parityShards: 2 })).toThrow(ErasureCodecError);
    expect(() => encodeShards(new Uint8Array(10), { dataShards: 2, parityShards: 0 })).toThrow(/m >= 1/);
    expect(() => encodeShards(new Uint8Array(10), { dataShards: 200, parityShards: 100 })).toThrow(/k \+ m <= 256/);
  });
});
