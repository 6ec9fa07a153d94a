// Reed-Solomon coding between shards and a snapshot file a range of columns at a time, without
// the whole snapshot in memory: encoding from the file (codeFileColumns), and rebuilding into a
// file (rebuildIntoFile).
//
// Encoding: With the one-stripe layout (oneStripeLayout: data shard i is bytes [i*L, (i+1)*L)
// of the file, zero-padded past its end), column c of every shard depends only on file bytes
// i*L + c: columns [from, from + bytes) are coded from k reads of `bytes` each, straight into the
// kernel's memory, a kernel chunk at a time. The shards so cut, end to end, are exactly those of
// encodeShards(data, params, oneStripeBytes(total, k)).
//
// Reports the crc32 of every shard's piece, and of the part of each data piece that lies in the
// file (padding left out), so that a caller can chain them (crc32-combine.ts) into each shard's
// crc32 and into the crc32 of the file's bytes, in file order, as read.
//
// Memory: the kernel's chunks ((k + m) x at most SIMD_CHUNK_BYTES), plus, only when the pieces
// are asked for, one buffer of (k + m) x `bytes`, which the caller owns.
//
// Rebuilding: the data shards' columns, intact or decoded a kernel chunk at a time, are written
// straight to their places in the file (any stripe layout), and the file's crc32 is chained from
// the pieces' as they go: no buffer of the snapshot's size besides the shards themselves.
//
// CPU-heavy: call it from a worker thread (erasure-pool.ts).

import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { ShardLayout } from '../domain/erasure-protection.ts';
import { crc32Combine } from './crc32-combine.ts';
import { ErasureCodecError, dataRuns, decodeDataShards, kernelFor, type CodecOptions, type Shard } from './erasure-codec.ts';

/** Columns [from, from + bytes) of every shard of a one-stripe encode of a file. */
export interface CodedColumns {
  readonly from: number;
  readonly bytes: number;
  /** crc32 of each shard's piece (all `bytes` columns, padding included), by shard index. */
  readonly crcs: readonly number[];
  /** crc32 of each data piece's bytes that lie in the file, by data shard index. */
  readonly fileCrcs: readonly number[];
  /** How many bytes of each data piece lie in the file, by data shard index. */
  readonly fileBytes: readonly number[];
  /**
   * The pieces when asked for: shard i's at [i * bytes, (i + 1) * bytes) of one buffer, or null.
   * Bytes past the file's end (a short read: the file shrank under the coder) read as zeros.
   */
  readonly pieces: Uint8Array | null;
}

/** The bytes of data piece i at columns [from, from + bytes) that lie in a file of `total` bytes. */
export function inFileBytes(layout: ShardLayout, i: number, from: number, bytes: number): number {
  return Math.max(0, Math.min(bytes, layout.totalBytes - (i * layout.stripeBytes + from)));
}

function checkRange(layout: ShardLayout, from: number, bytes: number): void {
  if (layout.stripes !== 1 || layout.stripeBytes * layout.dataShards < layout.totalBytes) {
    throw new ErasureCodecError(`column coding needs a one-stripe layout, not ${layout.stripes} stripe(s) of ${layout.stripeBytes} bytes for ${layout.totalBytes}`);
  }
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(bytes) || from < 0 || bytes < 1 || from + bytes > layout.stripeBytes) {
    throw new ErasureCodecError(`columns [${from}, ${from + bytes}) are not within the ${layout.stripeBytes} columns of the shards`);
  }
}

