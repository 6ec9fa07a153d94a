// The Worker service on the wire: pipe chunks between neighbouring stages and weight chunks,
// converted and checked here (WireError names the field). Whether a chunk belongs to the
// receiver's epoch, stage and route is the receiver's question (worker/pipe-receiver.ts).

import { MAX_SLOTS, MAX_STAGES } from '../../domain/job-options.ts';
import type { PipeChunk as PipeChunkProto, PipeChunk__Output } from '../../proto/generated/ftrain/v1/PipeChunk.ts';
import type { FetchWeightsRequest__Output } from '../../proto/generated/ftrain/v1/FetchWeightsRequest.ts';
import type { FetchStateRequest__Output } from '../../proto/generated/ftrain/v1/FetchStateRequest.ts';
import { enumName, enumOf, int, list, parsed, type MalformedMessage } from './wire-check.ts';

export type PipeKind = 'activation' | 'gradient' | 'edge-copy';

const PIPE_KINDS = {
  PIPE_KIND_ACTIVATION: 'activation',
  PIPE_KIND_GRADIENT: 'gradient',
  PIPE_KIND_EDGE_COPY: 'edge-copy',
} as const satisfies Readonly<Record<string, PipeKind>>;

/** Most dimensions and chunks of one tensor accepted. */
export const MAX_TENSOR_DIMS = 8;
export const MAX_TENSOR_CHUNKS = 1 << 16;

/** One chunk of a tensor on a Pipe stream; `shape` is set on the first chunk only. */
export interface PipeChunk {
  readonly kind: PipeKind;
  readonly fromStage: number;
  readonly epoch: number;
  readonly step: number;
  readonly microBatch: number;
  readonly hop: number;
  readonly shape: readonly number[];
  readonly chunkIndex: number;
  readonly chunkCount: number;
  readonly data: Buffer;
}

export function encodePipeChunk(c: PipeChunk): PipeChunkProto {
  return { ...c, kind: enumName(PIPE_KINDS, c.kind), shape: [...c.shape] };
}

export function decodePipeChunk(msg: PipeChunk__Output | MalformedMessage): PipeChunk {
  const c = parsed(msg, 'PipeChunk');
  const chunkCount = int('chunk_count', c.chunkCount, 1, MAX_TENSOR_CHUNKS);
  const chunkIndex = int('chunk_index', c.chunkIndex, 0, chunkCount - 1);
  return {
    kind: enumOf('kind', c.kind, PIPE_KINDS),
    fromStage: int('from_stage', c.fromStage, 0, MAX_STAGES - 1),
    epoch: int('epoch', c.epoch, 0),
    step: int('step', c.step, 0),
    microBatch: int('micro_batch', c.microBatch, 0),
    hop: int('hop', c.hop, 0),
    shape: list('shape', c.shape, (d, f) => int(f, d, 1, 1 << 30), chunkIndex === 0 ? MAX_TENSOR_DIMS : 0),
    chunkIndex,
    chunkCount,
    data: c.data,
  };
}

export function decodeFetchWeights(msg: FetchWeightsRequest__Output | MalformedMessage): { stage: number; edgeCopy: boolean } {
  const r = parsed(msg, 'FetchWeightsRequest');
  return { stage: int('stage', r.stage, 0, MAX_SLOTS - 1), edgeCopy: r.edgeCopy };
}

export function decodeFetchState(msg: FetchStateRequest__Output | MalformedMessage): { slot: number; step: number } {
  const r = parsed(msg, 'FetchStateRequest');
  return { slot: int('slot', r.slot, 0, MAX_SLOTS - 1), step: int('step', r.step, 0) };
}
