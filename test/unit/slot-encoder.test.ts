// Streaming erasure coding of snapshot files against the in-memory codec: the shards a SlotEncoder
// streams from a file, a column chunk at a time, are byte for byte (and crc32 and layout) those
// of encodeShards with one stripe; the checksums chained from column chunks are the crc32s of the
// whole shards and of the file; a file changed between the two passes shows; a rebuild written
// straight into a file gives the data back. crc32Combine against node:zlib's crc32.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { codeFileColumns, rebuildIntoFile } from '../../snapshot-manager/column-coder.ts';
import { crc32Combine } from '../../snapshot-manager/crc32-combine.ts';
import { NotEnoughShardsError, encodeShards, oneStripeBytes, oneStripeLayout, type ErasureParams, type Shard } from '../../snapshot-manager/erasure-codec.ts';
import { ErasurePool } from '../../snapshot-manager/erasure-pool.ts';
import { ColumnsChangedError, SlotEncoder, sameSums, type ColumnSource, type ShardSums } from '../../snapshot-manager/slot-encoder.ts';
import { Prng } from '../../domain/prng.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-slot-encoder-'));
let files = 0;
const pool = new ErasurePool();
afterAll(() => pool.close());

function randomBytes(n: number, seed: number): Uint8Array {
  const rng = new Prng(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng.next() * 256);
  return out;
}

function fileOf(data: Uint8Array): string {
  const path = join(dir, `snapshot-${files++}.bin`);
  writeFileSync(path, data);
  return path;
}

/** Every shard as the encoder streams it, put back together, and the checksums of both passes. */
async function streamAll(encoder: SlotEncoder): Promise<{ shards: Uint8Array[]; first: ShardSums; second: ShardSums }> {
  const { dataShards: k, parityShards: m, stripeBytes } = encoder.layout;
  const shards = Array.from({ length: k + m }, () => new Uint8Array(stripeBytes));
  const first = await encoder.checksums();
  let expectFrom = 0;
  const second = await encoder.stream(first, async ({ from, bytes, pieces }) => {
    expect(from, 'chunks come in column order').toBe(expectFrom);
    expectFrom += bytes;
    for (let i = 0; i < k + m; i++) shards[i]!.set(pieces.subarray(i * bytes, (i + 1) * bytes), from);
  });
  expect(expectFrom).toBe(stripeBytes);
  return { shards, first, second };
}

function expectSameAsCodec(data: Uint8Array, params: ErasureParams, got: { shards: Uint8Array[]; first: ShardSums; second: ShardSums }, layout = oneStripeLayout(data.length, params)): void {
  const want = encodeShards(data, params, oneStripeBytes(data.length, params.dataShards), { dataShards: 'view' });
  expect(layout).toEqual(want.layout);
  expect(got.shards.length).toBe(want.shards.length);
  for (const s of want.shards) {
    expect(Buffer.compare(got.shards[s.index]!, s.bytes), `shard ${s.index} of ${data.length} bytes, RS(${params.dataShards},${params.parityShards})`).toBe(0);
    expect(got.first.shardCrcs[s.index]).toBe(s.crc32);
  }
  expect(got.first.fileCrc).toBe(crc32(data));
  expect(sameSums(got.first, got.second)).toBe(true);
}

describe('crc32Combine', () => {
  it('gives the crc32 of a concatenation from its parts', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 3000 }), (a, b) => {
        expect(crc32Combine(crc32(a), crc32(b), b.length)).toBe(crc32(Buffer.concat([a, b])));
      }),
    );
    const big = randomBytes(5_000_011, 1);
    expect(crc32Combine(crc32(big.subarray(0, 7)), crc32(big.subarray(7)), big.length - 7)).toBe(crc32(big));
  });
});

