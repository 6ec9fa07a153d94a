// Serving a whole snapshot to a copier (FetchSnapshot): a snapshot committed but not yet sealed
// (its writer is still adding the crc32, which takes a good part of a second at hundreds of
// megabytes) is served once sealed, not refused; one never committed, or never sealed in time, is
// NOT_FOUND, saying which. With wait_ms, a snapshot not held yet (a rebuild of it under way) is
// waited for that long.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { serveSnapshot, type SnapshotSink } from '../../snapshot-manager/snapshot-copy.ts';
import { SnapshotSlots, type SnapshotHeader } from '../../domain/snapshot-slots.ts';
import type { SnapshotChunk } from '../../proto/generated/ftrain/v1/SnapshotChunk.ts';

const header = (step: number): SnapshotHeader => ({ stage: 1, step, tensors: [{ name: 'w', shape: [4], offset: 0, length: 4 }], scalars: { adamT: step } });

/** A sink that keeps what it was given. */
function sink() {
  const written: SnapshotChunk[] = [];
  const errors: { code: number; details: string }[] = [];
  let ended = false;
  const s: SnapshotSink & { emit(event: 'error', err: unknown): unknown; end(): void } = {
    write: (c) => (written.push(c), true),
    destroyed: false,
    once: () => undefined,
    emit: (_e, err) => errors.push(err as { code: number; details: string }),
    end: () => void (ended = true),
  };
  return { s, written, errors, ended: () => ended };
}

describe('serveSnapshot', () => {
  const data = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);

  it('waits for the seal of a snapshot committed a moment ago, then serves it whole', async () => {
    const slots = new SnapshotSlots(mkdtempSync(join(tmpdir(), 'ftrain-serve-')), 2);
    const slot = slots.chooseSlot();
    const bytes = slots.writeData(slot, [data]);
    const record = slots.commit(slot, header(5), bytes);
    const out = sink();
    const served = serveSnapshot(out.s, slots, 1, 5);
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(out.written).toHaveLength(0); // not before the seal
    slots.seal(record, [data]);
    await served;
    expect(out.errors).toEqual([]);
    expect(out.ended()).toBe(true);
    const payload = Buffer.concat(out.written.filter((c) => c.data).map((c) => c.data as Buffer));
    expect([...payload]).toEqual([...data]);
  });

  it('is NOT_FOUND for a step not held, and for one not sealed in time, saying which', async () => {
    const slots = new SnapshotSlots(mkdtempSync(join(tmpdir(), 'ftrain-serve-')), 2);
    const slot = slots.chooseSlot();
    slots.commit(slot, header(5), slots.writeData(slot, [data]));
    const missing = sink();
    await serveSnapshot(missing.s, slots, 1, 6, 50);
    expect(missing.errors[0]).toMatchObject({ code: 5, details: 'no committed snapshot of stage 1 step 6 here' });
    const late = sink();
    await serveSnapshot(late.s, slots, 1, 5, 50);
    expect(late.errors[0]).toMatchObject({ code: 5, details: 'the snapshot of stage 1 step 5 here was not sealed within 50 ms' });
    expect(late.written).toHaveLength(0);
  });

  it('with wait_ms, serves a snapshot that appears and is sealed while it waits; NOT_FOUND after the wait when none does', async () => {
    const slots = new SnapshotSlots(mkdtempSync(join(tmpdir(), 'ftrain-serve-')), 2);
    const out = sink();
    const t0 = Date.now();
    const served = serveSnapshot(out.s, slots, 1, 5, 5_000, 5_000);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(out.written).toHaveLength(0);
    expect(out.errors).toEqual([]); // without wait_ms it would have been NOT_FOUND by now
    const slot = slots.chooseSlot();
    const record = slots.commit(slot, header(5), slots.writeData(slot, [data]));
    slots.seal(record, [data]);
    await served;
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(out.errors).toEqual([]);
    expect(out.ended()).toBe(true);
    expect([...Buffer.concat(out.written.filter((c) => c.data).map((c) => c.data as Buffer))]).toEqual([...data]);

    const never = sink();
    const t1 = Date.now();
    await serveSnapshot(never.s, slots, 1, 6, 50, 120);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(115);
    expect(never.errors[0]).toMatchObject({ code: 5, details: 'no committed snapshot of stage 1 step 6 here (waited 120 ms for it)' });
  });
});
