// Double-buffered (by default triple-slotted) snapshots in a directory, normally on tmpfs
// (/dev/shm): each slot is a data file plus a commit record. A slot is restorable only after
// its commit record (step, size, layout) exists, and the record is removed before the slot is
// overwritten, so a writer killed mid-copy leaves the slot unrestorable, never torn.
//
// The checksum is sealed into the record right after the commit, by the same writer, from the
// bytes it wrote: crc32 runs at a fraction of memcpy speed, and keeping it out of the commit lets
// the next optimizer step go ahead sooner. Readers verify every sealed snapshot (`verify` reads it
// in pieces, never whole); an unsealed one (the writer died within the few milliseconds between
// commit and seal) is checked for size only.
//
// Ownership: one writer (the worker's snapshot thread) at a time; readers (the SMP, a restarted
// worker) only read committed slots.
//
// The directory's files, the whole format the worker and the snapshot manager share:
//   slot-N.bin          the state's bytes (tensors back to back, little-endian float32)
//   slot-N.commit.json  its commit record (SnapshotRecord): present = restorable
//   slot-N.staging.bin  a snapshot written by another thread (a rebuild), until commitFile moves it into slot N
//   smp.json            where the node's snapshot manager listens (SmpInfo), written by it on start

import {
  closeSync,
  constants,
  existsSync,
  fstatSync,
  fsyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  rmdirSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SnapshotShare } from './share-layout.ts';

/**
 * Slots per stage, at most: the protected commit step (held by every stage, locally and
 * erasure-coded), the newest snapshot when its shards are still under way, and one being
 * written. While erasure coding keeps up, the protected step is the newest and two slots hold
 * memory (IN_PLACE_SLOTS); the third is filled only while coding lags, and emptied after.
 */
export const DEFAULT_SLOT_COUNT = 3;

/**
 * readIntoAsync: the piece each pool thread reads at a time, and how many read at once: one per
 * core, up to libuv's 4 threads. More readers than cores read no faster (270 MiB into fresh
 * memory on 2 idle cores: 155 ms with one reader, 125 ms with two, 115 ms with four) and take the
 * cores from the rest of a recovery (the coordinator, the stages hearing the halt).
 */
const READ_PIECE_BYTES = 8 * 2 ** 20;
const READS_AT_ONCE = Math.max(1, Math.min(4, availableParallelism()));

/** Slots whose memory stays in place between snapshots. */
export const IN_PLACE_SLOTS = 2;

export interface TensorEntry {
  readonly name: string;
  readonly shape: readonly number[];
  /** Offset in bytes into the slot's data. */
  readonly offset: number;
  /** Elements (float32). */
  readonly length: number;
}

/** What a snapshot holds besides the tensor bytes. */
export interface SnapshotHeader {
  readonly stage: number;
  /** Steps completed by the state: a restored stage runs this step next. */
  readonly step: number;
  readonly tensors: readonly TensorEntry[];
  readonly scalars: Readonly<Record<string, number>>;
  /** The coordinator's epoch when it was taken: the same step of another epoch is another state. */
  readonly epoch?: number;
  /**
   * A sharded snapshot (`--replicas`): the slot's data is this share of the whole state's data
   * only, while `tensors` still describe the whole state's layout (offsets into the whole data).
   * Absent: the data is the whole state.
   */
  readonly share?: SnapshotShare;
}

export interface SnapshotRecord {
  readonly slot: number;
  readonly step: number;
  readonly bytes: number;
  /** crc32 of the data; null until sealed. */
  readonly crc32: number | null;
  readonly header: SnapshotHeader;
}

/** Thrown when a committed snapshot's bytes do not match its commit record. */
export class CorruptSnapshotError extends Error {
  override readonly name = 'CorruptSnapshotError';
  constructor(
    readonly slot: number,
    readonly step: number,
    detail: string,
  ) {
    super(`snapshot of step ${step} in slot ${slot} is corrupt: ${detail}`);
  }
}

function statOrNull(path: string): { size: number } | null {
  try {
    return statSync(path);
  } catch {
    return null;
  }
}

/**
 * The committed steps of a stage that recovery may still restore, given the protected commit
 * step the coordinator last told (every stage holds it locally and erasure-coded; -1: none
 * told). A recovery rolls back to the global commit step or to the protected one, and neither
 * is older than the last told protected step, so every held step from it on is kept, and the
 * newest always. With no protected step told, the newest two are kept: the global commit step
 * is one of them (stages are at most a step apart).
 */
