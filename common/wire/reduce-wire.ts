// The replicas' ring all-reduce on the wire (Worker.AllReduce): one ring message of
// worker/ring-all-reduce.ts travels as chunks of at most ~1 MiB of float32 bytes, in order, on
// the sender's one stream. Each field is checked here (WireError names it), and so is the order of
// the chunks on a stream; whether a chunk belongs to the receiver's epoch, stage and
// ring is the receiver's question (worker/replica-ring.ts).

import { MAX_STAGES } from '../../domain/job-options.ts';
import type { ReduceChunk as ReduceChunkProto, ReduceChunk__Output } from '../../proto/generated/ftrain/v1/ReduceChunk.ts';
import { int, parsed, WireError, type MalformedMessage } from './wire-check.ts';
import { MAX_TENSOR_CHUNKS } from './worker-wire.ts';

/** Most buckets a stage's gradient is summed in: far more than the variables of a stage. */
export const MAX_BUCKETS = 4096;

/** One chunk of ring message (`ringStep`, `ringChunk`) of the all-reduce of training step `step`. */
export interface ReduceChunk {
  readonly epoch: number;
  readonly stage: number;
  /** The sender's rank: the replica index of the stage it holds. */
  readonly fromReplica: number;
  readonly step: number;
  /** Which bucket of the vector (summed one after another, each a ring of its own); 0 for one bucket. */
  readonly bucket: number;
  /** The ring's step, 0 .. 2(D - 1) - 1, and the chunk of the vector its message carries. */
  readonly ringStep: number;
  readonly ringChunk: number;
  readonly chunkIndex: number;
  readonly chunkCount: number;
  /** Little-endian float32 bytes, at any byte offset (see float32Values). */
  readonly data: Uint8Array;
}

export function encodeReduceChunk(c: ReduceChunk): ReduceChunkProto {
  return { ...c };
}

export function decodeReduceChunk(msg: ReduceChunk__Output | MalformedMessage): ReduceChunk {
  const c = parsed(msg, 'ReduceChunk');
  const chunkCount = int('chunk_count', c.chunkCount, 1, MAX_TENSOR_CHUNKS);
  const data = c.data ?? Buffer.alloc(0);
  if (data.byteLength % 4 !== 0) throw new WireError('data', `must hold whole float32 values (a multiple of 4 bytes), got ${data.byteLength} bytes`);
  return {
    epoch: int('epoch', c.epoch, 0),
    stage: int('stage', c.stage, 0, MAX_STAGES - 1),
    fromReplica: int('from_replica', c.fromReplica, 0),
    step: int('step', c.step, 0),
    bucket: int('bucket', c.bucket, 0, MAX_BUCKETS - 1),
    ringStep: int('ring_step', c.ringStep, 0),
    ringChunk: int('ring_chunk', c.ringChunk, 0),
    chunkIndex: int('chunk_index', c.chunkIndex, 0, chunkCount - 1),
    chunkCount,
    data,
  };
}

/**
 * Checks that the chunks of one stream come as its sender writes them: the ring messages one after
 * another, each as chunks 0 .. count - 1 in order. Nothing is put back together: the receiver adds
 * each chunk into its sum as it comes (worker/ring-all-reduce.ts); whether a chunk is the one its
 * ring expects next, and fits its part of the vector, is the ring's question.
 */
export class ReduceSequence {
  private current: { step: number; bucket: number; ringStep: number; ringChunk: number; count: number; next: number } | null = null;

  /** A message is under way: the stream may not end here. */
  get partial(): boolean {
    return this.current !== null;
  }

  /** WireError for a chunk out of order; otherwise notes it. */
  add(c: ReduceChunk): void {
    if (c.chunkIndex === 0) {
      if (this.current) throw new WireError('chunk_index', `ring message ${c.ringStep} of step ${c.step} began before message ${this.current.ringStep} of step ${this.current.step} was complete`);
      this.current = { step: c.step, bucket: c.bucket, ringStep: c.ringStep, ringChunk: c.ringChunk, count: c.chunkCount, next: 0 };
    }
    const m = this.current;
    if (!m || m.step !== c.step || m.bucket !== c.bucket || m.ringStep !== c.ringStep || m.ringChunk !== c.ringChunk || m.count !== c.chunkCount || m.next !== c.chunkIndex) {
      throw new WireError('chunk_index', `chunk ${c.chunkIndex} of ring message ${c.ringStep} of step ${c.step} is out of order`);
    }
    m.next += 1;
    if (m.next === m.count) this.current = null;
  }
}

/**
 * A chunk's bytes as float32 values. Received bytes may sit at any byte offset: an aligned chunk is
 * viewed where it lies; any other is copied into `scratch` (grown as needed, and valid only until
 * the next call), so the values must be used before then.
 */
export function float32Values(data: Uint8Array, scratch: { buffer: ArrayBuffer }): Float32Array {
  if (data.byteOffset % 4 === 0) return new Float32Array(data.buffer, data.byteOffset, data.byteLength / 4);
  if (scratch.buffer.byteLength < data.byteLength) scratch.buffer = new ArrayBuffer(Math.max(data.byteLength, 2 * scratch.buffer.byteLength));
  new Uint8Array(scratch.buffer, 0, data.byteLength).set(data);
  return new Float32Array(scratch.buffer, 0, data.byteLength / 4);
}
