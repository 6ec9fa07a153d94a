// One shard sent to its holder while it is being coded: a PutShard call that carries the shard's
// header first, then its bytes as they come, and is ended (`finish`) only once the sender is done
// with them all, or cancelled (`abort`). A holder stores a shard when its stream ends with as many
// bytes as the header says; grpc-js may hand a holder a cancelled stream as ended, so what keeps
// a holder from keeping an abandoned shard is that it is short: abort before the last bytes.
//
// Back-pressure: a chunk given to gRPC stays referenced by its write queue until it is serialized,
// so `write` resolves only once fewer than UPLOAD_WINDOW_CHUNKS chunks of this call are queued or
// unwritten (their write callbacks not yet called): per call at most that many chunks of
// SHARD_CHUNK_BYTES, plus their serialized copies, are held.

import type * as grpc from '@grpc/grpc-js';
import { deadline } from '../common/proto.ts';
import { encodeShardHeader } from '../common/wire/snapshot-manager-wire.ts';
import type { ShardHeader } from '../domain/erasure-protection.ts';
import type { ShardChunk } from '../proto/generated/ftrain/v1/ShardChunk.ts';
import type { SnapshotManagerClient } from '../proto/generated/ftrain/v1/SnapshotManager.ts';
import { SHARD_CHUNK_BYTES } from './shard-transfer.ts';

/** Chunks of one upload handed to gRPC and not yet written out. */
export const UPLOAD_WINDOW_CHUNKS = 2;

export class ShardUpload {
  private readonly call: grpc.ClientWritableStream<ShardChunk>;
  private readonly acked: Promise<void>;
  private unwritten = 0;
  private failure: Error | null = null;
  private wake: (() => void) | null = null;

  constructor(
    client: SnapshotManagerClient,
    readonly address: string,
    readonly header: ShardHeader,
    timeoutMs: number,
  ) {
    let call: grpc.ClientWritableStream<ShardChunk> | null = null;
    this.acked = new Promise<void>((resolve, reject) => {
      call = client.PutShard({ deadline: deadline(timeoutMs) }, (err) => {
        if (err) {
          this.failure ??= new Error(`sending shard ${header.index} of stage ${header.stage} step ${header.step} to ${address} failed: ${err.details || err.message}`);
          reject(this.failure);
        } else {
          resolve();
        }
        this.wakeUp();
      });
    });
    this.acked.catch(() => {}); // observed through write and finish
    this.call = call!;
    this.send({ header: encodeShardHeader(header) });
  }

  /** Sends the shard's next bytes; resolves when the call has room for more. */
  async write(bytes: Uint8Array): Promise<void> {
    for (let off = 0; off < bytes.byteLength; off += SHARD_CHUNK_BYTES) {
      await this.room();
      this.send({ data: bytes.subarray(off, Math.min(off + SHARD_CHUNK_BYTES, bytes.byteLength)) });
    }
    await this.room();
  }

  /** Ends the stream (the holder stores the shard) and waits for the holder's answer. */
  async finish(): Promise<void> {
    if (this.failure) throw this.failure;
    this.call.end();
    await this.acked;
  }

  /** Cancels the call: the holder drops what it received of the shard. */
  abort(): void {
    this.failure ??= new Error(`sending shard ${this.header.index} of stage ${this.header.stage} step ${this.header.step} to ${this.address} was abandoned`);
    this.call.cancel();
    this.wakeUp();
  }

  private send(chunk: ShardChunk): void {
    this.unwritten += 1;
    this.call.write(chunk, () => {
      this.unwritten -= 1;
      this.wakeUp();
    });
  }

  private async room(): Promise<void> {
    // Bounded: each wait ends with a write callback or the call's end, and the count only falls.
    while (!this.failure && this.unwritten >= UPLOAD_WINDOW_CHUNKS) await new Promise<void>((resolve) => (this.wake = resolve));
    if (this.failure) throw this.failure;
  }

  private wakeUp(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}