export function stepsToKeep(held: readonly number[], protectedCommitStep: number): Set<number> {
  const sorted = [...held].sort((a, b) => a - b);
  if (protectedCommitStep < 0) return new Set(sorted.slice(-2));
  return new Set([...sorted.filter((s) => s >= protectedCommitStep), ...sorted.slice(-1)]);
}
/** Bytes read or written at a time when a slot file is checksummed, verified or prepared. */
export const VERIFY_CHUNK_BYTES = 8 * 1024 * 1024;

/** readInto's checks before a byte is read: the file is the record's size, and the targets cover it exactly. */
function checkFits(record: SnapshotRecord, fileBytes: number, targets: readonly Uint8Array[]): void {
  const wanted = targets.reduce((n, t) => n + t.byteLength, 0);
  if (fileBytes !== record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `${fileBytes} bytes, record says ${record.bytes}`);
  if (wanted !== record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `the state takes ${wanted} bytes, the snapshot holds ${record.bytes}`);
}

export class SnapshotSlots {
  /** verify's one read buffer, made on first use. */
  private verifyBuffer: Buffer | null = null;

  constructor(
    readonly dir: string,
    readonly slotCount = DEFAULT_SLOT_COUNT,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private dataPath(slot: number): string {
    return join(this.dir, `slot-${slot}.bin`);
  }

  /** The data file of `slot`, for readers that stream it (check its record before and after). */
  dataFile(slot: number): string {
    return this.dataPath(slot);
  }

  private commitPath(slot: number): string {
    return join(this.dir, `slot-${slot}.commit.json`);
  }

  /** Committed snapshots, oldest step first. Unreadable records count as absent. */
  records(): SnapshotRecord[] {
    const out: SnapshotRecord[] = [];
    for (let slot = 0; slot < this.slotCount; slot++) {
      const path = this.commitPath(slot);
      if (!existsSync(path)) continue;
      try {
        const r = JSON.parse(readFileSync(path, 'utf8')) as SnapshotRecord;
        if (r.slot === slot && Number.isInteger(r.step)) out.push(r);
      } catch {
        // a record is written by rename, so a partial one cannot exist; anything else is ignored
      }
    }
    return out.sort((a, b) => a.step - b.step);
  }

  latest(): SnapshotRecord | null {
    return this.records().at(-1) ?? null;
  }

  find(step: number): SnapshotRecord | null {
    return this.records().find((r) => r.step === step) ?? null;
  }

  /** The slot to write next: an empty one, else the oldest whose step is not protected. */
  chooseSlot(protectedSteps: ReadonlySet<number> = new Set()): number {
    const slot = this.freeSlot(protectedSteps);
    if (slot === null) throw new Error(`all ${this.slotCount} snapshot slots hold protected steps`);
    return slot;
  }

  /**
   * As chooseSlot, but null when every slot holds a protected step. With `bytes`, a slot whose
   * file already has that many bytes in place comes first (its pages need no allocation), then
   * the oldest unprotected snapshot's, then an empty one.
   */
  freeSlot(protectedSteps: ReadonlySet<number> = new Set(), bytes = 0): number | null {
    const records = this.records();
    const used = new Set(records.map((r) => r.slot));
    const empty = Array.from({ length: this.slotCount }, (_, slot) => slot).filter((slot) => !used.has(slot));
    const victims = records.filter((r) => !protectedSteps.has(r.step)).map((r) => r.slot);
    if (bytes === 0) return empty[0] ?? victims[0] ?? null;
    const inPlace = (slot: number) => (statOrNull(this.dataPath(slot))?.size ?? 0) >= bytes;
    return empty.find(inPlace) ?? victims.find(inPlace) ?? victims[0] ?? empty[0] ?? null;
  }

  /**
   * Frees the memory of slots beyond `keepSlots` that hold no step of `keep`: their commit
   * records go and their files are emptied. The slot count is then a ceiling reached only while
   * erasure coding lags, not the memory always held.
   */
  release(keep: ReadonlySet<number>, keepSlots: number): number[] {
    const withData = Array.from({ length: this.slotCount }, (_, slot) => slot).filter((slot) => (statOrNull(this.dataPath(slot))?.size ?? 0) > 0);
    const records = this.records();
    const stepOf = new Map(records.map((r) => [r.slot, r.step]));
    const released: number[] = [];
    for (const slot of withData) {
      if (withData.length - released.length <= keepSlots) break;
      const step = stepOf.get(slot);
      if (step !== undefined && keep.has(step)) continue;
      rmSync(this.commitPath(slot), { force: true });
      truncateSync(this.dataPath(slot), 0);
      released.push(slot);
    }
    return released;
  }

  /**
   * Writes a snapshot into `slot` and commits it, unsealed. `beforeCommit` runs after the data is
   * written and before the commit record exists (tests use it to die at the worst moment).
   */
  write(slot: number, header: SnapshotHeader, chunks: readonly Uint8Array[], beforeCommit?: () => void): SnapshotRecord {
    const bytes = this.writeData(slot, chunks);
    beforeCommit?.();
    return this.commit(slot, header, bytes);
  }

  /**
   * The first half of `write`: withdraws the slot's commit record, then writes `chunks` back to
   * back as its data. The slot is not restorable until `commit`.
   */
  writeData(slot: number, chunks: readonly Uint8Array[]): number {
    rmSync(this.commitPath(slot), { force: true });
    // Overwritten in place, not truncated first: on tmpfs a truncate frees every page and the
    // write must allocate and zero them again, which costs more than the copy itself.
    const fd = openSync(this.dataPath(slot), constants.O_WRONLY | constants.O_CREAT);
    let bytes = 0;
    try {
      for (const c of chunks) {
        let off = 0;
        while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off, bytes + off);
        bytes += c.byteLength;
      }
      ftruncateSync(fd, bytes); // drops the tail of a larger earlier snapshot
    } finally {
      closeSync(fd);
    }
    return bytes;
  }

