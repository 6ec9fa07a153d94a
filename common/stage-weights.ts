// Reads a stage's parameters from the node that holds it, over Worker.FetchWeights: the
// coordinator digests them at the end of a run; a node rebuilding a stage by CheckFree averages
// its neighbours'.

import * as grpc from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from './proto.ts';
import { joinFloat32 } from '../domain/tensor-codec.ts';
import type { TensorChunk__Output } from '../proto/generated/ftrain/v1/TensorChunk.ts';
import { channelCredentials } from './transport.ts';

/** Deadline for reading one stage's weights. */
export const FETCH_WEIGHTS_DEADLINE_MS = 60_000;

export interface NamedWeights {
  readonly name: string;
  readonly shape: number[];
  readonly values: Float32Array;
}

/**
 * Reads one stage's parameters from the node at `address` over Worker.FetchWeights; with
 * `edgeCopy`, the copy of stage `stage`'s embedding or head that node keeps (CheckFree+).
 */
export function fetchStageWeights(address: string, stage: number, edgeCopy = false): Promise<NamedWeights[]> {
  const proto = loadProto();
  const client = new proto.ftrain.v1.Worker(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
  return new Promise<NamedWeights[]>((resolve, reject) => {
    const out: NamedWeights[] = [];
    let current: { name: string; shape: number[]; chunks: Buffer[]; count: number } | null = null;
    const call = client.FetchWeights({ stage, edgeCopy }, { deadline: deadline(FETCH_WEIGHTS_DEADLINE_MS) });
    call.on('data', (c: TensorChunk__Output) => {
      if (c.chunkIndex === 0) current = { name: c.name, shape: c.shape, chunks: [], count: c.chunkCount };
      if (!current || current.name !== c.name) {
        call.cancel();
        reject(new Error(`weights stream from ${address} is out of order at ${c.name}`));
        return;
      }
      current.chunks.push(c.data);
      if (current.chunks.length === current.count) {
        out.push({ name: current.name, shape: current.shape, values: joinFloat32(current.chunks, current.shape) });
        current = null;
      }
    });
    call.on('error', (err) => reject(err));
    call.on('end', () => resolve(out));
  }).finally(() => client.close());
}
