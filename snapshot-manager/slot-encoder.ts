// Erasure coding of a snapshot file as a stream of column chunks, never the whole snapshot in
// memory. The shards are those of a one-stripe encode (oneStripeLayout), byte for byte; the
// coding itself (reading the file, the kernel, the crc32s) is a ColumnSource's, normally an
// ErasurePool thread's (codeFileColumns).
//
// A shard's header, sent before its bytes, carries its crc32, so protecting a snapshot takes two
// passes over the file, in the same column chunks: `checksums` codes it once and keeps only the
// crc32s (of every chunk of every shard, of every shard, and of the file's bytes as read, in file
// order: equal to the commit record's checksum, the bytes were the committed snapshot's);
// `stream` codes it again and hands each chunk on only once its crc32s are those of the first
// pass. So every byte handed on is a byte of the snapshot the first pass checked: a writer that
// reuses the slot meanwhile stops the stream (ColumnsChangedError) before a changed chunk leaves.
//
// Memory: `checksums` holds no pieces; `stream` holds at most `aheadChunks` + 1 chunks of
// (k + m) x `columnBytes` bytes (the one handed on and those requested ahead), plus what the
// caller keeps of them; the checksums are (k + m) numbers per chunk. Requests to the source are
// made in column order, at most `aheadChunks` at a time; chunks are handed on in column order.

import type { ShardLayout } from '../domain/erasure-protection.ts';
import type { SnapshotRecord } from '../domain/snapshot-slots.ts';
import type { CodedColumns } from './column-coder.ts';
import { crc32Combine } from './crc32-combine.ts';

/** Codes columns [from, from + bytes) of the shards (codeFileColumns, or a pool doing it). */
export type ColumnSource = (from: number, bytes: number, keepPieces: boolean) => Promise<CodedColumns>;

/** Columns per chunk, in both passes: one shard chunk on the wire (SHARD_CHUNK_BYTES). */
export const CHUNK_COLUMN_BYTES = 1024 * 1024;
/** Requests to the source outstanding at a time, so that coding and sending overlap. */
export const AHEAD_CHUNKS = 2;

/**
 * Thrown when the bytes of a snapshot's slot are no longer those its commit record names (the
 * worker reused the slot, or it is corrupt): the snapshot is not protected.
 */
export class SnapshotOverwrittenError extends Error {
  override readonly name = 'SnapshotOverwrittenError';
  readonly slot: number;
  readonly step: number;
  constructor(record: SnapshotRecord, when: string, options?: { cause?: unknown }) {
    super(`snapshot of step ${record.step} in slot ${record.slot}: overwritten since its commit (found ${when}); not protected`, options);
    this.slot = record.slot;
    this.step = record.step;
  }
}

/** Thrown by `stream` when a chunk's bytes differ from the first pass's: the file changed between them. */
export class ColumnsChangedError extends Error {
  override readonly name = 'ColumnsChangedError';
  constructor(
    readonly from: number,
    readonly bytes: number,
    readonly shards: readonly number[],
  ) {
    super(`columns [${from}, ${from + bytes}) of shard(s) ${shards.join(', ')} changed since the first pass`);
  }
}

/** The checksums of one pass. */
export interface ShardSums {
  /** crc32 of each whole shard, by shard index: what its header says. */
  readonly shardCrcs: readonly number[];
  /** crc32 of the file's bytes as read, in file order. */
  readonly fileCrc: number;
  /** crc32 of each chunk of each shard: chunkCrcs[c][i] is chunk c of shard i. */
  readonly chunkCrcs: readonly (readonly number[])[];
}

export function sameSums(a: ShardSums, b: ShardSums): boolean {
  const same = (x: readonly number[], y: readonly number[] | undefined) => y !== undefined && x.length === y.length && x.every((c, i) => c === y[i]);
  return a.fileCrc === b.fileCrc && same(a.shardCrcs, b.shardCrcs) && a.chunkCrcs.length === b.chunkCrcs.length && a.chunkCrcs.every((c, i) => same(c, b.chunkCrcs[i]));
}

