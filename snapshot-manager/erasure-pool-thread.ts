// Runs in a worker thread of an ErasurePool: encodes and rebuilds snapshots, and codes ranges of
// columns of snapshot files, off the owner's event loop. Messages in: PoolRequest; out, one per
// request: its PoolReply. Buffers come in transferred or shared (see erasure-pool.ts) and the
// shards, data or pieces made here go back transferred.

import { parentPort } from 'node:worker_threads';
import {
  ErasureCodecError,
  NotEnoughShardsError,
  encodeShards,
  rebuildFromShards,
  type CodecOptions,
  type EncodeOptions,
  type ErasureParams,
  type Shard,
  type ShardLayout,
} from './erasure-codec.ts';
import { codeFileColumns, rebuildIntoFile, type CodedColumns } from './column-coder.ts';
import { COLLECT_AFTER_BYTES, collectGarbage } from './collect-garbage.ts';

export type PoolRequest =
  | {
      readonly type: 'encode';
      readonly id: number;
      readonly data: Uint8Array;
      readonly params: ErasureParams;
      readonly stripeBytes: number;
      readonly codec: EncodeOptions;
      /** Test hook: the thread exits at once, as if it crashed, instead of encoding. */
      readonly exitThread?: boolean;
    }
  | {
      readonly type: 'rebuild';
      readonly id: number;
      readonly layout: ShardLayout;
      readonly shards: readonly (Shard | null)[];
      readonly codec: CodecOptions;
    }
  | {
      readonly type: 'columns';
      readonly id: number;
      /** The snapshot file, read by the thread itself. */
      readonly path: string;
      readonly layout: ShardLayout;
      readonly from: number;
      readonly bytes: number;
      readonly keepPieces: boolean;
      readonly codec: CodecOptions;
    }
  | {
      readonly type: 'rebuild-into';
      readonly id: number;
      readonly layout: ShardLayout;
      readonly shards: readonly (Shard | null)[];
      /** The file the data is written to, by the thread itself. */
      readonly path: string;
      readonly codec: CodecOptions;
    };

/** The error classes a caller may tell apart, carried over the thread boundary by their fields. */
export type PoolFailure =
  | { readonly kind: 'not-enough-shards'; readonly intact: number; readonly needed: number; readonly corrupt: readonly number[] }
  | { readonly kind: 'codec'; readonly message: string }
  | { readonly kind: 'other'; readonly name: string; readonly message: string };

export type PoolReply =
  | { readonly type: 'encoded'; readonly id: number; readonly layout: ShardLayout; readonly shards: Shard[]; readonly threadMs: number }
  | { readonly type: 'rebuilt'; readonly id: number; readonly data: Uint8Array; readonly corrupt: number[]; readonly missing: number[]; readonly threadMs: number }
  | { readonly type: 'columns'; readonly id: number; readonly coded: CodedColumns }
  | { readonly type: 'rebuilt-into'; readonly id: number; readonly crc32: number; readonly corrupt: number[]; readonly missing: number[]; readonly threadMs: number }
  | { readonly type: 'failed'; readonly id: number; readonly failure: PoolFailure };

function failureOf(err: unknown): PoolFailure {
  if (err instanceof NotEnoughShardsError) return { kind: 'not-enough-shards', intact: err.intact, needed: err.needed, corrupt: err.corrupt };
  if (err instanceof ErasureCodecError) return { kind: 'codec', message: err.message };
  const e = err instanceof Error ? err : new Error(String(err));
  return { kind: 'other', name: e.name, message: e.message };
}

parentPort!.on('message', (req: PoolRequest) => {
  const started = performance.now();
  try {
    if (req.type === 'encode') {
      if (req.exitThread) process.exit(3);
      const { layout, shards } = encodeShards(req.data, req.params, req.stripeBytes, req.codec);
      const reply: PoolReply = { type: 'encoded', id: req.id, layout, shards, threadMs: performance.now() - started };
      // Data shards may be views of the data's buffer: each buffer goes once; shared ones are not transferred.
      const buffers = new Set(shards.map((s) => s.bytes.buffer).filter((b): b is ArrayBuffer => !(b instanceof SharedArrayBuffer)));
      parentPort!.postMessage(reply, [...buffers]);
    } else if (req.type === 'columns') {
      const coded = codeFileColumns(req.path, req.layout, req.from, req.bytes, req.keepPieces, req.codec);
      parentPort!.postMessage({ type: 'columns', id: req.id, coded } satisfies PoolReply, coded.pieces ? [coded.pieces.buffer as ArrayBuffer] : []);
    } else if (req.type === 'rebuild-into') {
      const { crc32, corrupt, missing } = rebuildIntoFile(req.layout, req.shards, req.path, req.codec);
      parentPort!.postMessage({ type: 'rebuilt-into', id: req.id, crc32, corrupt, missing, threadMs: performance.now() - started } satisfies PoolReply);
      // The shards were handed over to this thread, which may now idle for the rest of the run.
      if (req.layout.totalBytes >= COLLECT_AFTER_BYTES) collectGarbage();
    } else {
      const { data, corrupt, missing } = rebuildFromShards(req.layout, req.shards, req.codec);
      const reply: PoolReply = { type: 'rebuilt', id: req.id, data, corrupt, missing, threadMs: performance.now() - started };
      parentPort!.postMessage(reply, [data.buffer as ArrayBuffer]);
    }
  } catch (err) {
    parentPort!.postMessage({ type: 'failed', id: req.id, failure: failureOf(err) } satisfies PoolReply);
  }
});
