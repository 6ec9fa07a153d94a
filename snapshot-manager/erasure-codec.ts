// Reed-Solomon erasure coding of a snapshot into k data + m parity shards, in stripes: the data
// is cut into pieces of `stripeBytes`, and shard i < k is piece i of every stripe (pieces s*k + i),
// end to end; parity shard k + j is parity row j of each stripe, end to end. Each shard carries a
// crc32: a corrupt shard is detected and treated as missing. Any k intact shards rebuild the data.
//
// The GF(2^8) work is a kernel's (wasm/erasure-kernel.ts): ftrain's wasm SIMD kernel by default,
// or the reed-solomon-erasure crate's wasm build as the reference; both give the same bytes. A
// kernel is driven over chunks of shard columns that stay in cache, whatever the stripe size (the
// stripes are the shards' layout, no longer a cache device); each chunk is copied into the
// kernel's memory, coded, copied into the shards and checksummed while it is still in cache.
//
// Where an encode's time goes (RS(4,2), 64 MiB, copying all shards): about 60% is the first touch
// of the 96 MiB of fresh shard memory (page faults), 25% the crc32s (node:zlib, ~4.5 GB/s here),
// under 10% the kernel. Hence dataShards 'view', which leaves the data shards in the data.
//
// CPU-heavy: call it from a worker thread (erasure-pool.ts), never from an event loop that must
// stay responsive.

import { crc32 } from 'node:zlib';
import type { ShardLayout } from '../domain/erasure-protection.ts';
import { ERASURE_KERNEL_NAMES, ErasureKernelName, type ChunkCoder, type ErasureKernel } from './wasm/erasure-kernel.ts';
import { ReferenceErasureKernel } from './wasm/erasure-kernel-reference.ts';
import { SimdErasureKernel } from './wasm/erasure-kernel-simd.ts';

export { ERASURE_KERNEL_NAMES, ErasureKernelName } from './wasm/erasure-kernel.ts';

/** Bytes of one shard's piece of a stripe. */
export const DEFAULT_STRIPE_BYTES = 1 << 20;

export interface CodecOptions {
  /** Which kernel does the GF(2^8) work; 'simd' unless given. */
  readonly kernel?: ErasureKernelName;
}

export const DataShardMode = {
  /** Every shard is a new buffer; the data is only read. */
  copy: 'copy',
  /**
   * Data shards are views of the data where the layout allows: with one stripe (stripeBytes =
   * oneStripeBytes(...)), data shard i is bytes [i*S, (i+1)*S) of the data, and only a shard that
   * runs past the data's end is a padded copy. The caller must leave the data unchanged while it
   * uses the shards. It saves writing k shards into fresh memory, the largest cost of an encode.
   */
  view: 'view',
} as const;
export type DataShardMode = (typeof DataShardMode)[keyof typeof DataShardMode];

export interface EncodeOptions extends CodecOptions {
  /** 'copy' unless given. */
  readonly dataShards?: DataShardMode;
}

/** The stripeBytes that makes one stripe of `totalBytes`: each data shard a contiguous part of the data. */
export function oneStripeBytes(totalBytes: number, dataShards: number): number {
  return Math.max(1, Math.ceil(totalBytes / dataShards));
}

/**
 * The layout of a one-stripe encode of `totalBytes` (what encodeShards gives with stripeBytes =
 * oneStripeBytes(...)): data shard i is bytes [i*L, (i+1)*L) of the data, L = stripeBytes, the
 * last one(s) zero-padded past the data's end.
 */
export function oneStripeLayout(totalBytes: number, params: ErasureParams): ShardLayout {
  checkParams(params);
  return { dataShards: params.dataShards, parityShards: params.parityShards, totalBytes, stripeBytes: oneStripeBytes(totalBytes, params.dataShards), stripes: 1 };
}

const kernels = new Map<ErasureKernelName, ErasureKernel>();

