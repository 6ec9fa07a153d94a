// Micro-batch routes, and CheckFree+'s out-of-order pipelining computed for real: four stage
// trainers in one process exchange tensors through their mailboxes, and the loss and each
// stage's gradient norm of one step match the whole model computed directly with the blocks of
// the odd micro-batch in swapped order.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCorpus, microBatchFor, DEFAULT_CORPUS, type Corpus } from '../../domain/corpus.ts';
import { compileJobOptions, type JobOptions } from '../../domain/job-options.ts';
import { PipeMailbox } from '../../worker/pipe-mailbox.ts';
import { hopsOf, microBatchRoute, senderOf, swapPartner } from '../../domain/pipeline-route.ts';
import { StageTrainer, type PipeIO } from '../../worker/stage-trainer.ts';
import { tf, useBackend } from '../../worker/tfjs-backend.ts';

describe('micro-batch routes', () => {
  it('visits every stage once, in order, when the pipeline runs in order', () => {
    expect(microBatchRoute(3, 1, false)).toEqual([
      { stage: 0, ops: ['embed', 'blocks'] },
      { stage: 1, ops: ['blocks'] },
      { stage: 2, ops: ['blocks', 'head'] },
    ]);
    expect(microBatchRoute(1, 0, false)).toEqual([{ stage: 0, ops: ['embed', 'blocks', 'head'] }]);
    // Even micro-batches stay in order under CheckFree+.
    expect(microBatchRoute(6, 2, true)).toEqual(microBatchRoute(6, 2, false));
  });

  it('swaps the blocks of the first two and of the last two stages on odd micro-batches', () => {
    for (const stages of [4, 5, 6, 9]) {
      const route = microBatchRoute(stages, 3, true);
      const blockOrder = route.filter((h) => h.ops.includes('blocks')).map((h) => h.stage);
      const middle = Array.from({ length: stages - 4 }, (_, i) => i + 2);
      expect(blockOrder).toEqual([1, 0, ...middle, stages - 1, stages - 2]);
      expect(route[0]).toEqual({ stage: 0, ops: ['embed'] });
      expect(route.at(-1)).toEqual({ stage: stages - 1, ops: ['head'] });
      // Tensors only ever go to a neighbour, over the pipes a stage has.
      for (let i = 1; i < route.length; i++) expect(Math.abs(route[i]!.stage - route[i - 1]!.stage)).toBe(1);
    }
    expect(() => microBatchRoute(3, 1, true)).toThrow(/at least 4 stages/);
  });

  it('names the sender of each hop and each stage\'s swap partner', () => {
    const route = microBatchRoute(4, 1, true); // 0[e] 1[b] 0[b] 1[] 2[] 3[b] 2[b] 3[h]
    expect(hopsOf(route, 0).map((h) => h.index)).toEqual([0, 2]);
    expect(senderOf(route, 2, 'activation')).toBe(1);
    expect(senderOf(route, 2, 'gradient')).toBe(1);
    expect(senderOf(route, 0, 'activation')).toBeNull();
    expect(senderOf(route, 7, 'gradient')).toBeNull();
    expect([0, 1, 2, 3, 4, 5].map((s) => swapPartner(6, s))).toEqual([1, 0, null, null, 5, 4]);
  });
});

describe('out-of-order pipelining (CheckFree+), computed', () => {
  let job: JobOptions;
  let corpus: Corpus;
  const trainers: StageTrainer[] = [];

  beforeAll(async () => {
    await useBackend('cpu');
    job = compileJobOptions({ nodes: 4, microBatches: 2, microBatchSize: 2, seqLen: 16, dModel: 16, heads: 2, seed: 9, backend: 'cpu', recovery: 'checkfree-plus' });
    corpus = loadCorpus(DEFAULT_CORPUS);
    for (let s = 0; s < 4; s++) trainers.push(new StageTrainer(job, s, s === 0 || s === 3 ? corpus : null));
  });
  afterAll(() => {
    for (const t of trainers) t.dispose();
  });

  /** Mean loss over the micro-batches, with the blocks of each micro-batch in the given stage order. */
  function directLoss(orders: number[][]): tf.Scalar {
    const [m0, , , m3] = trainers.map((t) => t.model);
    const losses = orders.map((order, mb) => {
      const batch = microBatchFor(corpus, job.seed, 0, mb, job.microBatchSize, job.model.seqLen);
      let x = m0!.applyOps(['embed'], tf.tensor1d(batch.inputs, 'int32'), job.microBatchSize);
      for (const s of order) x = trainers[s]!.model.applyOps(['blocks'], x, job.microBatchSize);
      return m3!.loss(x, tf.tensor1d(batch.targets, 'int32'), job.microBatchSize);
    });
    return tf.div(tf.addN(losses), orders.length) as tf.Scalar;
  }

  it('gives the loss and the gradients of the model with swapped blocks on the odd micro-batch', async () => {
    const swapped = [[0, 1, 2, 3], [1, 0, 3, 2]];
    const { value, grads } = tf.variableGrads(() => directLoss(swapped));
    const wantLoss = (await value.data())[0]!;
    const inOrder = (await directLoss([[0, 1, 2, 3], [0, 1, 2, 3]]).data())[0]!;
    expect(Math.abs(wantLoss - inOrder)).toBeGreaterThan(2e-5); // the swap changes the loss by more than the tolerance below
    const wantNorms = trainers.map((t) => Math.sqrt(t.model.names.reduce((acc, n) => acc + (tf.sum(tf.square(grads[n]!)).dataSync() as Float32Array)[0]!, 0)));

    const boxes = trainers.map(() => new PipeMailbox());
    const io = (stage: number): PipeIO => ({
      recvActivation: (step, mb, hop) => boxes[stage]!.take('activation', step, mb, hop),
      recvGradient: (step, mb, hop) => boxes[stage]!.take('gradient', step, mb, hop),
      sendActivation: async (to, step, mb, hop, t) => {
        expect(Math.abs(to - stage)).toBe(1);
        boxes[to]!.put('activation', step, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) });
      },
      sendGradient: async (to, step, mb, hop, t) => {
        expect(Math.abs(to - stage)).toBe(1);
        boxes[to]!.put('gradient', step, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) });
      },
    });
    const stats = await Promise.all(trainers.map((t, s) => t.runStep(0, io(s))));
    expect(stats[3]!.loss).toBeCloseTo(wantLoss, 5);
    stats.forEach((st, s) => expect(Math.abs(st.gradNorm - wantNorms[s]!) / wantNorms[s]!).toBeLessThan(1e-4));
    expect(boxes.map((b) => b.pending)).toEqual([0, 0, 0, 0]);
  });
});
