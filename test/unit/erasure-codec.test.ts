// Property tests of the erasure codec against the naive reference (the data itself), of both
// kernels against each other and of the parity bytes against the reed-solomon-erasure package's
// own encode, so that shards from either kernel are the crate's.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ERASURE_KERNEL_NAMES,
  ErasureCodecError,
  NotEnoughShardsError,
  encodeShards,
  oneStripeBytes,
  rebuildFromShards,
  type EncodedSnapshot,
  type Shard,
} from '../../snapshot-manager/erasure-codec.ts';
import { encodingMatrix, gfAt, gfInvert, gfMatrix, gfMul, gfMultiply, gfSelectRows } from '../../snapshot-manager/wasm/gf256.ts';

const STRIPE = 64; // small stripes so that short inputs span several

describe('erasure codec', () => {
  it.each(ERASURE_KERNEL_NAMES)('rebuilds the data from any k intact shards, for random data, codes and losses (%s kernel)', (kernel) => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 2000 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 3 }),
        fc.array(fc.nat(), { maxLength: 3 }),
        (data, k, m, lossSeeds) => {
          const encoded = encodeShards(data, { dataShards: k, parityShards: m }, STRIPE, { kernel });
          expect(encoded.shards).toHaveLength(k + m);
          const lost = new Set(lossSeeds.slice(0, m).map((x) => x % (k + m)));
          const shards = encoded.shards.map((s) => (lost.has(s.index) ? null : s));
          const rebuilt = rebuildFromShards(encoded.layout, shards, { kernel });
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

interface PackageCodec {
  encode(shards: Uint8Array, dataShards: number, parityShards: number): number;
}

/** The package's own wrapper and instance: independent of ftrain's kernels. */
function packageCodec(): PackageCodec {
  const require = createRequire(import.meta.url);
  const pkg = require('@subspace/reed-solomon-erasure.wasm') as { ReedSolomonErasure: { fromBytes(bytes: Uint8Array): PackageCodec } };
  return pkg.ReedSolomonErasure.fromBytes(readFileSync(require.resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm')));
}

function randomBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 255;
  }
  return out;
}

/** Shards with `lost` removed. */
function without(encoded: EncodedSnapshot, lost: readonly number[]): (Shard | null)[] {
  return encoded.shards.map((s) => (lost.includes(s.index) ? null : s));
}

// Codes and sizes that cross the kernels' chunks (64 KiB simd, up to 1 MiB reference) and their
// 32-byte column step, with stripes that are not multiples of either.
const CODES: readonly (readonly [number, number])[] = [
  [1, 1],
  [2, 1],
  [4, 2],
  [6, 3],
  [3, 5],
  [10, 4],
  [17, 3],
];
const SIZES: readonly { totalBytes: number; stripeBytes: number }[] = [
  { totalBytes: 0, stripeBytes: 64 },
  { totalBytes: 1, stripeBytes: 64 },
  { totalBytes: 999, stripeBytes: 100 },
  { totalBytes: 300_001, stripeBytes: 70_001 },
  { totalBytes: 1_500_000, stripeBytes: 1 << 20 },
];

describe('erasure kernels', () => {
  it('give parity byte-identical to the package encode of every stripe', () => {
    const pkg = packageCodec();
    for (const [k, m] of CODES) {
      for (const { totalBytes, stripeBytes } of SIZES) {
        const data = randomBytes(totalBytes, k * 1000 + m + totalBytes);
        for (const kernel of ERASURE_KERNEL_NAMES) {
          const { layout, shards } = encodeShards(data, { dataShards: k, parityShards: m }, stripeBytes, { kernel });
          const work = new Uint8Array((k + m) * stripeBytes);
          for (let s = 0; s < layout.stripes; s++) {
            work.fill(0);
            for (let i = 0; i < k; i++) {
              const at = (s * k + i) * stripeBytes;
              if (at < totalBytes) work.set(data.subarray(at, Math.min(at + stripeBytes, totalBytes)), i * stripeBytes);
            }
            expect(pkg.encode(work, k, m)).toBe(0);
            for (let i = 0; i < k + m; i++) {
              const mine = shards[i]!.bytes.subarray(s * stripeBytes, (s + 1) * stripeBytes);
              const theirs = work.subarray(i * stripeBytes, (i + 1) * stripeBytes);
              expect(Buffer.compare(mine, theirs), `${kernel} RS(${k},${m}) ${totalBytes} bytes, stripe ${s}, shard ${i}`).toBe(0);
            }
          }
        }
      }
    }
  });

  it('rebuild what the other kernel encoded, after losing m shards', () => {
    for (const [k, m] of CODES) {
      for (const { totalBytes, stripeBytes } of SIZES.slice(1)) {
        const data = randomBytes(totalBytes, 7 * k + m);
        const n = k + m;
        // Lose the first m data shards where there are that many, so decoding is real.
        const lost = Array.from({ length: m }, (_, j) => (j < k ? j : n - 1 - (j - k)));
        for (const [from, to] of [
          ['simd', 'reference'],
          ['reference', 'simd'],
        ] as const) {
          const encoded = encodeShards(data, { dataShards: k, parityShards: m }, stripeBytes, { kernel: from });
          const rebuilt = rebuildFromShards(encoded.layout, without(encoded, lost), { kernel: to });
          expect(Buffer.compare(rebuilt.data, data), `${from} -> ${to} RS(${k},${m}) ${totalBytes} bytes, lost ${lost.join(',')}`).toBe(0);
        }
      }
    }
  });

  it('reference: one instance stays correct over many encodes and reconstructs', () => {
    // The package's wrapper double-frees the flags of reconstruct; the kernel does not (see
    // erasure-kernel-reference.ts). Before, the second reconstruct on an instance already failed.
    const data = randomBytes(5000, 42);
    for (let round = 0; round < 300; round++) {
      const k = 1 + (round % 6);
      const m = 1 + (round % 3);
      const encoded = encodeShards(data, { dataShards: k, parityShards: m }, 128, { kernel: 'reference' });
      const lost = Array.from({ length: m }, (_, j) => (round + j * 5) % (k + m));
      const rebuilt = rebuildFromShards(encoded.layout, without(encoded, [...new Set(lost)]), { kernel: 'reference' });
      expect(Buffer.compare(rebuilt.data, data), `round ${round}: RS(${k},${m}) lost ${lost.join(',')}`).toBe(0);
    }
  });

  it.each(ERASURE_KERNEL_NAMES)("'view' data shards alias the data in one stripe, and are the bytes 'copy' gives (%s kernel)", (kernel) => {
    for (const totalBytes of [600_000, 600_001, 3]) {
      const data = randomBytes(totalBytes, totalBytes);
      const params = { dataShards: 4, parityShards: 2 };
      const stripe = oneStripeBytes(totalBytes, 4);
      const copied = encodeShards(data, params, stripe, { kernel });
      const viewed = encodeShards(data, params, stripe, { kernel, dataShards: 'view' });
      expect(viewed.layout).toEqual(copied.layout);
      expect(viewed.layout.stripes).toBe(1);
      for (const s of viewed.shards) {
        const c = copied.shards[s.index]!;
        expect(Buffer.compare(s.bytes, c.bytes), `shard ${s.index}`).toBe(0);
        expect(s.crc32).toBe(c.crc32);
        const inside = s.index < 4 && (s.index + 1) * stripe <= totalBytes;
        expect(s.bytes.buffer === data.buffer, `shard ${s.index} is a view: ${inside}`).toBe(inside);
      }
      expect(Buffer.compare(rebuildFromShards(viewed.layout, without(viewed, [0, 3]), { kernel }).data, data)).toBe(0);
    }
    // Several stripes: no data shard is contiguous in the data, so all are copies.
    const data = randomBytes(1000, 1);
    const striped = encodeShards(data, { dataShards: 2, parityShards: 1 }, 64, { kernel, dataShards: 'view' });
    expect(striped.shards.every((s) => s.bytes.buffer !== data.buffer)).toBe(true);
  });

  it('refuse an unknown kernel, naming the known ones', () => {
    expect(() => encodeShards(new Uint8Array(10), { dataShards: 2, parityShards: 1 }, 64, { kernel: 'gpu' as never })).toThrow(/unknown erasure kernel 'gpu': use one of simd, reference/);
  });
});

describe('GF(2^8) matrices', () => {
  it('encoding matrix: identity on top, as the crate builds it, any k rows invertible', () => {
    const e = encodingMatrix(4, 2);
    for (let r = 0; r < 4; r++) for (let c = 0; c < 4; c++) expect(gfAt(e, r, c)).toBe(r === c ? 1 : 0);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 1, max: 6 }), fc.nat(), (k, m, seed) => {
        const rows = Array.from({ length: k + m }, (_, i) => i)
          .sort((a, b) => ((a * 2654435761 + seed) >>> 0) % 97 - ((b * 2654435761 + seed) >>> 0) % 97)
          .slice(0, k);
        const sub = gfSelectRows(encodingMatrix(k, m), rows);
        const id = gfMultiply(sub, gfInvert(sub));
        expect(id).toEqual(gfMatrix(k, k, (r, c) => (r === c ? 1 : 0)));
      }),
      { numRuns: 100 },
    );
  });

  it('multiplication: commutative, distributive over XOR, every non-zero element invertible', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (a, b, c) => {
        expect(gfMul(a, b)).toBe(gfMul(b, a));
        expect(gfMul(a, b ^ c)).toBe(gfMul(a, b) ^ gfMul(a, c));
      }),
    );
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInvert(gfMatrix(1, 1, () => a)).data[0]!)).toBe(1);
  });
});