describe('streaming slot encoder', () => {
  const codes: ErasureParams[] = [
    { dataShards: 1, parityShards: 1 },
    { dataShards: 2, parityShards: 1 },
    { dataShards: 3, parityShards: 1 },
    { dataShards: 4, parityShards: 2 },
    { dataShards: 5, parityShards: 3 },
  ];

  it.each(codes)('streams exactly the one-stripe shards of encodeShards, RS($dataShards,$parityShards)', async (params) => {
    // Sizes not divisible by k, smaller than k, empty, and past the kernel's 256 KiB chunks.
    for (const [n, columns] of [
      [0, 7],
      [1, 7],
      [3, 2],
      [1001, 64],
      [65_537, 4096],
      [3_000_017, 1 << 20],
    ] as const) {
      const data = randomBytes(n, n + params.dataShards);
      const layout = oneStripeLayout(n, params);
      const path = fileOf(data);
      const source: ColumnSource = async (from, bytes, keep) => codeFileColumns(path, layout, from, bytes, keep);
      const encoder = new SlotEncoder(source, layout, { columnBytes: columns });
      expectSameAsCodec(data, params, await streamAll(encoder), layout);
    }
  });

  it('streams the same shards for random sizes and chunkings', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 5000 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 700 }),
        fc.integer({ min: 1, max: 4 }),
        async (n, k, m, columns, ahead) => {
          const params = { dataShards: k, parityShards: m };
          const data = randomBytes(n, n * 7 + k);
          const layout = oneStripeLayout(n, params);
          const path = fileOf(data);
          const source: ColumnSource = async (from, bytes, keep) => codeFileColumns(path, layout, from, bytes, keep);
          expectSameAsCodec(data, params, await streamAll(new SlotEncoder(source, layout, { columnBytes: columns, aheadChunks: ahead })));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('codes the same on the erasure pool\'s thread, which reads the file itself', async () => {
    const params = { dataShards: 3, parityShards: 2 };
    const data = randomBytes(2_500_001, 4);
    const layout = oneStripeLayout(data.length, params);
    const path = fileOf(data);
    for (const kernel of ['simd', 'reference'] as const) {
      const encoder = new SlotEncoder((from, bytes, keep) => pool.codeColumns(path, layout, from, bytes, keep, { kernel }), layout, { columnBytes: 300_000 });
      expectSameAsCodec(data, params, await streamAll(encoder), layout);
    }
  });

  it('asks the source for at most aheadChunks chunks at a time', async () => {
    const data = randomBytes(100_000, 5);
    const layout = oneStripeLayout(data.length, { dataShards: 2, parityShards: 1 });
    const path = fileOf(data);
    let outstanding = 0;
    let most = 0;
    const source: ColumnSource = async (from, bytes, keep) => {
      most = Math.max(most, ++outstanding);
      await new Promise((r) => setTimeout(r, 1));
      outstanding -= 1;
      return codeFileColumns(path, layout, from, bytes, keep);
    };
    const encoder = new SlotEncoder(source, layout, { columnBytes: 5000, aheadChunks: 3 });
    await encoder.stream(await encoder.checksums(), () => new Promise((r) => setTimeout(r, 2)));
    expect(most).toBe(3);
  });

  it('stops before handing on a chunk that changed since the first pass', async () => {
    const data = randomBytes(200_003, 6);
    const layout = oneStripeLayout(data.length, { dataShards: 2, parityShards: 1 });
    const path = fileOf(data);
    const encoder = new SlotEncoder(async (from, bytes, keep) => codeFileColumns(path, layout, from, bytes, keep), layout, { columnBytes: 10_000 });
    const first = await encoder.checksums();
    expect(first.fileCrc).toBe(crc32(data));
    expect(first.chunkCrcs.length).toBe(11); // 100_002 columns in chunks of 10_000
    // A byte of data shard 1 at column 55_000 (chunk 5) changes: chunks 0-4 go, then the stream stops.
    const changed = data.slice();
    changed[layout.stripeBytes + 55_000] = changed[layout.stripeBytes + 55_000]! ^ 1;
    writeFileSync(path, changed);
    const handedOn: number[] = [];
    const stream = encoder.stream(first, async ({ from }) => void handedOn.push(from));
    await expect(stream).rejects.toThrow(ColumnsChangedError);
    await expect(stream).rejects.toThrow('columns [50000, 60000) of shard(s) 1, 2 changed since the first pass');
    expect(handedOn).toEqual([0, 10_000, 20_000, 30_000, 40_000]);
    // The checksums of a pass over the changed file, or a shorter one, are not the committed ones.
    expect((await encoder.checksums()).fileCrc).not.toBe(crc32(data));
    expect(sameSums(await encoder.checksums(), first)).toBe(false);
    writeFileSync(path, data.subarray(0, 150_000));
    expect((await encoder.checksums()).fileCrc).not.toBe(crc32(data));
    writeFileSync(path, data);
    expect(sameSums(await encoder.checksums(), first)).toBe(true);
  });

  it('refuses columns outside the shards and layouts of more than one stripe', () => {
    const layout = oneStripeLayout(100, { dataShards: 2, parityShards: 1 });
    const path = fileOf(new Uint8Array(100));
    expect(() => codeFileColumns(path, layout, 40, 11, false)).toThrow(/not within the 50 columns/);
    expect(() => codeFileColumns(path, { ...layout, stripeBytes: 10, stripes: 5 }, 0, 10, false)).toThrow(/one-stripe layout/);
  });
});

