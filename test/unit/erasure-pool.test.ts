// The erasure pool: the same bytes as the codec called directly, buffers handed off without copies
// where it can, a responsive event loop meanwhile, and clear failures when a thread dies.

import { afterAll, describe, expect, it } from 'vitest';
import { NotEnoughShardsError, encodeShards, oneStripeBytes, rebuildFromShards, type Shard } from '../../snapshot-manager/erasure-codec.ts';
import { ErasurePool, ErasurePoolError } from '../../snapshot-manager/erasure-pool.ts';

function pattern(bytes: Uint8Array, seed: number): Uint8Array {
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + seed + (i >>> 11)) & 255;
  return bytes;
}

const pool = new ErasurePool({ threads: 2 });
afterAll(() => pool.close());

describe('erasure pool', () => {
  it('encodes and rebuilds the same bytes as the codec on the calling thread', async () => {
    const original = pattern(new Uint8Array(3_000_017), 5);
    const params = { dataShards: 4, parityShards: 2 };
    // Handed-off data is encoded in one stripe, its data shards views of the buffer it came in.
    const direct = encodeShards(original, params, oneStripeBytes(original.length, 4));
    for (const kernel of ['simd', 'reference'] as const) {
      const data = original.slice(); // transferred: the pool takes this copy
      const pooled = await pool.encode(data, params, { kernel });
      expect(data.byteLength, 'the transferred view is detached').toBe(0);
      expect(pooled.layout).toEqual(direct.layout);
      const dataBuffer = pooled.shards[0]!.bytes.buffer;
      expect(dataBuffer.byteLength).toBe(original.length);
      expect(pooled.shards.slice(1, 3).every((s) => s.bytes.buffer === dataBuffer)).toBe(true);
      expect(pooled.shards[3]!.bytes.buffer, 'the last data shard runs past the data: padded copy').not.toBe(dataBuffer);
      for (const s of pooled.shards) {
        expect(Buffer.compare(s.bytes, direct.shards[s.index]!.bytes), `${kernel} shard ${s.index}`).toBe(0);
        expect(s.crc32).toBe(direct.shards[s.index]!.crc32);
      }
      const lost = [1, 2];
      const rebuilt = await pool.rebuild(
        pooled.layout,
        pooled.shards.map((s) => (lost.includes(s.index) ? null : s)),
        { kernel },
      );
      expect(Buffer.compare(rebuilt.data, original)).toBe(0);
      expect(rebuilt.missing).toEqual(lost);
      const local = rebuildFromShards(direct.layout, direct.shards.map((s) => (lost.includes(s.index) ? null : s)), { kernel });
      expect(Buffer.compare(rebuilt.data, local.data)).toBe(0);
    }
  });

  it('shares a SharedArrayBuffer and copies a view of part of a buffer, leaving both with the caller', async () => {
    const shared = pattern(new Uint8Array(new SharedArrayBuffer(100_000)), 9);
    const params = { dataShards: 2, parityShards: 1 };
    const fromShared = await pool.encode(shared, params, { stripeBytes: oneStripeBytes(shared.length, 2), dataShards: 'view' });
    expect(shared.byteLength).toBe(100_000);
    // 'view' data shards of shared data are views of the very same memory.
    expect(fromShared.shards[0]!.bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
    shared[0] = shared[0]! ^ 0xff;
    expect(fromShared.shards[0]!.bytes[0]).toBe(shared[0]);

    const big = pattern(new Uint8Array(200_000), 3);
    const part = big.subarray(1000, 101_000);
    const fromPart = await pool.encode(part, params);
    expect(big.byteLength).toBe(200_000);
    const direct = encodeShards(part, params, oneStripeBytes(part.length, 2));
    for (const s of fromPart.shards) expect(Buffer.compare(s.bytes, direct.shards[s.index]!.bytes)).toBe(0);
  });

  it('keeps the event loop responsive while a thread encodes 64 MiB', async () => {
    const data = pattern(new Uint8Array(new SharedArrayBuffer(64 * 1024 * 1024)), 1);
    const ticks: number[] = [];
    const timer = setInterval(() => ticks.push(performance.now()), 2);
    const started = performance.now();
    const encoded = await pool.encode(data, { dataShards: 4, parityShards: 2 });
    const encodeMs = performance.now() - started;
    clearInterval(timer);
    const gaps = ticks.slice(1).map((t, i) => t - ticks[i]!);
    const worstGapMs = Math.max(0, ...gaps);
    expect(encoded.shards).toHaveLength(6);
    expect(ticks.length, `${ticks.length} ticks in ${encodeMs.toFixed(0)} ms`).toBeGreaterThanOrEqual(5);
    expect(worstGapMs, `worst gap ${worstGapMs.toFixed(1)} ms in an encode of ${encodeMs.toFixed(0)} ms`).toBeLessThan(Math.max(50, encodeMs / 2)); // blocked, it would be the whole encode
  });

  it('carries the codec errors over: NotEnoughShardsError with its fields', async () => {
    const { layout, shards } = encodeShards(pattern(new Uint8Array(5000), 2), { dataShards: 3, parityShards: 1 }, 256);
    const damaged: (Shard | null)[] = [shards[0]!, null, { ...shards[2]!, crc32: shards[2]!.crc32 ^ 1 }, shards[3]!];
    const err = await pool.rebuild(layout, damaged, { handOff: 'copy' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotEnoughShardsError);
    expect((err as NotEnoughShardsError).corrupt).toEqual([2]);
    expect((err as Error).message).toBe('only 2 intact shard(s) of the 3 needed (shard(s) 2 failed their checksum): the snapshot cannot be rebuilt');
    expect(shards[0]!.bytes.byteLength, "'copy' leaves the shards with the caller").toBe(layout.stripes * 256);
  });

  it('rejects the jobs of a thread that dies, with a clear error, and goes on with a new thread', async () => {
    const solo = new ErasurePool();
    try {
      const crash = solo.encode(new Uint8Array(1000), { dataShards: 2, parityShards: 1 }, { exitThread: true });
      const queued = solo.encode(new Uint8Array(1000), { dataShards: 2, parityShards: 1 });
      await expect(crash).rejects.toThrow(ErasurePoolError);
      await expect(crash).rejects.toThrow(/^erasure pool thread 0 exited with code 3 while encoding 1000 bytes as RS\(2,1\); the job did not complete, submit it again$/);
      await expect(queued).rejects.toThrow(/exited with code 3/);
      const again = await solo.encode(pattern(new Uint8Array(1000), 4), { dataShards: 2, parityShards: 1 });
      expect(again.shards).toHaveLength(3);
    } finally {
      await solo.close();
    }
  });

  it('rejects jobs in hand and new ones once closed', async () => {
    const closing = new ErasurePool();
    const pending = closing.encode(new Uint8Array(new SharedArrayBuffer(16 * 1024 * 1024)), { dataShards: 4, parityShards: 2 }).catch((e: unknown) => e);
    await closing.close();
    expect(await pending).toBeInstanceOf(ErasurePoolError);
    expect(((await pending) as Error).message).toMatch(/the erasure pool was closed before the job finished/);
    await expect(closing.encode(new Uint8Array(10), { dataShards: 2, parityShards: 1 })).rejects.toThrow(/the erasure pool is closed/);
  });
});
