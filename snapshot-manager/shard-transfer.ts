// Erasure shards on the wire between snapshot managers: a shard is a header chunk followed by
// its bytes in chunks of SHARD_CHUNK_BYTES (PutShard carries one shard, FetchShards any number).
// Writers respect back-pressure; readers check every chunk through the codec and the lengths
// against the header.

import type * as grpc from '@grpc/grpc-js';
import { decodeShardChunk, encodeShardHeader } from '../common/wire/snapshot-manager-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';
import type { ShardHeader } from '../domain/erasure-protection.ts';
import type { ShardChunk, ShardChunk__Output } from '../proto/generated/ftrain/v1/ShardChunk.ts';

/** Shard bytes per gRPC message. */
export const SHARD_CHUNK_BYTES = 1 << 20;

/** A stream that shard chunks are written to, with back-pressure (PutShard's and FetchShards'). */
export interface ShardSink {
  write(chunk: ShardChunk): boolean;
  once(event: 'drain', listener: () => void): unknown;
}

/** One shard on a stream: its header chunk, then its bytes in chunks of SHARD_CHUNK_BYTES. */
export async function writeShard(sink: ShardSink, header: ShardHeader, bytes: Uint8Array): Promise<void> {
  const write = async (chunk: ShardChunk) => {
    if (!sink.write(chunk)) await new Promise<void>((resolve) => sink.once('drain', resolve));
  };
  await write({ header: encodeShardHeader(header) });
  for (let off = 0; off < bytes.byteLength; off += SHARD_CHUNK_BYTES) {
    await write({ data: bytes.subarray(off, Math.min(off + SHARD_CHUNK_BYTES, bytes.byteLength)) });
  }
}

/** A shard as received: its header and its bytes. */
export type ReceivedShard = ShardHeader & { readonly data: Uint8Array };

/**
 * Reassembles shards from a stream of chunks. `add` throws a WireError on a chunk that breaks the
 * format (bytes before any header, more bytes than the header says, a header before the previous
 * shard was complete); `finish` returns the shards, checking the last one is complete.
 */
export class ShardAssembler {
  private current: { header: ShardHeader; parts: Buffer[]; got: number } | null = null;
  private readonly done: ReceivedShard[] = [];

  add(msg: ShardChunk__Output): void {
    const { header, data } = decodeShardChunk(msg);
    if (header) {
      this.complete();
      this.current = { header, parts: [], got: 0 };
      return;
    }
    const cur = this.current;
    if (!cur) throw new WireError('header', 'the first chunk of a shard must carry its header');
    cur.parts.push(data);
    cur.got += data.length;
    if (cur.got > cur.header.bytes) {
      throw new WireError('data', `shard ${cur.header.index} of stage ${cur.header.stage} step ${cur.header.step} is longer than its header says (${cur.header.bytes} bytes)`);
    }
  }

  private complete(): void {
    const cur = this.current;
    if (!cur) return;
    if (cur.got !== cur.header.bytes) {
      throw new WireError('data', `shard ${cur.header.index} of stage ${cur.header.stage} step ${cur.header.step}: ${cur.got} bytes, header says ${cur.header.bytes}`);
    }
    this.done.push({ ...cur.header, data: new Uint8Array(Buffer.concat(cur.parts, cur.got)) });
    this.current = null;
  }

  /** Every complete shard received. */
  finish(): ReceivedShard[] {
    this.complete();
    return this.done;
  }
}

/** Reads every shard a FetchShards stream sends. */
export function readShards(call: grpc.ClientReadableStream<ShardChunk__Output>): Promise<ReceivedShard[]> {
  return new Promise((resolve, reject) => {
    const assembler = new ShardAssembler();
    let failed = false;
    call.on('data', (c: ShardChunk__Output) => {
      if (failed) return;
      try {
        assembler.add(c);
      } catch (err) {
        failed = true;
        call.cancel();
        reject(err);
      }
    });
    call.on('end', () => {
      if (failed) return;
      try {
        resolve(assembler.finish());
      } catch (err) {
        reject(err);
      }
    });
    call.on('error', (err: grpc.ServiceError) => {
      if (!failed) reject(new Error(err.details || err.message));
    });
  });
}