/** Reads `length` bytes at `position` into `into` (zeros past the file's end). */
function readFully(fd: number, into: Uint8Array, length: number, position: number): void {
  let got = 0;
  while (got < length) {
    const n = readSync(fd, into, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  if (got < length) into.fill(0, got, length);
}

/** Codes columns [from, from + bytes) of the shards of the file at `path`, laid out as `layout`. */
export function codeFileColumns(path: string, layout: ShardLayout, from: number, bytes: number, keepPieces: boolean, options: CodecOptions = {}): CodedColumns {
  checkRange(layout, from, bytes);
  const { dataShards: k, parityShards: m, stripeBytes: L } = layout;
  const crcs = new Array<number>(k + m).fill(0);
  const fileCrcs = new Array<number>(k).fill(0);
  const fileBytes = Array.from({ length: k }, (_, i) => inFileBytes(layout, i, from, bytes));
  const pieces = keepPieces ? new Uint8Array((k + m) * bytes) : null;
  const coder = kernelFor(options.kernel).encoder(k, m, L);
  const fd = openSync(path, 'r');
  try {
    for (let done = 0; done < bytes; done += coder.chunkBytes) {
      const n = Math.min(coder.chunkBytes, bytes - done);
      for (let i = 0; i < k; i++) {
        const input = coder.input(i);
        const inFile = inFileBytes(layout, i, from + done, n);
        readFully(fd, input, inFile, i * L + from + done);
        input.fill(0, inFile, n);
        if (inFile > 0) fileCrcs[i] = crc32(input.subarray(0, inFile), fileCrcs[i]);
        crcs[i] = crc32(input.subarray(0, n), crcs[i]);
        pieces?.set(input.subarray(0, n), i * bytes + done);
      }
      coder.run(n);
      for (let j = 0; j < m; j++) {
        const output = coder.output(j).subarray(0, n);
        crcs[k + j] = crc32(output, crcs[k + j]);
        pieces?.set(output, (k + j) * bytes + done);
      }
    }
  } finally {
    closeSync(fd);
  }
  return { from, bytes, crcs, fileCrcs, fileBytes, pieces };
}

/** What rebuildIntoFile reports. */
export interface FileRebuild {
  /** crc32 of the file as written: the rebuilt snapshot's checksum. */
  readonly crc32: number;
  /** Shards that were present but failed their checksum (treated as missing). */
  readonly corrupt: number[];
  readonly missing: number[];
}

function writeFully(fd: number, bytes: Uint8Array, position: number): void {
  let done = 0;
  // Bounded: writeSync either advances or throws.
  while (done < bytes.byteLength) done += writeSync(fd, bytes, done, bytes.byteLength - done, position + done);
}

/**
 * Rebuilds the data of `layout` from any k intact shards (`shards[i]` is shard i or null), into
 * the file at `path`, created or truncated; every shard given is checked first (censusOfShards:
 * NotEnoughShardsError before the file is touched).
 */
export function rebuildIntoFile(layout: ShardLayout, shards: readonly (Shard | null)[], path: string, options: CodecOptions = {}): FileRebuild {
  const { dataShards: k, stripeBytes, stripes } = layout;
  // The file's pieces in file order are segments s*k + i (stripe s of data shard i): each one's
  // bytes are written in order, its crc32 running along; then the segments' crc32s are chained.
  const segments = Array.from({ length: stripes * k }, () => ({ crc: 0, bytes: 0 }));
  // Made at the first bytes: decodeDataShards checks every shard before it emits any, so a
  // NotEnoughShardsError leaves the file untouched.
  let fd: number | null = null;
  const file = () => (fd ??= openSync(path, 'w'));
  try {
    const put = (i: number, piece: Uint8Array, from: number) =>
      dataRuns(layout, i, from, piece.length, (pieceAt, dataAt, length) => {
        const run = piece.subarray(pieceAt, pieceAt + length);
        writeFully(file(), run, dataAt);
        const segment = segments[Math.floor(dataAt / stripeBytes)]!;
        segment.crc = crc32(run, segment.crc);
        segment.bytes += length;
      });
    const { corrupt, missing } = decodeDataShards(layout, shards, options, put);
    ftruncateSync(file(), layout.totalBytes);
    let crc = 0;
    for (const s of segments) crc = crc32Combine(crc, s.crc, s.bytes);
    return { crc32: crc, corrupt, missing };
  } finally {
    if (fd !== null) closeSync(fd);
  }
}
