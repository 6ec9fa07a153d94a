// Worker.FetchWeights: the stage's parameters after its last completed step, in variable order
// (the coordinator digests them at the end of a run; a stage rebuilt by CheckFree averages its
// neighbours'), or the CheckFree+ copy of an edge stage's embedding or head this node keeps.

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { statusError } from '../common/proto.ts';
import { decodeOrRefuse } from '../common/wire/refusal-wire.ts';
import { decodeFetchWeights } from '../common/wire/worker-wire.ts';
import { errorMessage } from '../domain/errors.ts';
import { chunkFloat32 } from '../domain/tensor-codec.ts';
import type { FetchWeightsRequest__Output } from '../proto/generated/ftrain/v1/FetchWeightsRequest.ts';
import type { TensorChunk } from '../proto/generated/ftrain/v1/TensorChunk.ts';
import { edgeParamSpecs } from './gpt-stage.ts';
import type { StageTrainer } from './stage-trainer.ts';

/** The newest copy of an edge stage's embedding or head this node keeps. */
export interface EdgeCopy {
  readonly stage: number;
  readonly step: number;
  readonly data: Float32Array;
}

type WeightsCall = grpc.ServerWritableStream<FetchWeightsRequest__Output, TensorChunk>;

/** Streams tensors with back-pressure, then ends the call. */
async function streamTensors(call: WeightsCall, tensors: Iterable<{ name: string; shape: number[]; values: Float32Array }>, step: number): Promise<void> {
  for (const t of tensors) {
    const chunks = chunkFloat32(t.values);
    for (let c = 0; c < chunks.length; c++) {
      const ok = call.write({ name: t.name, shape: t.shape, chunkIndex: c, chunkCount: chunks.length, data: chunks[c], step });
      if (!ok) await once(call, 'drain');
    }
  }
  call.end();
}

/** Serves one FetchWeights call from the stage this node holds now (null: none yet). */
export function serveWeights(call: WeightsCall, held: { trainer: StageTrainer; edgeCopy: EdgeCopy | null } | null): void {
  const request = decodeOrRefuse(() => decodeFetchWeights(call.request), (status) => call.emit('error', status));
  if (!request) return;
  if (!held) {
    call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, 'this node has no stage yet'));
    return;
  }
  const { trainer, edgeCopy } = held;
  const failed = (err: unknown) => call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err)));
  if (request.edgeCopy) {
    const copy = edgeCopy;
    if (!copy || copy.stage !== request.stage) {
      call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, `this node (stage ${trainer.stage}) holds no copy of stage ${request.stage}'s ${request.stage === 0 ? 'embedding' : 'head'}`));
      return;
    }
    const specs = edgeParamSpecs({ stage: copy.stage, numStages: trainer.job.stages }, trainer.job.model, copy.stage === 0 ? 'embed' : 'head');
    let at = 0;
    const tensors = specs.map((spec) => {
      const size = spec.shape.reduce((x, y) => x * y, 1);
      const values = copy.data.subarray(at, at + size);
      at += size;
      return { name: spec.name, shape: spec.shape, values };
    });
    streamTensors(call, tensors, copy.step).catch(failed);
    return;
  }
  if (request.stage !== trainer.stage) {
    call.emit('error', statusError(grpc.status.INVALID_ARGUMENT, `this node holds stage ${trainer.stage}, not stage ${request.stage}`));
    return;
  }
  // Read now, between updates (RPC handlers run only at await points of the training loop).
  const weights = trainer.model.readWeights();
  const step = trainer.completedSteps;
  const tensors = weights.map((values, i) => ({ name: trainer.model.names[i]!, shape: trainer.model.variables[i]!.shape, values }));
  streamTensors(call, tensors, step).catch(failed);
}
