// The receiving end of a Pipe stream: every chunk is decoded and checked by the codec, then
// against this node's assignment (its epoch, and the route of the chunk's micro-batch: only the
// stage before a hop may send it activations, only the stage after it gradients), reassembled
// into tensors and delivered to the mailbox (or, on KeepEdgeCopy, kept as the CheckFree+ edge copy).

import * as grpc from '@grpc/grpc-js';
import type { Logger } from '../common/logging.ts';
import { statusError } from '../common/proto.ts';
import { invalidStatus } from '../common/wire/refusal-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';
import { decodePipeChunk, type PipeChunk, type PipeKind } from '../common/wire/worker-wire.ts';
import { ProtocolError, errorMessage } from '../domain/errors.ts';
import type { Ack } from '../proto/generated/ftrain/v1/Ack.ts';
import type { PipeChunk__Output } from '../proto/generated/ftrain/v1/PipeChunk.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { senderOf } from '../domain/pipeline-route.ts';
import { joinFloat32, shapeSize } from '../domain/tensor-codec.ts';
import type { PipeDirection } from './pipe-mailbox.ts';
import type { PipeTensor, StageTrainer, StepWork } from './stage-trainer.ts';

/** What a pipe stream is checked against: the stage this node holds now. */
export interface PipeTarget {
  readonly stage: number;
  readonly epoch: number;
  readonly job: JobOptions;
  readonly trainer: StageTrainer;
  /** Whose micro-batches the stage trains: a tensor's micro-batch is its key in the step's work list (StageTrainer.runStep). */
  readonly work: StepWork;
  /** The edge stage whose embedding or head this stage keeps a copy of (CheckFree+), or null. */
  readonly edgeCopySource: number | null;
  /** Values in that copy. */
  readonly edgeCopySize: number;
}

export type PipeDelivery =
  | { readonly kind: PipeDirection; readonly step: number; readonly microBatch: number; readonly hop: number; readonly tensor: PipeTensor }
  | { readonly kind: 'edge-copy'; readonly from: number; readonly step: number; readonly data: Float32Array };

/** Reassembles chunked tensors arriving on one Pipe stream. */
export class PipeAssembler {
  private current: { kind: PipeKind; step: number; microBatch: number; hop: number; shape: readonly number[]; chunks: Buffer[]; count: number } | null = null;

  /** Returns a finished tensor, or null while more chunks are due. Throws ProtocolError on a bad chunk. */
  add(c: PipeChunk): { kind: PipeKind; step: number; microBatch: number; hop: number; tensor: PipeTensor } | null {
    if (c.chunkIndex === 0) {
      if (this.current) throw new ProtocolError('a new tensor started before the previous one was complete');
      if (c.shape.length === 0) throw new ProtocolError(`pipe chunk has a bad shape [] or chunk count ${c.chunkCount}`);
      this.current = { kind: c.kind, step: c.step, microBatch: c.microBatch, hop: c.hop, shape: c.shape, chunks: [], count: c.chunkCount };
    }
    const cur = this.current;
    if (!cur || cur.kind !== c.kind || cur.step !== c.step || cur.microBatch !== c.microBatch || cur.hop !== c.hop || c.chunkIndex !== cur.chunks.length) {
      throw new ProtocolError(`pipe chunk ${c.chunkIndex} of step ${c.step} micro-batch ${c.microBatch} hop ${c.hop} is out of order`);
    }
    cur.chunks.push(c.data);
    if (cur.chunks.length < cur.count) return null;
    this.current = null;
    return { kind: cur.kind, step: cur.step, microBatch: cur.microBatch, hop: cur.hop, tensor: { shape: cur.shape, data: joinFloat32(cur.chunks, cur.shape) } };
  }
}

/** Checks one stream's chunks against the target in force and reassembles them. */
export class PipeReceiver {
  private readonly assembler = new PipeAssembler();

