// A replica that trains a lost replica's micro-batches as well as its own (`--on-replica-loss
// keep`) computes, for each, the very partial sum the lost replica would have: same weights, same
// inputs, same order. Its parts reduced in ring order give the weights of the run in which every
// replica trains its own, bit for bit. Checked on real two-stage pipelines on the cpu backend,
// exchanging tensors through mailboxes, the all-reduce being ringSumReference.
//
// Two trainers of one stage cannot live at once in one process (tfjs names the variables), so
// the replicas of a step run one after the other from the same state: first each runs its step up
// to the all-reduce and hands over its parts (the step is abandoned there, which changes
// nothing), then each runs it again and is given the sum of every replica's parts.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CORPUS, loadCorpus, type Corpus } from '../../domain/corpus.ts';
import { compileJobOptions, type JobOptions } from '../../domain/job-options.ts';
import { slotOf } from '../../domain/replica-slots.ts';
import type { SnapshotHeader } from '../../domain/snapshot-slots.ts';
import { PipeMailbox } from '../../worker/pipe-mailbox.ts';
import { ringSumReference } from '../../worker/ring-all-reduce.ts';
import { exportStageState, importStageState } from '../../worker/stage-state.ts';
import { StageTrainer, type PipeIO, type StepStats, type StepWork } from '../../worker/stage-trainer.ts';
import { useBackend } from '../../worker/tfjs-backend.ts';

/** One stage's whole state (weights, Adam moments and step), as exportStageState gives it. */
interface StageState {
  readonly header: SnapshotHeader;
  readonly bytes: Buffer;
}

/** A worker of each stage of one replica, training the micro-batches of `owners` (its own first). */
interface Party {
  readonly replica: number;
  readonly owners: readonly number[];
}

class Abandoned extends Error {}

const STAGES = 2;
const STEPS = 2;

