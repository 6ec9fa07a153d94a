// What a replica trains and the ranks it plays, from its assignment (worker/replica-work.ts): all
// D ranks under keep, its guests' among them at its own address; the replicas left, ranked by
// position, under shrink; no ring with one replica. And the pipe keys of a step with guests: a
// stage takes tensors for every owner's micro-batches, keyed k * M + mb, routed as micro-batch mb.

import { describe, expect, it } from 'vitest';
import type { PipeChunk } from '../../common/wire/worker-wire.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { microBatchRoute } from '../../domain/pipeline-route.ts';
import { PipeReceiver, type PipeTarget } from '../../worker/pipe-receiver.ts';
import { replicaWorkOf } from '../../worker/replica-work.ts';
import type { StageTrainer } from '../../worker/stage-trainer.ts';

const base = { stage: 2, epoch: 7 };

describe('replicaWorkOf', () => {
  it('with every replica training its own: its own micro-batches, its rank in the ring of D', () => {
    expect(replicaWorkOf({ ...base, replica: 1, replicaAddresses: ['a', 'b', 'c'] }, 3)).toEqual({
      work: { owners: [1], replicasInBatch: 3 },
      place: { stage: 2, epoch: 7, ranks: [1], size: 3, addresses: ['a', 'b', 'c'] },
      // Replica 0 writes the disk checkpoints.
      writesCheckpoints: false,
    });
    expect(replicaWorkOf({ ...base, replica: 0, replicaAddresses: ['a', 'b', 'c'] }, 3).writesCheckpoints).toBe(true);
  });

  it('keep: the guests\' micro-batches after its own, their ranks in the ring of D at its address', () => {
    expect(replicaWorkOf({ ...base, replica: 2, guestReplicas: [0, 1], replicaAddresses: ['c', 'c', 'c', 'd'] }, 4)).toEqual({
      work: { owners: [2, 0, 1], replicasInBatch: 4 },
      place: { stage: 2, epoch: 7, ranks: [2, 0, 1], size: 4, addresses: ['c', 'c', 'c', 'd'] },
      // Replica 0 is out: its host writes them.
      writesCheckpoints: true,
    });
  });

  it('shrink: the ring of the replicas left, ranked by position, and a batch of theirs only', () => {
    expect(replicaWorkOf({ ...base, replica: 2, outReplicas: [1], replicaAddresses: ['a', '', 'c'] }, 3)).toEqual({
      work: { owners: [2], replicasInBatch: 2 },
      place: { stage: 2, epoch: 7, ranks: [1], size: 2, addresses: ['a', 'c'] },
      writesCheckpoints: false,
    });
    expect(replicaWorkOf({ ...base, replica: 1, outReplicas: [0], replicaAddresses: ['', 'b'] }, 2)).toEqual({
      work: { owners: [1], replicasInBatch: 1 },
      place: { stage: 2, epoch: 7, ranks: [0], size: 1, addresses: ['b'] },
      // Replica 0 is out: the lowest replica left writes them.
      writesCheckpoints: true,
    });
  });

  it('no ring with one replica', () => {
    expect(replicaWorkOf({ ...base, replica: 0, replicaAddresses: [] }, 1)).toEqual({ work: { owners: [0], replicasInBatch: 1 }, place: null, writesCheckpoints: true });
  });

  it('refuses a guest that is out', () => {
    expect(() => replicaWorkOf({ ...base, replica: 0, guestReplicas: [1], outReplicas: [1], replicaAddresses: ['a', '', 'c'] }, 3)).toThrow(/cannot train replicas \[0, 1\] with replicas \[1\] out/);
  });
});

describe('pipe keys with guests', () => {
  const job = compileJobOptions({ nodes: 2, replicas: 2, microBatches: 3, microBatchSize: 2, seqLen: 16, dModel: 16, heads: 2, seed: 1, backend: 'cpu' });
  const trainer = {
    routes: Array.from({ length: 3 }, (_, mb) => microBatchRoute(2, mb, false)),
    completedSteps: 0,
    model: { activationShape: (rows: number) => [rows, 16, 16] },
  } as unknown as StageTrainer;
  const target = (owners: number[]): PipeTarget => ({ stage: 1, epoch: 3, job, trainer, work: { owners, replicasInBatch: 2 }, edgeCopySource: null, edgeCopySize: 0 });
  const chunk = (microBatch: number): PipeChunk => ({ kind: 'activation', fromStage: 0, epoch: 3, step: 0, microBatch, hop: 1, shape: [2, 16, 16], chunkIndex: 0, chunkCount: 1, data: Buffer.alloc(2 * 16 * 16 * 4) });

  it('takes the keys of every owner\'s micro-batches, and no more', () => {
    expect(new PipeReceiver().add(chunk(5), target([0, 1]))).toMatchObject({ kind: 'activation', microBatch: 5, hop: 1 });
    expect(() => new PipeReceiver().add(chunk(6), target([0, 1]))).toThrow(/micro_batch: must be an integer from 0 to 5, got 6/);
    expect(() => new PipeReceiver().add(chunk(3), target([0]))).toThrow(/from 0 to 2, got 3/);
  });
});