  /** A delivery when a tensor is complete, else null. Throws ProtocolError (or WireError) on a chunk this node must refuse. */
  add(c: PipeChunk, a: PipeTarget | null): PipeDelivery | null {
    if (!a) throw new ProtocolError('this node has no stage yet');
    if (c.epoch !== a.epoch) throw new ProtocolError(`pipe chunk of epoch ${c.epoch}; this node is in epoch ${a.epoch}`);
    if (c.kind === 'edge-copy') {
      if (a.edgeCopySource === null || c.fromStage !== a.edgeCopySource) {
        throw new ProtocolError(`stage ${a.stage} keeps no copy of stage ${c.fromStage}'s ${c.fromStage === 0 ? 'embedding' : 'head'}`);
      }
      const done = this.assembler.add(c);
      if (!done) return null;
      if (done.tensor.data.length !== a.edgeCopySize) throw new ProtocolError(`copy of stage ${a.edgeCopySource}'s parameters has ${done.tensor.data.length} values, not ${a.edgeCopySize}`);
      return { kind: 'edge-copy', from: a.edgeCopySource, step: done.step, data: done.tensor.data };
    }
    const keys = a.work.owners.length * a.job.microBatches;
    if (c.microBatch >= keys) throw new WireError('micro_batch', `must be an integer from 0 to ${keys - 1}, got ${c.microBatch}`);
    const route = a.trainer.routes[c.microBatch % a.job.microBatches]!;
    if (c.hop >= route.length || route[c.hop]!.stage !== a.stage) {
      throw new ProtocolError(`hop ${c.hop} of micro-batch ${c.microBatch} is not stage ${a.stage}'s`);
    }
    const what = c.kind === 'activation' ? 'PIPE_KIND_ACTIVATION' : 'PIPE_KIND_GRADIENT';
    const expectedFrom = senderOf(route, c.hop, c.kind);
    if (expectedFrom === null) {
      throw new ProtocolError(`stage ${a.stage} takes no ${what} for hop ${c.hop} of micro-batch ${c.microBatch} (its route ${c.kind === 'activation' ? 'starts' : 'ends'} there), not from stage ${c.fromStage}`);
    }
    if (c.fromStage !== expectedFrom) {
      throw new ProtocolError(`stage ${a.stage} takes ${what} for hop ${c.hop} of micro-batch ${c.microBatch} only from stage ${expectedFrom}, not from stage ${c.fromStage}`);
    }
    if (c.step < a.trainer.completedSteps) {
      throw new ProtocolError(`stale ${what} for step ${c.step}; stage ${a.stage} has completed ${a.trainer.completedSteps} steps`);
    }
    const done = this.assembler.add(c);
    if (!done) return null;
    const want = a.trainer.model.activationShape(a.job.microBatchSize);
    if (shapeSize(done.tensor.shape) !== shapeSize(want) || done.tensor.shape.length !== want.length) {
      throw new ProtocolError(`${done.kind} shape [${done.tensor.shape.join(',')}] does not match [${want.join(',')}]`);
    }
    return { kind: done.kind as PipeDirection, step: done.step, microBatch: done.microBatch, hop: done.hop, tensor: done.tensor };
  }
}

/**
 * Serves one client stream of pipe chunks (Pipe, KeepEdgeCopy): each chunk is checked against
 * the stage held now and reassembled, each whole tensor goes to `take` (which may refuse it by
 * throwing), and the call is answered when the stream ends: OK, or what `atEnd` finds missing. A
 * chunk this node refuses ends the call at once with INVALID_ARGUMENT naming the field.
 */
export function receivePipeChunks(
  call: grpc.ServerReadableStream<PipeChunk__Output, Ack>,
  callback: grpc.sendUnaryData<Ack>,
  o: { readonly held: () => PipeTarget | null; readonly take: (d: PipeDelivery) => void; readonly atEnd?: () => WireError | null; readonly log: Logger; readonly what: string },
): void {
  const receiver = new PipeReceiver();
  let failed = false;
  call.on('data', (msg: PipeChunk__Output) => {
    if (failed) return;
    try {
      const delivery = receiver.add(decodePipeChunk(msg), o.held());
      if (delivery) o.take(delivery);
    } catch (err) {
      failed = true;
      o.log.warn({ err: errorMessage(err) }, `rejected ${o.what}`);
      if (err instanceof WireError) callback(invalidStatus(err));
      else callback(statusError(err instanceof ProtocolError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, errorMessage(err)));
    }
  });
  call.on('end', () => {
    if (failed) return;
    const missing = o.atEnd?.() ?? null;
    if (missing) callback(invalidStatus(missing));
    else callback(null, {});
  });
  call.on('error', () => {
    failed = true;
  });
}