  /** The second half of `write`: the slot's data (`bytes` long) is the snapshot `header` describes; unsealed. */
  commit(slot: number, header: SnapshotHeader, bytes: number): SnapshotRecord {
    const record: SnapshotRecord = { slot, step: header.step, bytes, crc32: null, header };
    this.putRecord(record);
    return record;
  }

  /**
   * Gives every slot that holds no committed snapshot a data file of `bytes` bytes whose pages
   * are written, so the first snapshots into them copy into memory already in place rather than
   * allocate it. Slots with a commit record are left alone.
   */
  prepare(bytes: number, slots = this.slotCount): void {
    const held = new Set(this.records().map((r) => r.slot));
    let prepared = held.size;
    const zeros = new Uint8Array(Math.min(bytes, VERIFY_CHUNK_BYTES));
    for (let slot = 0; slot < this.slotCount; slot++) {
      if (held.has(slot)) continue;
      if (prepared >= slots) break;
      prepared += 1;
      // A file this long already was written whole by an earlier snapshot: its pages are in place.
      if ((statOrNull(this.dataPath(slot))?.size ?? 0) >= bytes) continue;
      const fd = openSync(this.dataPath(slot), constants.O_WRONLY | constants.O_CREAT);
      try {
        for (let off = 0; off < bytes; off += zeros.byteLength) writeSync(fd, zeros, 0, Math.min(zeros.byteLength, bytes - off), off);
      } finally {
        closeSync(fd);
      }
    }
  }

  /**
   * Seals a committed record with the checksum of the slot's data as it is in the file, read in
   * chunks of `chunkBytes` into one buffer (unless the slot has moved on meanwhile).
   */
  sealFromFile(record: SnapshotRecord, chunkBytes = VERIFY_CHUNK_BYTES): SnapshotRecord {
    const fd = openSync(this.dataPath(record.slot), constants.O_RDONLY);
    let crc = 0;
    try {
      const read = this.crcOfFile(fd, record.bytes, chunkBytes);
      if (read.bytes < record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `data file ends at ${read.bytes} bytes, record says ${record.bytes}`);
      crc = read.crc;
    } finally {
      closeSync(fd);
    }
    const sealed: SnapshotRecord = { ...record, crc32: crc };
    const current = this.records().find((r) => r.slot === record.slot);
    if (current && current.step === record.step && current.crc32 === null) this.putRecord(sealed);
    return sealed;
  }

