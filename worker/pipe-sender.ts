// One long-lived Pipe stream to a pipeline neighbour: tensors go out in chunks of at most ~1 MiB
// (gRPC's receive limit), written with back-pressure, one tensor at a time.

import type * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { encodePipeChunk, type PipeKind } from '../common/wire/worker-wire.ts';
import { chunkFloat32 } from '../domain/tensor-codec.ts';
import type { PipeChunk } from '../proto/generated/ftrain/v1/PipeChunk.ts';
import type { WorkerClient } from '../proto/generated/ftrain/v1/Worker.ts';
import type { PipeTensor } from './stage-trainer.ts';

/**
 * Thrown by a send on a stream that broke: the neighbour died or went away. Not a fault of this
 * node: the coordinator learns of the peer's death and recovers.
 */
export class PipeBrokenError extends Error {
  override readonly name = 'PipeBrokenError';
  constructor(cause: Error) {
    super(`pipeline peer connection broke: ${cause.message}`, { cause });
  }
}

export class PipeSender {
  private readonly call: grpc.ClientWritableStream<PipeChunk>;
  private broken: PipeBrokenError | null = null;

  /** `onBroken`: the stream failed (the peer died or refused a chunk); later sends throw. */
  constructor(
    client: WorkerClient,
    private readonly fromStage: number,
    private readonly epoch: number,
    onBroken: (err: Error) => void,
  ) {
    this.call = client.Pipe((err) => {
      if (err) {
        this.broken ??= new PipeBrokenError(err);
        onBroken(err);
      }
    });
    this.call.on('error', (err) => {
      this.broken ??= new PipeBrokenError(err);
      onBroken(err);
    });
  }

  /**
   * Sends one tensor. Its chunks view `tensor.data` (no copy): the caller leaves it unchanged
   * until this resolves.
   */
  async send(kind: PipeKind, step: number, microBatch: number, hop: number, tensor: PipeTensor): Promise<void> {
    const chunks = chunkFloat32(tensor.data);
    for (let i = 0; i < chunks.length; i++) {
      if (this.broken) throw this.broken;
      const ok = this.call.write(
        encodePipeChunk({
          kind,
          fromStage: this.fromStage,
          epoch: this.epoch,
          step,
          microBatch,
          hop,
          shape: i === 0 ? tensor.shape : [],
          chunkIndex: i,
          chunkCount: chunks.length,
          data: chunks[i]!,
        }),
      );
      if (!ok) await once(this.call, 'drain');
    }
  }

  end(): void {
    this.call.end();
  }
}

/**
 * Sends one tensor on a call of its own (KeepEdgeCopy) and resolves when the peer has answered
 * that it keeps it; a call that fails rejects with PipeBrokenError.
 */
export async function sendKept(client: WorkerClient, fromStage: number, epoch: number, kind: PipeKind, step: number, tensor: PipeTensor): Promise<void> {
  let settle!: (err: Error | null) => void;
  const answered = new Promise<void>((resolve, reject) => (settle = (err) => (err ? reject(new PipeBrokenError(err)) : resolve())));
  const call = client.KeepEdgeCopy((err) => settle(err));
  call.on('error', (err) => settle(err));
  const chunks = chunkFloat32(tensor.data);
  for (let i = 0; i < chunks.length; i++) {
    const ok = call.write(encodePipeChunk({ kind, fromStage, epoch, step, microBatch: 0, hop: 0, shape: i === 0 ? tensor.shape : [], chunkIndex: i, chunkCount: chunks.length, data: chunks[i]! }));
    if (!ok) await Promise.race([once(call, 'drain'), answered]);
  }
  call.end();
  await answered;
}
