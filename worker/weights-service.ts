// Worker.FetchWeights: the stage's parameters after its last completed step, in variable order
// (the coordinator digests them at the end of a run; a stage rebuilt by CheckFree averages its
// neighbours'), or the CheckFree+ copy of an edge stage's embedding or head this node keeps.

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { statusError } from '../common/proto.ts';
import { decodeOrRefuse } from '../common/wire/refusal-wire.ts';
import { decodeFetchWeights } from '../common/wire/worker-wire.ts';
import { errorMessage } from '../domain/errors.ts';
import { float32Chunk, float32ChunkCount } from '../domain/tensor-codec.ts';
import type { FetchWeightsRequest__Output } from '../proto/generated/ftrain/v1/FetchWeightsRequest.ts';
import type { TensorChunk } from '../proto/generated/ftrain/v1/TensorChunk.ts';
import { edgeParamSpecs } from './gpt-stage.ts';
import type { StageTrainer } from './stage-trainer.ts';
import { tf, valuesToReadNow } from './tfjs-backend.ts';

/** The newest copy of an edge stage's embedding or head this node keeps. */
export interface EdgeCopy {
  readonly stage: number;
  readonly step: number;
  readonly data: Float32Array;
}

type WeightsCall = grpc.ServerWritableStream<FetchWeightsRequest__Output, TensorChunk>;

/** A tensor to stream: `values` gives its values at the moment of the call (a view may not outlive an await). */
interface StreamedTensor {
  readonly name: string;
  readonly shape: number[];
  values(): Float32Array;
}

/** Streams tensors chunk by chunk with back-pressure, then ends the call. */
async function streamTensors(call: WeightsCall, tensors: Iterable<StreamedTensor>, step: number): Promise<void> {
  for (const t of tensors) {
    const count = float32ChunkCount(t.values());
    for (let c = 0; c < count; c++) {
      // Taken again for every chunk: a view of the backend's heap goes stale when the heap grows.
      const data = float32Chunk(t.values(), c);
      const ok = call.write({ name: t.name, shape: t.shape, chunkIndex: c, chunkCount: count, data, step });
      if (!ok) await once(call, 'drain');
    }
  }
  call.end();
}

/**
 * A tensor's values as streamTensors asks for them: on wasm a fresh view of the heap each time
 * (no copy); elsewhere read once (the native backend gives a copy).
 */
function valuesOf(t: tf.Tensor): () => Float32Array {
  if (tf.getBackend() === 'wasm') return () => valuesToReadNow(t);
  let values: Float32Array | null = null;
  return () => (values ??= valuesToReadNow(t));
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
      return { name: spec.name, shape: spec.shape, values: () => values };
    });
    streamTensors(call, tensors, copy.step).catch(failed);
    return;
  }
  // Asked by slot (domain/replica-slots.ts): the stage itself with one replica.
  if (request.stage !== trainer.slot) {
    call.emit('error', statusError(grpc.status.INVALID_ARGUMENT, `this node holds stage ${trainer.slot}, not stage ${request.stage}`));
    return;
  }
  // Taken once the stage holds a completed step (not during an update, which yields between
  // parameters, nor after one abandoned half-way, until it is restored), and without a copy: tfjs
  // tensors never change (an update gives a variable new data), and a clone shares its source's
  // data, so the clones keep these values while the stream sends them.
  void trainer.consistent().then(() => {
    if (trainer.disposed) {
      call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, `this node no longer holds stage ${trainer.stage}`));
      return;
    }
    const clones = trainer.model.variables.map((v) => tf.clone(v));
    const step = trainer.completedSteps;
    const tensors = clones.map((t, i) => ({ name: trainer.model.names[i]!, shape: t.shape, values: valuesOf(t) }));
    streamTensors(call, tensors, step)
      .catch(failed)
      .finally(() => {
        for (const t of clones) t.dispose();
      });
  });
}