/** The kernel of that name: one per thread, made on first use and kept. */
export function kernelFor(name: ErasureKernelName = ErasureKernelName.simd): ErasureKernel {
  let kernel = kernels.get(name);
  if (!kernel) {
    if (name === ErasureKernelName.simd) kernel = new SimdErasureKernel();
    else if (name === ErasureKernelName.reference) kernel = new ReferenceErasureKernel();
    else throw new ErasureCodecError(`unknown erasure kernel '${String(name)}': use one of ${ERASURE_KERNEL_NAMES.join(', ')}`);
    kernels.set(name, kernel);
  }
  return kernel;
}

export interface ErasureParams {
  /** k: shards that carry the data. */
  readonly dataShards: number;
  /** m: parity shards; up to m lost or corrupt shards are survived. */
  readonly parityShards: number;
}

export interface Shard {
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly crc32: number;
}

/** Everything needed to rebuild, besides the shards themselves (the wire carries it in shard headers). */
export type { ShardLayout };

export interface EncodedSnapshot {
  readonly layout: ShardLayout;
  readonly shards: Shard[];
}

/** Thrown when too few intact shards are left to rebuild a snapshot. */
export class NotEnoughShardsError extends Error {
  override readonly name = 'NotEnoughShardsError';
  constructor(
    readonly intact: number,
    readonly needed: number,
    readonly corrupt: readonly number[],
  ) {
    super(
      `only ${intact} intact shard(s) of the ${needed} needed` +
        (corrupt.length > 0 ? ` (shard(s) ${corrupt.join(', ')} failed their checksum)` : '') +
        ': the snapshot cannot be rebuilt',
    );
  }
}

/** Thrown when the codec itself refuses the parameters or the buffer. */
export class ErasureCodecError extends Error {
  override readonly name = 'ErasureCodecError';
}

/** The largest k + m the GF(2^8) code supports. */
export const MAX_SHARDS = 256;

function checkParams(p: ErasureParams): void {
  const { dataShards: k, parityShards: m } = p;
  if (!Number.isInteger(k) || !Number.isInteger(m) || k < 1 || m < 1 || k + m > MAX_SHARDS) {
    throw new ErasureCodecError(`RS(${k},${m}) is not a valid code: need k >= 1, m >= 1 and k + m <= ${MAX_SHARDS}`);
  }
}

function checkStripeBytes(stripeBytes: number): void {
  if (!Number.isSafeInteger(stripeBytes) || stripeBytes < 1) throw new ErasureCodecError(`stripeBytes must be a positive integer, not ${stripeBytes}`);
}

function stripesFor(totalBytes: number, dataShards: number, stripeBytes: number): number {
  return Math.max(1, Math.ceil(totalBytes / (dataShards * stripeBytes)));
}

/**
 * Calls `visit` for each run of columns [from, from + bytes) of data shard i that lies in the
 * data: its offset in the piece, its offset in the data, its length. Column s*S + c of shard i is
 * data byte (s*k + i)*S + c (S = stripeBytes); past the data's end, all columns are padding.
 */
export function dataRuns(layout: ShardLayout, i: number, from: number, bytes: number, visit: (pieceAt: number, dataAt: number, length: number) => void): void {
  const { dataShards: k, stripeBytes: S, totalBytes } = layout;
  let done = 0;
  while (done < bytes) {
    const column = from + done;
    const stripe = Math.floor(column / S);
    const c = column - stripe * S;
    const run = Math.min(S - c, bytes - done);
    const at = (stripe * k + i) * S + c;
    const have = Math.max(0, Math.min(run, totalBytes - at));
    if (have > 0) visit(done, at, have);
    if (have < run) return;
    done += run;
  }
}

/** Copies columns [from, from + bytes) of data shard i out of the data into `into`, with zeros past the data's end. */
function gatherColumns(data: Uint8Array, k: number, stripeBytes: number, i: number, from: number, bytes: number, into: Uint8Array): void {
  let covered = 0;
  dataRuns({ dataShards: k, parityShards: 0, stripeBytes, totalBytes: data.length, stripes: 0 }, i, from, bytes, (pieceAt, dataAt, length) => {
    into.set(data.subarray(dataAt, dataAt + length), pieceAt);
    covered = pieceAt + length;
  });
  // Later columns of the shard lie further into the data: past its end, all are padding.
  if (covered < bytes) into.fill(0, covered, bytes);
}