  /**
   * Adds the checksum of `chunks` (the bytes just written, still unchanged) to a committed
   * record, unless the slot has moved on meanwhile.
   */
  seal(record: SnapshotRecord, chunks: readonly Uint8Array[]): SnapshotRecord {
    let crc = 0;
    for (const c of chunks) crc = crc32(c, crc);
    const sealed: SnapshotRecord = { ...record, crc32: crc };
    const current = this.records().find((r) => r.slot === record.slot);
    if (current && current.step === record.step && current.crc32 === null) this.putRecord(sealed);
    return sealed;
  }

  /**
   * Where a writer other than `write` (a rebuild, decoding in another thread) puts the data of a
   * snapshot for `slot` before commitFile moves it in: beside the slot, not in it, so the slot's
   * snapshot stays restorable until then; `destroy` removes it with the slots.
   */
  stagingFile(slot: number): string {
    return join(this.dir, `slot-${slot}.staging.bin`);
  }

  /**
   * Moves a staged data file (stagingFile) of `bytes` bytes, whose crc32 its writer computed,
   * into `slot` and commits it, sealed: what `write` and `seal` do for bytes in memory.
   */
  commitFile(slot: number, header: SnapshotHeader, staged: string, bytes: number, crc32: number): SnapshotRecord {
    rmSync(this.commitPath(slot), { force: true });
    renameSync(staged, this.dataPath(slot));
    const record: SnapshotRecord = { slot, step: header.step, bytes, crc32, header };
    this.putRecord(record);
    return record;
  }

  /** Commit record first to a temporary name, then renamed into place: never half-written. */
  private putRecord(record: SnapshotRecord): void {
    const tmp = `${this.commitPath(record.slot)}.tmp`;
    writeFileSync(tmp, JSON.stringify(record));
    renameSync(tmp, this.commitPath(record.slot));
  }

  /** Reads a committed snapshot and checks its size and checksum. */
  read(record: SnapshotRecord): Buffer {
    let data: Buffer;
    try {
      data = readFileSync(this.dataPath(record.slot));
    } catch (err) {
      throw new CorruptSnapshotError(record.slot, record.step, `data file unreadable (${(err as Error).message})`);
    }
    if (data.length !== record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `${data.length} bytes, record says ${record.bytes}`);
    if (record.crc32 !== null) {
      const actual = crc32(data);
      if (actual !== record.crc32) throw new CorruptSnapshotError(record.slot, record.step, `crc32 ${actual.toString(16)}, record says ${record.crc32.toString(16)}`);
    }
    return data;
  }

  /**
   * Checks a committed snapshot's size and checksum as read does, without holding it: the file is
   * read in chunks of VERIFY_CHUNK_BYTES into one buffer this object keeps, and checksummed as it
   * goes. Throws CorruptSnapshotError with read's messages.
   */
  /**
   * The crc32 of a file's first `limit` bytes (or all of it), read from the start in chunks of
   * `chunkBytes` into one buffer: the one this object keeps, unless a smaller size is asked for.
   */
  private crcOfFile(fd: number, limit: number, chunkBytes = VERIFY_CHUNK_BYTES): { crc: number; bytes: number } {
    this.verifyBuffer ??= Buffer.allocUnsafeSlow(VERIFY_CHUNK_BYTES);
    const buffer = chunkBytes >= VERIFY_CHUNK_BYTES ? this.verifyBuffer : this.verifyBuffer.subarray(0, Math.max(1, chunkBytes));
    let bytes = 0;
    let crc = 0;
    // Bounded: every round reads at least one byte, or ends at the file's end or the limit.
    while (bytes < limit) {
      const n = readSync(fd, buffer, 0, Math.min(buffer.length, limit - bytes), bytes);
      if (n === 0) break;
      crc = crc32(buffer.subarray(0, n), crc);
      bytes += n;
    }
    return { crc, bytes };
  }

  verify(record: SnapshotRecord): void {
    let fd: number;
    try {
      fd = openSync(this.dataPath(record.slot), 'r');
    } catch (err) {
      throw new CorruptSnapshotError(record.slot, record.step, `data file unreadable (${(err as Error).message})`);
    }
    let bytes = 0;
    let crc = 0;
    try {
      const size = fstatSync(fd).size;
      if (size !== record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `${size} bytes, record says ${record.bytes}`);
      if (record.crc32 === null) return;
      ({ crc, bytes } = this.crcOfFile(fd, Infinity));
    } catch (err) {
      if (err instanceof CorruptSnapshotError) throw err;
      throw new CorruptSnapshotError(record.slot, record.step, `data file unreadable (${(err as Error).message})`);
    } finally {
      closeSync(fd);
    }
    // The file may have changed size while it was read: the bytes read are what count.
    if (bytes !== record.bytes) throw new CorruptSnapshotError(record.slot, record.step, `${bytes} bytes, record says ${record.bytes}`);
    if (crc !== record.crc32) throw new CorruptSnapshotError(record.slot, record.step, `crc32 ${crc.toString(16)}, record says ${record.crc32.toString(16)}`);
  }

