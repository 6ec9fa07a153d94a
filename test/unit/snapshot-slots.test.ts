import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { SnapshotManager } from '../../snapshot-manager/snapshot-manager.ts';
import { statSync } from 'node:fs';
import { CorruptSnapshotError, SnapshotSlots, VERIFY_CHUNK_BYTES, stepsToKeep, type SnapshotHeader } from '../../domain/snapshot-slots.ts';

const header = (step: number): SnapshotHeader => ({ stage: 2, step, tensors: [{ name: 'w', shape: [4], offset: 0, length: 4 }], scalars: { adamT: step } });
const bytes = (v: number) => new Uint8Array(new Float32Array([v, v + 1, v + 2, v + 3]).buffer);

describe('snapshot slots', () => {
  const fresh = () => new SnapshotSlots(mkdtempSync(join(tmpdir(), 'ftrain-slots-')), 3);

  it('commits, lists and reads back snapshots', () => {
    const slots = fresh();
    slots.write(slots.chooseSlot(), header(1), [bytes(1)]);
    slots.write(slots.chooseSlot(), header(2), [bytes(2)]);
    expect(slots.records().map((r) => r.step)).toEqual([1, 2]);
    expect(new Float32Array(new Uint8Array(slots.read(slots.find(2)!)).buffer)).toEqual(new Float32Array([2, 3, 4, 5]));
  });

  it('keeps every step from the protected commit step on and the newest; the newest two when none is protected', () => {
    expect([...stepsToKeep([4, 5, 6], 5)].sort()).toEqual([5, 6]);
    expect([...stepsToKeep([4, 5, 6], 6)]).toEqual([6]);
    expect([...stepsToKeep([4, 5], 9)]).toEqual([5]);
    expect([...stepsToKeep([6, 4, 5], -1)].sort()).toEqual([5, 6]);
    expect([...stepsToKeep([], 3)]).toEqual([]);
  });

  it('writes into memory already in place first, and empties slots beyond the ones kept in place', () => {
    const slots = fresh();
    const size = (slot: number) => statSync(join(slots.dir, `slot-${slot}.bin`), { throwIfNoEntry: false })?.size ?? 0;
    slots.prepare(16, 2);
    expect([0, 1, 2].map(size)).toEqual([16, 16, 0]);
    slots.write(slots.freeSlot(new Set(), 16)!, header(1), [bytes(1)]);
    slots.write(slots.freeSlot(stepsToKeep([1], -1), 16)!, header(2), [bytes(2)]);
    expect(slots.records().map((r) => r.slot)).toEqual([0, 1]);
    // Step 1 must stay (protected): the third slot, empty, takes step 3.
    expect(slots.freeSlot(stepsToKeep([1, 2], 1), 16)).toBe(2);
    slots.write(2, header(3), [bytes(3)]);
    // Once step 2 is protected, steps 1 is not needed: its slot is emptied, two stay in place.
    expect(slots.release(stepsToKeep([1, 2, 3], 2), 2)).toEqual([0]);
    expect(slots.records().map((r) => r.step)).toEqual([2, 3]);
    expect([0, 1, 2].map(size)).toEqual([0, 16, 16]);
    // Nothing more is released while only two slots hold memory.
    expect(slots.release(stepsToKeep([2, 3], 3), 2)).toEqual([]);
    // Step 2 is no longer needed: its slot, in place, comes before the empty one.
    expect(slots.freeSlot(stepsToKeep([2, 3], 3), 16)).toBe(1);
  });

  it('seals from the file: the checksum of the bytes written, checked on read', () => {
    const slots = fresh();
    const n = slots.writeData(0, [bytes(7), bytes(8)]);
    const record = slots.sealFromFile(slots.commit(0, header(7), n), 5);
    expect(record.crc32).not.toBeNull();
    expect(slots.records()[0]!.crc32).toBe(record.crc32);
    expect(slots.read(slots.records()[0]!).byteLength).toBe(32);
    writeFileSync(join(slots.dir, 'slot-0.bin'), new Uint8Array(32));
    expect(() => slots.read(slots.records()[0]!)).toThrow(CorruptSnapshotError);
  });

  it('reads a snapshot straight into the targets, checking size and checksum on the way', () => {
    const slots = fresh();
    const n = slots.writeData(1, [bytes(3), bytes(4)]);
    const record = slots.sealFromFile(slots.commit(1, header(3), n));
    const a = new Uint8Array(16);
    const b = new Uint8Array(16);
    slots.readInto(record, [a, b]);
    expect(new Float32Array(a.buffer)).toEqual(new Float32Array([3, 4, 5, 6]));
    expect(new Float32Array(b.buffer)).toEqual(new Float32Array([4, 5, 6, 7]));
    // Targets that do not cover the snapshot: refused before anything is read.
    expect(() => slots.readInto(record, [new Uint8Array(16)])).toThrow(/the state takes 16 bytes, the snapshot holds 32/);
    // A flipped byte: the checksum fails.
    const bad = new Uint8Array(32);
    bad.set(bytes(3));
    bad.set(bytes(4), 16);
    bad[20] = bad[20]! ^ 1;
    writeFileSync(join(slots.dir, 'slot-1.bin'), bad);
    expect(() => slots.readInto(record, [new Uint8Array(16), new Uint8Array(16)])).toThrow(CorruptSnapshotError);
    // A short file: its size fails.
    writeFileSync(join(slots.dir, 'slot-1.bin'), bad.subarray(0, 24));
    expect(() => slots.readInto(record, [new Uint8Array(16), new Uint8Array(16)])).toThrow(/24 bytes, record says 32/);
  });

  it('reads a snapshot on the thread pool, in pieces read side by side, into the same bytes and with the same checks', async () => {
    const slots = fresh();
    // 21 MiB + 12 bytes over three targets of uneven sizes: several pieces, one of them short.
    const data = new Uint8Array(21 * 2 ** 20 + 12);
    for (let i = 0; i < data.length; i++) data[i] = (i * 2654435761) >>> 24;
    const n = slots.writeData(1, [data]);
    const record = slots.sealFromFile(slots.commit(1, header(3), n));
    const cuts = [5 * 2 ** 20 + 4, 13 * 2 ** 20];
    const targets = () => [new Uint8Array(cuts[0]!), new Uint8Array(cuts[1]!), new Uint8Array(data.length - cuts[0]! - cuts[1]!)];
    const t = targets();
    await slots.readIntoAsync(record, t);
    expect(Buffer.concat(t).equals(Buffer.from(data))).toBe(true);
    await expect(slots.readIntoAsync(record, [new Uint8Array(16)])).rejects.toThrow(/the state takes 16 bytes, the snapshot holds/);
    // A flipped byte near the end, in the last piece: the checksum fails.
    const bad = Uint8Array.from(data);
    bad[data.length - 3] = bad[data.length - 3]! ^ 1;
    writeFileSync(join(slots.dir, 'slot-1.bin'), bad);
    await expect(slots.readIntoAsync(record, targets())).rejects.toThrow(CorruptSnapshotError);
    // A short file: its size fails.
    writeFileSync(join(slots.dir, 'slot-1.bin'), bad.subarray(0, 24));
    await expect(slots.readIntoAsync(record, targets())).rejects.toThrow(/24 bytes, record says/);
  });

  it('overwrites the oldest unprotected slot', () => {
    const slots = fresh();
    for (const step of [1, 2, 3]) slots.write(slots.chooseSlot(), header(step), [bytes(step)]);
    expect(slots.chooseSlot(new Set([2, 3]))).toBe(slots.find(1)!.slot);
    expect(slots.chooseSlot(new Set([1, 3]))).toBe(slots.find(2)!.slot);
    expect(() => slots.chooseSlot(new Set([1, 2, 3]))).toThrow(/protected/);
  });

  it('leaves no restorable snapshot when the writer dies before the commit record', () => {
    const slots = fresh();
    slots.write(0, header(1), [bytes(1)]);
    slots.write(1, header(2), [bytes(2)]);
    // Overwrite slot 0 (step 1) with step 3 and die before committing.
    expect(() =>
      slots.write(0, header(3), [bytes(3)], () => {
        throw new Error('killed');
      }),
    ).toThrow('killed');
    expect(slots.records().map((r) => r.step)).toEqual([2]);
    expect(slots.find(1)).toBeNull();
    expect(slots.find(3)).toBeNull();
  });

  it('commits first and seals the checksum in after', () => {
    const slots = fresh();
    const committed = slots.write(0, header(1), [bytes(1)]);
    expect(committed.crc32).toBeNull();
    expect(slots.find(1)!.crc32).toBeNull();
    const sealed = slots.seal(committed, [bytes(1)]);
    expect(sealed.crc32).toEqual(expect.any(Number));
    expect(slots.find(1)!.crc32).toBe(sealed.crc32);
    // A seal that comes after the slot moved on does not bring the old record back.
    const next = slots.write(0, header(4), [bytes(4)]);
    slots.seal(committed, [bytes(1)]);
    expect(slots.records().map((r) => r.step)).toEqual([4]);
    expect(slots.find(4)!.crc32).toBeNull();
    expect(slots.seal(next, [bytes(4)]).crc32).not.toBe(sealed.crc32);
  });

  it('overwrites a larger earlier snapshot in place and drops its tail', () => {
    const slots = fresh();
    slots.write(0, header(1), [bytes(1), bytes(2)]);
    const small = slots.seal(slots.write(0, header(2), [bytes(3)]), [bytes(3)]);
    expect(slots.read(small).length).toBe(16);
  });

  it('detects corrupt and truncated data by checksum and size', () => {
    const slots = fresh();
    const record = slots.seal(slots.write(0, header(1), [bytes(1)]), [bytes(1)]);
    writeFileSync(join(slots.dir, 'slot-0.bin'), bytes(9));
    expect(() => slots.read(record)).toThrow(CorruptSnapshotError);
    expect(() => slots.read(record)).toThrow(/crc32/);
    writeFileSync(join(slots.dir, 'slot-0.bin'), new Uint8Array(3));
    expect(() => slots.read(record)).toThrow(/3 bytes, record says 16/);
  });

  it('verifies a sealed snapshot in chunks, with the messages of read', () => {
    const slots = fresh();
    // Larger than one verify chunk and not a multiple of it, so the checksum runs across reads.
    const big = new Uint8Array(VERIFY_CHUNK_BYTES + 4099);
    for (let i = 0; i < big.length; i++) big[i] = (i * 7 + (i >>> 9)) & 255;
    const record = slots.seal(slots.write(0, header(1), [big]), [big]);
    expect(() => slots.verify(record)).not.toThrow();
    const path = join(slots.dir, 'slot-0.bin');
    for (const at of [0, VERIFY_CHUNK_BYTES - 1, VERIFY_CHUNK_BYTES, big.length - 1]) {
      const flipped = big.slice();
      flipped[at] = flipped[at]! ^ 0x10;
      writeFileSync(path, flipped);
      expect(() => slots.verify(record), `byte ${at} flipped`).toThrow(CorruptSnapshotError);
      expect(() => slots.verify(record)).toThrow(/crc32 [0-9a-f]+, record says [0-9a-f]+/);
    }
    writeFileSync(path, big.subarray(0, big.length - 1));
    expect(() => slots.verify(record)).toThrow(`${big.length - 1} bytes, record says ${big.length}`);
    writeFileSync(path, Buffer.concat([big, new Uint8Array(1)]));
    expect(() => slots.verify(record)).toThrow(`${big.length + 1} bytes, record says ${big.length}`);
    rmSync(path);
    expect(() => slots.verify(record)).toThrow(/data file unreadable/);
  });

  it('verifies only the size of an unsealed snapshot', () => {
    const slots = fresh();
    const committed = slots.write(0, header(1), [bytes(1)]);
    writeFileSync(join(slots.dir, 'slot-0.bin'), bytes(9));
    expect(() => slots.verify(committed)).not.toThrow();
    writeFileSync(join(slots.dir, 'slot-0.bin'), new Uint8Array(3));
    expect(() => slots.verify(committed)).toThrow(/3 bytes, record says 16/);
  });

  it('commits a staged file into a slot, sealed, keeping the old snapshot until then', () => {
    const slots = fresh();
    const old = slots.seal(slots.write(0, header(1), [bytes(1)]), [bytes(1)]);
    const staged = slots.stagingFile(0);
    writeFileSync(staged, bytes(5));
    expect(slots.records()).toEqual([old]);
    const record = slots.commitFile(0, header(5), staged, 16, crc32(bytes(5)));
    expect(slots.records()).toEqual([record]);
    expect(record).toMatchObject({ slot: 0, step: 5, bytes: 16, crc32: crc32(bytes(5)) });
    expect(existsSync(staged)).toBe(false);
    expect(Buffer.compare(slots.read(record), bytes(5))).toBe(0);
    writeFileSync(slots.stagingFile(1), bytes(6));
    slots.destroy();
    expect(readdirSync(slots.dir)).toEqual([]);
  });

  it('drops snapshots of an abandoned timeline', () => {
    const slots = fresh();
    for (const step of [4, 5, 6]) slots.write(slots.chooseSlot(), header(step), [bytes(step)]);
    slots.dropAfter(4);
    expect(slots.records().map((r) => r.step)).toEqual([4]);
  });

  it('has its snapshot manager withdraw a corrupt snapshot', () => {
    const slots = fresh();
    slots.seal(slots.write(0, header(1), [bytes(1)]), [bytes(1)]);
    slots.seal(slots.write(1, header(2), [bytes(2)]), [bytes(2)]);
    writeFileSync(join(slots.dir, 'slot-1.bin'), bytes(7));
    const smp = new SnapshotManager(slots.dir, 3, 'node-0', pino({ level: 'silent' }));
    smp.scan();
    expect(smp.verified).toBe(1);
    expect(smp.corrupt).toBe(1);
    expect(slots.records().map((r) => r.step)).toEqual([1]);
    smp.close(true);
  });
});