/** The inverse of gatherColumns: writes `piece`, columns [from, from + piece.length) of data shard i, into the data. */
function scatterColumns(piece: Uint8Array, k: number, stripeBytes: number, i: number, from: number, data: Uint8Array): void {
  dataRuns({ dataShards: k, parityShards: 0, stripeBytes, totalBytes: data.length, stripes: 0 }, i, from, piece.length, (pieceAt, dataAt, length) => {
    data.set(piece.subarray(pieceAt, pieceAt + length), dataAt);
  });
}

/**
 * Puts a coded chunk into its shard at column `from` (unless the shard is a view of the data,
 * which holds it already); returns the shard's crc32 so far, taken while the chunk is in cache.
 */
function emitChunk(shard: Uint8Array, isView: boolean, chunk: Uint8Array, from: number, bytes: number, crcSoFar: number): number {
  const piece = chunk.subarray(0, bytes);
  if (!isView) shard.set(piece, from);
  return crc32(piece, crcSoFar);
}

/**
 * Encodes `data` into k + m shards of stripes * stripeBytes bytes each. The shards are new
 * buffers that the caller owns, but for the data shards that options.dataShards 'view' makes
 * views of `data`; `data` is only read.
 */
export function encodeShards(data: Uint8Array, params: ErasureParams, stripeBytes = DEFAULT_STRIPE_BYTES, options: EncodeOptions = {}): EncodedSnapshot {
  checkParams(params);
  checkStripeBytes(stripeBytes);
  const { dataShards: k, parityShards: m } = params;
  const n = k + m;
  const stripes = stripesFor(data.length, k, stripeBytes);
  const shardBytes = stripes * stripeBytes;
  const viewable = (options.dataShards ?? DataShardMode.copy) === DataShardMode.view && stripes === 1;
  const isView = Array.from({ length: n }, (_, i) => viewable && i < k && (i + 1) * shardBytes <= data.length);
  const out = isView.map((view, i) => (view ? data.subarray(i * shardBytes, (i + 1) * shardBytes) : new Uint8Array(shardBytes)));
  const crcs = new Array<number>(n).fill(0);
  const coder: ChunkCoder = kernelFor(options.kernel).encoder(k, m, shardBytes);
  for (let from = 0; from < shardBytes; from += coder.chunkBytes) {
    const bytes = Math.min(coder.chunkBytes, shardBytes - from);
    for (let i = 0; i < k; i++) {
      const piece = coder.input(i);
      gatherColumns(data, k, stripeBytes, i, from, bytes, piece);
      crcs[i] = emitChunk(out[i]!, isView[i]!, piece, from, bytes, crcs[i]!);
    }
    coder.run(bytes);
    for (let j = 0; j < m; j++) crcs[k + j] = emitChunk(out[k + j]!, false, coder.output(j), from, bytes, crcs[k + j]!);
  }
  return {
    layout: { dataShards: k, parityShards: m, totalBytes: data.length, stripeBytes, stripes },
    shards: out.map((bytes, index) => ({ index, bytes, crc32: crcs[index]! })),
  };
}

export interface RebuildResult {
  readonly data: Uint8Array;
  /** Shards that were present but failed their checksum (treated as missing). */
  readonly corrupt: number[];
  readonly missing: number[];
}

/** Which shards a rebuild can use: the first k intact ones, and which are corrupt or missing. */
export interface ShardCensus {
  /** Ascending indices of the k intact shards a rebuild decodes from. */
  readonly present: number[];
  /** Data shards (< k) that are not intact: the ones to decode. */
  readonly lost: number[];
  readonly corrupt: number[];
  readonly missing: number[];
}

