// Erasure shards on the wire between snapshot managers: a shard is a header chunk followed by
// its bytes in chunks of SHARD_CHUNK_BYTES (PutShard carries one shard, FetchShards any number).
// Writers respect back-pressure; readers check every chunk through the codec and the lengths
// against the header. A reader allocates a shard's memory once, when its header arrives (at most
// MAX_SHARD_BYTES), and copies each chunk into place: a shard costs its bytes, never twice.

import type * as grpc from '@grpc/grpc-js';
import { decodeShardChunk, encodeShardHeader } from '../common/wire/snapshot-manager-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';
import type { ShardHeader } from '../domain/erasure-protection.ts';
import type { ShardChunk, ShardChunk__Output } from '../proto/generated/ftrain/v1/ShardChunk.ts';

/** Shard bytes per gRPC message. */
export const SHARD_CHUNK_BYTES = 1 << 20;
/**
 * The largest shard a reader takes: a header that claims more is refused before anything is
 * allocated. 2 GiB: a k-th of a stage's state, for stages far beyond the ones ftrain trains.
 */
export const MAX_SHARD_BYTES = 2 ** 31;

/** A stream that shard chunks are written to, with back-pressure (FetchShards' server stream). */
export interface ShardSink {
  write(chunk: ShardChunk): boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
  off(event: 'drain' | 'close', listener: () => void): unknown;
  readonly destroyed: boolean;
}

/** Thrown when a shard stream closes (the reader cancelled, or went away) before the shard is written. */
export class ShardStreamClosedError extends Error {
  override readonly name = 'ShardStreamClosedError';
  constructor(readonly header: ShardHeader) {
    super(`the stream closed before shard ${header.index} of stage ${header.stage} step ${header.step} was sent`);
  }
}

/**
 * One shard on a stream: its header chunk, then its bytes in chunks of SHARD_CHUNK_BYTES. Waits
 * for 'drain' when the stream is full, and gives up when it closes meanwhile, so that a reader
 * that goes away leaves no write waiting forever with the shard in hand.
 */
export async function writeShard(sink: ShardSink, header: ShardHeader, bytes: Uint8Array): Promise<void> {
  const write = async (chunk: ShardChunk) => {
    if (sink.destroyed) throw new ShardStreamClosedError(header);
    if (sink.write(chunk)) return;
    await new Promise<void>((resolve, reject) => {
      const drained = () => {
        sink.off('close', closed);
        resolve();
      };
      const closed = () => {
        sink.off('drain', drained);
        reject(new ShardStreamClosedError(header));
      };
      sink.once('drain', drained);
      sink.once('close', closed);
    });
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
 * format (bytes before any header, a header that claims more than `maxShardBytes`, more bytes
 * than the header says, a header before the previous shard was complete); `finish` returns the
 * shards, checking the last one is complete, and lets go of them.
 */
export class ShardAssembler {
  private current: { header: ShardHeader; data: Uint8Array; got: number } | null = null;
  private done: ReceivedShard[] = [];

  constructor(
    private readonly maxShardBytes = MAX_SHARD_BYTES,
    /** Called with each valid header before the shard's memory is allocated (to free what it makes stale first). */
    private readonly beforeAllocating: (header: ShardHeader) => void = () => {},
  ) {}

  add(msg: ShardChunk__Output): void {
    const { header, data } = decodeShardChunk(msg);
    if (header) {
      this.complete();
      if (header.bytes > this.maxShardBytes) {
        throw new WireError('header.bytes', `shard ${header.index} of stage ${header.stage} step ${header.step} claims ${header.bytes} bytes, more than the ${this.maxShardBytes} a snapshot manager takes`);
      }
      this.beforeAllocating(header);
      this.current = { header, data: new Uint8Array(header.bytes), got: 0 };
      return;
    }
    const cur = this.current;
    if (!cur) throw new WireError('header', 'the first chunk of a shard must carry its header');
    if (cur.got + data.length > cur.header.bytes) {
      throw new WireError('data', `shard ${cur.header.index} of stage ${cur.header.stage} step ${cur.header.step} is longer than its header says (${cur.header.bytes} bytes)`);
    }
    cur.data.set(data, cur.got);
    cur.got += data.length;
  }

  private complete(): void {
    const cur = this.current;
    if (!cur) return;
    if (cur.got !== cur.header.bytes) {
      throw new WireError('data', `shard ${cur.header.index} of stage ${cur.header.stage} step ${cur.header.step}: ${cur.got} bytes, header says ${cur.header.bytes}`);
    }
    this.done.push({ ...cur.header, data: cur.data });
    this.current = null;
  }

  /** Lets go of everything received (the stream failed). */
  discard(): void {
    this.current = null;
    this.done = [];
  }

  /** Every complete shard received; the assembler keeps no reference to them. */
  finish(): ReceivedShard[] {
    this.complete();
    const done = this.done;
    this.done = [];
    return done;
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
        assembler.discard();
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
      assembler.discard();
      if (!failed) reject(new Error(err.details || err.message));
    });
  });
}
