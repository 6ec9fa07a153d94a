// Shares of a stage's state (`--replicas`, sharded snapshots): contiguous ranges on float32
// boundaries that cover the whole state exactly once, of sizes a value apart at most; and the
// byte range of a state held as several tensor views, cut across the views without a copy.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SHARE_ALIGN_BYTES, shareOf, shareRange, sliceChunks } from '../../domain/share-layout.ts';

describe('shareRange', () => {
  it('covers [0, whole) exactly once, in index order, on 4-byte boundaries, sizes at most 4 bytes apart', () => {
    const wholes = [0, 4, 8, 12, 28, 1020, 4096, 40_004, ...Array.from({ length: 64 }, (_, i) => 4 * (i * 37 + 1))];
    for (const whole of wholes) {
      for (let count = 1; count <= 8; count++) {
        const ranges = Array.from({ length: count }, (_, i) => shareRange(whole, i, count));
        let at = 0;
        for (const r of ranges) {
          expect(r.offset).toBe(at);
          expect(r.offset % SHARE_ALIGN_BYTES).toBe(0);
          expect(r.bytes % SHARE_ALIGN_BYTES).toBe(0);
          at += r.bytes;
        }
        expect(at).toBe(whole);
        const sizes = ranges.map((r) => r.bytes);
        expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(SHARE_ALIGN_BYTES);
      }
    }
  });

  it('gives a state whose length is not a multiple of 4 its tail in the last share', () => {
    const ranges = [0, 1, 2].map((i) => shareRange(14, i, 3));
    expect(ranges).toEqual([
      { offset: 0, bytes: 4 },
      { offset: 4, bytes: 4 },
      { offset: 8, bytes: 6 },
    ]);
  });

  it('is the whole state for a count of 0 or 1, and refuses a share that does not exist', () => {
    expect(shareRange(400, 0, 0)).toEqual({ offset: 0, bytes: 400 });
    expect(shareRange(400, 0, 1)).toEqual({ offset: 0, bytes: 400 });
    expect(() => shareRange(400, 2, 2)).toThrow(/share 2 of 2 does not exist/);
    expect(() => shareRange(400, -1, 3)).toThrow(/share -1 of 3 does not exist/);
    expect(() => shareRange(400, 1, 1)).toThrow(RangeError);
    expect(shareOf(400, 1, 3)).toEqual({ index: 1, count: 3, offset: 136, wholeBytes: 400 });
  });
});

describe('sliceChunks', () => {
  it('gives the bytes of the range of the concatenation, as views of the chunks', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { maxLength: 6 }), fc.nat(), fc.nat(), (chunks, a, b) => {
        const whole = Buffer.concat(chunks);
        const offset = whole.length === 0 ? 0 : a % (whole.length + 1);
        const bytes = (whole.length - offset) === 0 ? 0 : b % (whole.length - offset + 1);
        const views = sliceChunks(chunks, offset, bytes);
        expect(Buffer.concat(views).equals(whole.subarray(offset, offset + bytes))).toBe(true);
        // Views, not copies: each shares a chunk's buffer.
        for (const v of views) expect(chunks.some((c) => c.buffer === v.buffer)).toBe(true);
        expect(views.every((v) => v.byteLength > 0)).toBe(true);
      }),
    );
  });

  it('refuses a range past the end of the data', () => {
    expect(() => sliceChunks([new Uint8Array(4), new Uint8Array(4)], 6, 4)).toThrow(/bytes 6..10 asked of data 8 bytes long/);
  });
});