/**
 * Checks the layout and every shard given (index, length, crc32), so that `corrupt` names all
 * the bad ones; throws NotEnoughShardsError with fewer than k intact.
 */
export function censusOfShards(layout: ShardLayout, shards: readonly (Shard | null)[]): ShardCensus {
  checkParams(layout);
  checkStripeBytes(layout.stripeBytes);
  const { dataShards: k, parityShards: m, stripeBytes, stripes, totalBytes } = layout;
  if (!Number.isSafeInteger(totalBytes) || totalBytes < 0 || stripes !== stripesFor(totalBytes, k, stripeBytes)) {
    throw new ErasureCodecError(`the layout is inconsistent: ${totalBytes} bytes in RS(${k},${m}) stripes of ${stripeBytes} make ${stripesFor(totalBytes, k, stripeBytes)} stripes, not ${stripes}`);
  }
  const n = k + m;
  const shardBytes = stripes * stripeBytes;
  const corrupt: number[] = [];
  const missing: number[] = [];
  const intact: boolean[] = [];
  for (let i = 0; i < n; i++) {
    const s = shards[i] ?? null;
    if (!s) {
      missing.push(i);
      intact.push(false);
    } else if (s.index !== i || s.bytes.length !== shardBytes || crc32(s.bytes) !== s.crc32) {
      corrupt.push(i);
      intact.push(false);
    } else {
      intact.push(true);
    }
  }
  const present = intact.flatMap((ok, i) => (ok ? [i] : [])).slice(0, k);
  if (present.length < k) throw new NotEnoughShardsError(present.length, k, corrupt);
  const lost = intact.slice(0, k).flatMap((ok, i) => (ok ? [] : [i]));
  return { present, lost, corrupt, missing };
}

/**
 * The data shards of `layout` from any k intact shards (`shards[i]` is shard i or null when
 * lost): `emit(i, piece, from)` gets columns [from, from + piece.length) of data shard i, each
 * column once (whole intact shards as they are, lost ones decoded chunk by chunk). Every shard
 * given is checked first (censusOfShards: NotEnoughShardsError before anything is emitted), so
 * that `corrupt` names all the bad ones.
 */
export function decodeDataShards(
  layout: ShardLayout,
  shards: readonly (Shard | null)[],
  options: CodecOptions,
  emit: (i: number, piece: Uint8Array, from: number) => void,
): { corrupt: number[]; missing: number[] } {
  const { present, lost, corrupt, missing } = censusOfShards(layout, shards);
  const { dataShards: k, parityShards: m, stripeBytes, stripes } = layout;
  const shardBytes = stripes * stripeBytes;
  if (lost.length === 0) {
    for (let i = 0; i < k; i++) emit(i, shards[i]!.bytes, 0);
    return { corrupt, missing };
  }
  const coder = kernelFor(options.kernel).decoder(k, m, present, lost, shardBytes);
  for (let from = 0; from < shardBytes; from += coder.chunkBytes) {
    const bytes = Math.min(coder.chunkBytes, shardBytes - from);
    present.forEach((s, at) => coder.input(at).set(shards[s]!.bytes.subarray(from, from + bytes)));
    coder.run(bytes);
    for (let i = 0, l = 0; i < k; i++) {
      emit(i, lost.includes(i) ? coder.output(l++).subarray(0, bytes) : shards[i]!.bytes.subarray(from, from + bytes), from);
    }
  }
  return { corrupt, missing };
}

/**
 * Rebuilds the data, in a new buffer, from any k intact shards; `shards[i]` is shard i or null
 * when lost. Every shard given is checked, so that `corrupt` names all the bad ones.
 */
export function rebuildFromShards(layout: ShardLayout, shards: readonly (Shard | null)[], options: CodecOptions = {}): RebuildResult {
  const data = new Uint8Array(layout.totalBytes);
  const { corrupt, missing } = decodeDataShards(layout, shards, options, (i, piece, from) => scatterColumns(piece, layout.dataShards, layout.stripeBytes, i, from, data));
  return { data, corrupt, missing };
}