/** Chains the crc32s of chunks, taken in column order, into the shards' and the file's. */
class SumsBuilder {
  private readonly shard: number[];
  private readonly file: number[];
  private readonly fileLength: number[];
  private readonly chunks: number[][] = [];

  constructor(layout: ShardLayout) {
    this.shard = new Array<number>(layout.dataShards + layout.parityShards).fill(0);
    this.file = new Array<number>(layout.dataShards).fill(0);
    this.fileLength = new Array<number>(layout.dataShards).fill(0);
  }

  add(coded: CodedColumns): void {
    this.chunks.push([...coded.crcs]);
    for (let i = 0; i < this.shard.length; i++) this.shard[i] = crc32Combine(this.shard[i]!, coded.crcs[i]!, coded.bytes);
    for (let i = 0; i < this.file.length; i++) {
      this.file[i] = crc32Combine(this.file[i]!, coded.fileCrcs[i]!, coded.fileBytes[i]!);
      this.fileLength[i]! += coded.fileBytes[i]!;
    }
  }

  result(): ShardSums {
    let fileCrc = 0;
    for (let i = 0; i < this.file.length; i++) fileCrc = crc32Combine(fileCrc, this.file[i]!, this.fileLength[i]!);
    return { shardCrcs: [...this.shard], fileCrc, chunkCrcs: this.chunks };
  }
}

export interface SlotEncoderOptions {
  /** CHUNK_COLUMN_BYTES unless given. */
  readonly columnBytes?: number;
  /** AHEAD_CHUNKS unless given. */
  readonly aheadChunks?: number;
}

export class SlotEncoder {
  private readonly columnBytes: number;
  private readonly aheadChunks: number;

  constructor(
    private readonly source: ColumnSource,
    readonly layout: ShardLayout,
    options: SlotEncoderOptions = {},
  ) {
    this.columnBytes = options.columnBytes ?? CHUNK_COLUMN_BYTES;
    this.aheadChunks = options.aheadChunks ?? AHEAD_CHUNKS;
    for (const [name, v] of Object.entries({ columnBytes: this.columnBytes, aheadChunks: this.aheadChunks })) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`SlotEncoder ${name} must be a positive integer, not ${v}`);
    }
  }

  /** The first pass: every checksum, no bytes kept. */
  checksums(): Promise<ShardSums> {
    return this.pass(false, async () => {});
  }

  /**
   * The second pass: every chunk, in column order, to `emit` (whose promise is awaited before the
   * next chunk is handed on: its back-pressure), each only once its crc32s are `first`'s for that
   * chunk (else ColumnsChangedError, and no later chunk is handed on). The pieces are emit's.
   */
  stream(first: ShardSums, emit: (coded: CodedColumns & { readonly pieces: Uint8Array }) => Promise<void>): Promise<ShardSums> {
    let chunk = 0;
    return this.pass(true, (coded) => {
      const want = first.chunkCrcs[chunk++];
      const changed = coded.crcs.flatMap((crc, i) => (want?.[i] === crc ? [] : [i]));
      if (changed.length > 0) throw new ColumnsChangedError(coded.from, coded.bytes, changed);
      if (!coded.pieces) throw new Error(`the column source sent no pieces for columns [${coded.from}, ${coded.from + coded.bytes})`);
      return emit({ ...coded, pieces: coded.pieces });
    });
  }

  private async pass(keepPieces: boolean, onChunk: (coded: CodedColumns) => Promise<void>): Promise<ShardSums> {
    const total = this.layout.stripeBytes;
    const sums = new SumsBuilder(this.layout);
    const pending: Promise<CodedColumns>[] = [];
    let next = 0;
    const request = () => {
      const bytes = Math.min(this.columnBytes, total - next);
      const p = this.source(next, bytes, keepPieces);
      p.catch(() => {}); // observed when its turn comes; a failure before that must not go unhandled
      pending.push(p);
      next += bytes;
    };
    while (next < total && pending.length < this.aheadChunks) request();
    while (pending.length > 0) {
      const coded = await pending.shift()!;
      if (next < total) request();
      sums.add(coded);
      await onChunk(coded);
    }
    return sums.result();
  }
}
