// The replicas' ring all-reduce on the wire (Worker.AllReduce): one ring message of
// worker/ring-all-reduce.ts travels as chunks of at most ~1 MiB of float32 bytes, in order, on
// the sender's one stream. Each field is checked here (WireError names it), and the chunks are
// put back together into the message; whether a chunk belongs to the receiver's epoch, stage and
// ring is the receiver's question (worker/replica-ring.ts).

import { MAX_STAGES } from '../../domain/job-options.ts';
import { joinFloat32 } from '../../domain/tensor-codec.ts';
import type { ReduceChunk as ReduceChunkProto, ReduceChunk__Output } from '../../proto/generated/ftrain/v1/ReduceChunk.ts';
import { int, parsed, WireError, type MalformedMessage } from './wire-check.ts';
import { MAX_TENSOR_CHUNKS } from './worker-wire.ts';

/** One chunk of ring message (`ringStep`, `ringChunk`) of the all-reduce of training step `step`. */
export interface ReduceChunk {
  readonly epoch: number;
  readonly stage: number;
  /** The sender's rank: the replica index of the stage it holds. */
  readonly fromReplica: number;
  readonly step: number;
  /** The ring's step, 0 .. 2(D - 1) - 1, and the chunk of the vector its message carries. */
  readonly ringStep: number;
  readonly ringChunk: number;
  readonly chunkIndex: number;
  readonly chunkCount: number;
  /** Little-endian float32 bytes, at any byte offset (the receiver copies them before viewing). */
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
    ringStep: int('ring_step', c.ringStep, 0),
    ringChunk: int('ring_chunk', c.ringChunk, 0),
    chunkIndex: int('chunk_index', c.chunkIndex, 0, chunkCount - 1),
    chunkCount,
    data,
  };
}

/** A ring message put back together: its training step, ring step, chunk of the vector and values. */
export interface ReduceMessage {
  readonly step: number;
  readonly ringStep: number;
  readonly ringChunk: number;
  readonly values: Float32Array;
}

/** Puts the ring messages of one stream back together from their chunks, which come in order. */
export class ReduceAssembler {
  private current: { step: number; ringStep: number; ringChunk: number; count: number; chunks: Uint8Array[]; bytes: number } | null = null;

  /** A message is under way: the stream may not end here. */
  get partial(): boolean {
    return this.current !== null;
  }

  /** The whole message once its last chunk is in, else null; WireError for a chunk out of order. */
  add(c: ReduceChunk): ReduceMessage | null {
    if (c.chunkIndex === 0) {
      if (this.current) throw new WireError('chunk_index', `ring message ${c.ringStep} of step ${c.step} began before message ${this.current.ringStep} of step ${this.current.step} was complete`);
      this.current = { step: c.step, ringStep: c.ringStep, ringChunk: c.ringChunk, count: c.chunkCount, chunks: [], bytes: 0 };
    }
    const m = this.current;
    if (!m || m.step !== c.step || m.ringStep !== c.ringStep || m.ringChunk !== c.ringChunk || m.count !== c.chunkCount || m.chunks.length !== c.chunkIndex) {
      throw new WireError('chunk_index', `chunk ${c.chunkIndex} of ring message ${c.ringStep} of step ${c.step} is out of order`);
    }
    m.chunks.push(c.data);
    m.bytes += c.data.byteLength;
    if (m.chunks.length < m.count) return null;
    this.current = null;
    // Received bytes may sit at any offset: joinFloat32 copies them into an aligned array.
    return { step: m.step, ringStep: m.ringStep, ringChunk: m.ringChunk, values: joinFloat32(m.chunks, [m.bytes / 4]) };
  }
}