describe('rebuild into a file', () => {
  it('writes the data back from any k intact shards, for one-stripe and striped layouts, with its crc32', async () => {
    const data = randomBytes(1_234_567, 7);
    const params = { dataShards: 4, parityShards: 2 };
    for (const stripeBytes of [oneStripeBytes(data.length, 4), 64 * 1024, 1000]) {
      const { layout, shards } = encodeShards(data, params, stripeBytes);
      for (const lost of [[], [0], [1, 3], [4, 5], [0, 5]]) {
        const given: (Shard | null)[] = shards.map((s) => (lost.includes(s.index) ? null : s));
        const path = join(dir, `rebuilt-${files++}.bin`);
        const r = rebuildIntoFile(layout, given, path);
        expect(r.missing).toEqual(lost);
        expect(r.corrupt).toEqual([]);
        expect(r.crc32).toBe(crc32(data));
        expect(Buffer.compare(readFileSync(path), data), `stripe ${stripeBytes}, lost [${lost}]`).toBe(0);
      }
    }
  });

  it('treats a corrupt shard as missing, and touches no file with fewer than k intact', async () => {
    const data = randomBytes(300_001, 8);
    const { layout, shards } = encodeShards(data, { dataShards: 2, parityShards: 1 }, oneStripeBytes(data.length, 2), { dataShards: 'view' });
    const bad = { ...shards[0]!, bytes: shards[0]!.bytes.slice() };
    bad.bytes[7] = bad.bytes[7]! ^ 1;
    const path = join(dir, `rebuilt-${files++}.bin`);
    const r = rebuildIntoFile(layout, [bad, shards[1]!, shards[2]!], path);
    expect(r.corrupt).toEqual([0]);
    expect(Buffer.compare(readFileSync(path), data)).toBe(0);
    const none = join(dir, `rebuilt-${files++}.bin`);
    expect(() => rebuildIntoFile(layout, [bad, null, shards[2]!], none)).toThrow(NotEnoughShardsError);
    expect(existsSync(none)).toBe(false);
  });

  it('rebuilds into a file on the erasure pool\'s thread', async () => {
    const data = randomBytes(700_001, 9);
    const params = { dataShards: 3, parityShards: 1 };
    const { layout, shards } = encodeShards(data, params, oneStripeBytes(data.length, 3));
    const path = join(dir, `rebuilt-${files++}.bin`);
    // Copied, not transferred: the shards are used again below.
    const r = await pool.rebuildInto(path, layout, [shards[0]!, null, shards[2]!, shards[3]!], { handOff: 'copy' });
    expect(r).toEqual({ crc32: crc32(data), corrupt: [], missing: [1] });
    expect(Buffer.compare(readFileSync(path), data)).toBe(0);
    expect(shards[0]!.bytes.byteLength).toBe(layout.stripeBytes);
    await expect(pool.rebuildInto(join(dir, 'never.bin'), layout, [shards[0]!, null, null, null])).rejects.toThrow(NotEnoughShardsError);
    expect(existsSync(join(dir, 'never.bin'))).toBe(false);
    expect(shards[0]!.bytes.byteLength, 'transferred to the thread').toBe(0);
  });
});