describe('a replica training a guest replica\'s micro-batches', () => {
  let corpus: Corpus;
  const alive: StageTrainer[] = [];

  beforeAll(async () => {
    await useBackend('cpu');
    corpus = loadCorpus(DEFAULT_CORPUS);
  });
  afterAll(() => {
    for (const t of alive.splice(0)) if (!t.disposed) t.dispose();
  });

  const jobOf = (replicas: number): JobOptions =>
    compileJobOptions({ nodes: STAGES, replicas, microBatches: 2, microBatchSize: 2, seqLen: 16, dModel: 16, heads: 2, seed: 11, backend: 'cpu' });

  /** Replica `replica`'s pipeline, holding `states` (null: the initial weights). */
  function pipeline(job: JobOptions, replica: number, states: readonly StageState[] | null): StageTrainer[] {
    return Array.from({ length: STAGES }, (_, s) => {
      const t = new StageTrainer(job, slotOf(job, replica, s), s === 0 || s === STAGES - 1 ? corpus : null, states ? 'zeros' : 'initial');
      alive.push(t);
      if (states) importStageState(t, { ...states[s]!.header, stage: t.slot }, states[s]!.bytes);
      return t;
    });
  }

  function dispose(trainers: readonly StageTrainer[]): void {
    for (const t of trainers) t.dispose();
  }

  /**
   * One step of a party's pipeline; each stage's all-reduce hook gets its parts (in owner order)
   * and gives the sum, or abandons the step (null).
   */
  async function step(trainers: readonly StageTrainer[], n: number, work: StepWork, allReduce: (stage: number, parts: readonly Float32Array[]) => Float32Array | null): Promise<PromiseSettledResult<StepStats>[]> {
    const boxes = trainers.map(() => new PipeMailbox());
    const io = (stage: number): PipeIO => ({
      recvActivation: (s, mb, hop) => boxes[stage]!.take('activation', s, mb, hop),
      recvGradient: (s, mb, hop) => boxes[stage]!.take('gradient', s, mb, hop),
      sendActivation: async (to, s, mb, hop, t) => boxes[to]!.put('activation', s, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) }),
      sendGradient: async (to, s, mb, hop, t) => boxes[to]!.put('gradient', s, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) }),
    });
    const settled = await Promise.allSettled(
      trainers.map((t, s) =>
        t.runStep(
          n,
          io(s),
          {
            allReduce: async (_st, parts) => {
              const sum = allReduce(s, parts);
              if (!sum) throw new Abandoned();
              return sum;
            },
          },
          work,
        ),
      ),
    );
    // Every tensor sent was taken: the stages agreed on the keys of the work list.
    expect(boxes.map((b) => b.pending)).toEqual(trainers.map(() => 0));
    return settled;
  }

  /**
   * Trains `STEPS` steps of a job of `replicas` replicas with `parties` (which together train
   * every replica's micro-batches); returns each party's states after the last step and the last
   * step's stats.
   */
  async function train(replicas: number, parties: readonly Party[]): Promise<{ states: StageState[][]; stats: StepStats[][] }> {
    const job = jobOf(replicas);
    const initial = pipeline(job, 0, null);
    let states: StageState[] = initial.map((t) => exportOf(t));
    dispose(initial);
    let finals: StageState[][] = [];
    let stats: StepStats[][] = [];
    for (let n = 0; n < STEPS; n++) {
      // Every replica's partial sums, by stage and replica.
      const partials: Float32Array[][] = Array.from({ length: STAGES }, () => []);
      for (const p of parties) {
        const trainers = pipeline(job, p.replica, states);
        const settled = await step(trainers, n, { owners: p.owners, replicasInBatch: replicas }, (stage, parts) => {
          parts.forEach((part, k) => (partials[stage]![p.owners[k]!] = Float32Array.from(part)));
          return null;
        });
        for (const r of settled) expect(r).toMatchObject({ status: 'rejected', reason: expect.any(Abandoned) });
        dispose(trainers);
      }
      finals = [];
      stats = [];
      for (const p of parties) {
        const trainers = pipeline(job, p.replica, states);
        const settled = await step(trainers, n, { owners: p.owners, replicasInBatch: replicas }, (stage) => {
          const all = Array.from({ length: replicas }, (_, r) => partials[stage]![r]!);
          expect(all.every((part) => part instanceof Float32Array)).toBe(true);
          return ringSumReference(all);
        });
        stats.push(
          settled.map((r) => {
            if (r.status === 'rejected') throw r.reason;
            return r.value;
          }),
        );
        finals.push(trainers.map((t) => exportOf(t)));
        dispose(trainers);
      }
      states = finals[0]!;
    }
    return { states: finals, stats };
  }

  function exportOf(t: StageTrainer): StageState {
    const { header, buffer } = exportStageState(t, 0);
    return { header, bytes: Buffer.from(buffer) };
  }

  /** Every party ends with the same state, bit for bit, and it is `want`'s. */
  function expectStates(got: readonly StageState[][], want: readonly StageState[]): void {
    for (const party of got) {
      party.forEach((s, stage) => {
        expect(s.header.step).toBe(STEPS);
        expect(s.header.scalars.adamT).toBe(want[stage]!.header.scalars.adamT);
        expect(s.bytes.equals(want[stage]!.bytes), `stage ${stage}`).toBe(true);
      });
    }
  }

  it.each([
    { name: 'replica 0 training replica 1 too', replicas: 2, parties: [{ replica: 0, owners: [0, 1] }] },
    { name: 'replica 1 training replica 0 too', replicas: 2, parties: [{ replica: 1, owners: [1, 0] }] },
    { name: 'replica 0 on its own, replica 2 training replica 1 too', replicas: 3, parties: [{ replica: 0, owners: [0] }, { replica: 2, owners: [2, 1] }] },
    { name: 'replica 1 training replica 0 too, replica 2 on its own', replicas: 3, parties: [{ replica: 1, owners: [1, 0] }, { replica: 2, owners: [2] }] },
  ])('of $replicas replicas, $name: the weights of every replica training its own, bit for bit', async ({ replicas, parties }) => {
    const own = Array.from({ length: replicas }, (_, r) => ({ replica: r, owners: [r] }));
    const reference = await train(replicas, own);
    // Every replica training its own ends identical, as the ring promises.
    expectStates(reference.states, reference.states[0]!);
    const guests = await train(replicas, parties);
    expectStates(guests.states, reference.states[0]!);

    const job = jobOf(replicas);
    const host = parties.findIndex((p) => p.owners.length > 1);
    const hostStats = guests.stats[host]!;
    const tokensPerOwner = job.microBatches * job.microBatchSize * job.model.seqLen;
    for (const s of hostStats) expect(s.tokens).toBe(2 * tokensPerOwner);
    // The loss is the mean over the host's work: its own micro-batches' and its guest's.
    const lossOf = (replica: number) => reference.stats[replica]![STAGES - 1]!.loss!;
    const [a, b] = parties[host]!.owners;
    expect(hostStats[STAGES - 1]!.loss).toBeCloseTo((lossOf(a!) + lossOf(b!)) / 2, 5);
  });

  it('refuses work that does not start with its own replica, or names replicas twice', async () => {
    const job = jobOf(2);
    const trainers = pipeline(job, 1, null);
    const t = trainers[0]!;
    const io = {} as PipeIO;
    await expect(t.runStep(0, io, {}, { owners: [0, 1], replicasInBatch: 2 })).rejects.toThrow(/replica 1 of 2 cannot train the micro-batches of replicas \[0, 1\]/);
    await expect(t.runStep(0, io, {}, { owners: [1, 1], replicasInBatch: 2 })).rejects.toThrow(/cannot train/);
    await expect(t.runStep(0, io, {}, { owners: [1, 0], replicasInBatch: 1 })).rejects.toThrow(/batch of 1 replica\(s\) cannot hold the 2/);
    dispose(trainers);
  });
});