  /**
   * Reads a committed snapshot's bytes straight into `targets` (views given in file order that
   * cover the data back to back from offset 0), checking the size and, as it goes, the checksum:
   * one copy, from the slot into where the state lives. On a mismatch the targets hold part of
   * the snapshot and a CorruptSnapshotError is thrown.
   */
  readInto(record: SnapshotRecord, targets: readonly Uint8Array[]): void {
    let fd: number;
    try {
      fd = openSync(this.dataPath(record.slot), constants.O_RDONLY);
    } catch (err) {
      throw new CorruptSnapshotError(record.slot, record.step, `data file unreadable (${(err as Error).message})`);
    }
    try {
      checkFits(record, fstatSync(fd).size, targets);
      let crc = 0;
      let at = 0;
      for (const t of targets) {
        for (let off = 0; off < t.byteLength; ) {
          const n = readSync(fd, t, off, t.byteLength - off, at + off);
          if (n === 0) throw new CorruptSnapshotError(record.slot, record.step, `data file ends at ${at + off} bytes, record says ${record.bytes}`);
          off += n;
        }
        if (record.crc32 !== null) crc = crc32(t, crc);
        at += t.byteLength;
      }
      if (record.crc32 !== null && crc !== record.crc32) {
        throw new CorruptSnapshotError(record.slot, record.step, `crc32 ${crc.toString(16)}, record says ${record.crc32.toString(16)}`);
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * readInto on the thread pool: the same checks and the one copy, in pieces of READ_PIECE_BYTES
   * read by up to READS_AT_ONCE pool threads at once, so the calling thread stays free (a
   * replacement worker answers the coordinator and its neighbours while its state loads) and the
   * copy runs on every core. The checksum follows the pieces in file order on the calling thread,
   * a piece at a time. Nothing may move or free the targets' memory until it settles.
   */
  async readIntoAsync(record: SnapshotRecord, targets: readonly Uint8Array[]): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(this.dataPath(record.slot), constants.O_RDONLY);
    } catch (err) {
      throw new CorruptSnapshotError(record.slot, record.step, `data file unreadable (${(err as Error).message})`);
    }
    let reads: Promise<void>[] = [];
    try {
      checkFits(record, (await handle.stat()).size, targets);
      const pieces: { view: Uint8Array; at: number }[] = [];
      let at = 0;
      for (const t of targets) {
        for (let off = 0; off < t.byteLength; off += READ_PIECE_BYTES) {
          pieces.push({ view: t.subarray(off, Math.min(t.byteLength, off + READ_PIECE_BYTES)), at: at + off });
        }
        at += t.byteLength;
      }
      const readPiece = async (p: { view: Uint8Array; at: number }): Promise<void> => {
        for (let off = 0; off < p.view.byteLength; ) {
          const { bytesRead } = await handle.read(p.view, off, p.view.byteLength - off, p.at + off);
          if (bytesRead === 0) throw new CorruptSnapshotError(record.slot, record.step, `data file ends at ${p.at + off} bytes, record says ${record.bytes}`);
          off += bytesRead;
        }
      };
      // At most READS_AT_ONCE reads under way, taken in file order.
      let active = 0;
      const waiting: (() => void)[] = [];
      const acquire = (): Promise<void> | void => {
        if (active < READS_AT_ONCE) {
          active += 1;
          return;
        }
        return new Promise<void>((resolve) => waiting.push(resolve));
      };
      const release = (): void => {
        const nextRead = waiting.shift();
        if (nextRead) nextRead();
        else active -= 1;
      };
      reads = pieces.map(async (p) => {
        await acquire();
        try {
          await readPiece(p);
        } finally {
          release();
        }
      });
      // Each failure is thrown below, in file order; none goes unhandled meanwhile.
      for (const r of reads) r.catch(() => undefined);
      let crc = 0;
      for (let i = 0; i < pieces.length; i++) {
        await reads[i];
        if (record.crc32 !== null) crc = crc32(pieces[i]!.view, crc);
      }
      if (record.crc32 !== null && crc !== record.crc32) {
        throw new CorruptSnapshotError(record.slot, record.step, `crc32 ${crc.toString(16)}, record says ${record.crc32.toString(16)}`);
      }
    } finally {
      // No read may still write into the targets, or use the file, once this settles.
      await Promise.allSettled(reads);
      await handle.close();
    }
  }

  /** Withdraws one commit record (its slot becomes free), if it is still the same snapshot. */
  dropOne(record: SnapshotRecord): void {
    const current = this.records().find((r) => r.slot === record.slot);
    if (current && current.step === record.step && current.crc32 === record.crc32) rmSync(this.commitPath(record.slot), { force: true });
  }

  /** Drops committed snapshots newer than `step` (after a rollback they are of another timeline). */
  dropAfter(step: number): void {
    for (const r of this.records()) if (r.step > step) rmSync(this.commitPath(r.slot), { force: true });
  }

  /**
   * Bytes the slot files (data, commit records, their temporary names) take in the directory,
   * committed or not: a slot whose record was withdrawn still holds its pages until overwritten.
   * Counted as allocated blocks (st_blocks x 512), not file lengths: on tmpfs that is the RAM (or
   * swap) the files hold, and a sparse file counts only the pages written. Where the file system
   * gives no block count, the length is taken instead.
   */
  residentBytes(): number {
    let bytes = 0;
    for (const name of existsSync(this.dir) ? readdirSync(this.dir) : []) {
      if (!name.startsWith('slot-')) continue;
      try {
        const st = statSync(join(this.dir, name));
        if (st.isFile()) bytes += Number.isFinite(st.blocks) ? st.blocks * 512 : st.size;
      } catch {
        // removed between the listing and the stat (a record being replaced)
      }
    }
    return bytes;
  }

  /** Removes every slot file; the directory (and anything else in it) stays. */
  destroy(): void {
    for (const name of existsSync(this.dir) ? readdirSync(this.dir) : []) {
      if (name.startsWith('slot-')) rmSync(join(this.dir, name), { force: true });
    }
  }

  /**
   * Removes everything in the directory, then the directory itself where it can: a mount point
   * (a Kubernetes in-memory emptyDir) stays, empty.
   */
  remove(): void {
    for (const name of existsSync(this.dir) ? readdirSync(this.dir) : []) rmSync(join(this.dir, name), { recursive: true, force: true });
    try {
      rmdirSync(this.dir);
    } catch {
      // busy (a mount point) or already gone
    }
  }
}

/** The file in the slot directory that tells the node's worker where its snapshot manager listens. */
export const SMP_INFO_FILE = 'smp.json';

/** What smp.json holds. */
export interface SmpInfo {
  /** host:port of the SnapshotManager service. */
  readonly address: string;
  readonly pid: number;
}

/** Publishes the manager's address in `dir` (atomically: a reader sees the whole file or none). */
export function writeSmpInfo(dir: string, info: SmpInfo): void {
  const path = join(dir, SMP_INFO_FILE);
  writeFileSync(`${path}.tmp`, JSON.stringify(info));
  renameSync(`${path}.tmp`, path);
}

/** The manager's address from `dir`, or null while there is none (not started yet, or not a valid file). */
export function readSmpInfo(dir: string): SmpInfo | null {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(join(dir, SMP_INFO_FILE), 'utf8'));
  } catch {
    return null;
  }
  const v = value as Partial<SmpInfo> | null;
  if (typeof v !== 'object' || v === null || typeof v.address !== 'string' || v.address === '' || !Number.isInteger(v.pid)) return null;
  return { address: v.address, pid: v.pid! };
}

/** Writes `chunks` to a regular file and fsyncs it: the disk-checkpoint baseline. */
export function writeFileDurably(path: string, chunks: readonly Uint8Array[]): number {
  const fd = openSync(path, 'w');
  let bytes = 0;
  try {
    for (const c of chunks) {
      let off = 0;
      while (off < c.byteLength) off += writeSync(fd, c, off, c.byteLength - off);
      bytes += c.byteLength;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return bytes;
}
