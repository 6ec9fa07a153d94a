// The staging buffers a snapshot's state is copied into: made and touched once, used in turn,
// reused only once the writer has sealed the snapshot that holds one.

import { describe, expect, it } from 'vitest';
import { StagingBuffers } from '../../worker/stage-snapshots.ts';

describe('staging buffers', () => {
  it('hands out the two prepared buffers in turn, each again only after it is given back', () => {
    const s = new StagingBuffers();
    s.prepare(1024);
    const a = s.take(1024);
    const b = s.take(1024);
    expect(a).toBeInstanceOf(SharedArrayBuffer);
    expect(b).toBeInstanceOf(SharedArrayBuffer);
    expect(b).not.toBe(a);
    // Both still being written: a fresh buffer serves, and is not kept.
    const c = s.take(1024);
    expect(c).toBeInstanceOf(ArrayBuffer);
    s.give(c);
    s.give(a);
    expect(s.take(1024)).toBe(a);
    expect(s.take(1024)).toBeInstanceOf(ArrayBuffer);
  });

  it('serves another size with a fresh buffer, and prepares again when the state size changes', () => {
    const s = new StagingBuffers();
    s.prepare(64);
    expect(s.take(128)).toBeInstanceOf(ArrayBuffer);
    const old = s.take(64);
    s.prepare(128);
    s.give(old); // of the old size: dropped
    const x = s.take(128);
    const y = s.take(128);
    expect([x.byteLength, y.byteLength]).toEqual([128, 128]);
    expect(x).toBeInstanceOf(SharedArrayBuffer);
    expect(y).toBeInstanceOf(SharedArrayBuffer);
    expect(s.take(128)).toBeInstanceOf(ArrayBuffer);
  });
});
