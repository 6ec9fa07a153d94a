// A stage's optimizer update yields between parameters so that a Halt is heard at once, and may
// be abandoned half-way; the stage is then torn until a snapshot is loaded into it. Checked on two
// real stages exchanging tensors in memory, on the cpu backend.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CORPUS, loadCorpus, type Corpus } from '../../domain/corpus.ts';
import { compileJobOptions, type JobOptions } from '../../domain/job-options.ts';
import { PipeMailbox } from '../../worker/pipe-mailbox.ts';
import { exportStageState, importStageState } from '../../worker/stage-state.ts';
import { StageTrainer, type PipeIO, type StepHooks } from '../../worker/stage-trainer.ts';
import { useBackend } from '../../worker/tfjs-backend.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../common/logging.ts';
import { memoryStep } from '../../worker/halt-points.ts';
import { StageSnapshots } from '../../worker/stage-snapshots.ts';
import type { WorkerFaults } from '../../worker/fault-port.ts';

function digest(t: StageTrainer): Buffer {
  return Buffer.from(exportStageState(t, 0).buffer);
}

describe('an optimizer update that yields', () => {
  let job: JobOptions;
  let corpus: Corpus;
  const made: StageTrainer[] = [];

  beforeAll(async () => {
    await useBackend('cpu');
    job = compileJobOptions({ nodes: 2, microBatches: 2, microBatchSize: 2, seqLen: 16, dModel: 16, heads: 2, seed: 5, backend: 'cpu' });
    corpus = loadCorpus(DEFAULT_CORPUS);
  });
  afterAll(() => {
    for (const t of made) if (!t.disposed) t.dispose();
  });

  function pipeline(): StageTrainer[] {
    const pair = [new StageTrainer(job, 0, corpus), new StageTrainer(job, 1, corpus)];
    made.push(...pair);
    return pair;
  }

  /** One step of both stages, stage 1 with `hooks`. */
  async function step(pair: StageTrainer[], n: number, hooks: StepHooks): Promise<PromiseSettledResult<unknown>[]> {
    const boxes = [new PipeMailbox(), new PipeMailbox()];
    const io = (stage: number): PipeIO => ({
      recvActivation: (s, mb, hop) => boxes[stage]!.take('activation', s, mb, hop),
      recvGradient: (s, mb, hop) => boxes[stage]!.take('gradient', s, mb, hop),
      sendActivation: async (to, s, mb, hop, t) => boxes[to]!.put('activation', s, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) }),
      sendGradient: async (to, s, mb, hop, t) => boxes[to]!.put('gradient', s, mb, hop, { shape: t.shape, data: Float32Array.from(t.data) }),
    });
    return Promise.allSettled([pair[0]!.runStep(n, io(0)), pair[1]!.runStep(n, io(1), hooks)]);
  }

  it('gives the bytes of the synchronous update, and a stage abandoned half-way is torn until a snapshot is loaded', async () => {
    // Two stages of one model cannot live at once (tfjs names the variables): one run, then the other.
    const plain = pipeline();
    for (const n of [0, 1]) await step(plain, n, {});
    const want = digest(plain[1]!);
    for (const t of plain) t.dispose();
    const yielding = pipeline();
    let yields = 0;
    const counting: StepHooks = {
      yieldInUpdate: async () => {
        yields += 1;
      },
    };
    for (const n of [0, 1]) await step(yielding, n, counting);
    expect(yields).toBeGreaterThan(2 * 2); // between the phases and between the parameters
    expect(digest(yielding[1]!).equals(want)).toBe(true);
    await expect(yielding[1]!.consistent()).resolves.toBeUndefined();

    // Step 2 is abandoned at the third yield (inside Adam): stage 1 is torn at 2 completed steps.
    const snapshot = exportStageState(yielding[1]!, 0);
    let calls = 0;
    const [, abandoned] = await step(yielding, 2, {
      yieldInUpdate: async () => {
        calls += 1;
        if (calls === 3) throw new Error('halted');
      },
    });
    expect(abandoned).toMatchObject({ status: 'rejected', reason: new Error('halted') });
    const t = yielding[1]!;
    expect(t.torn).toBe(true);
    expect(t.completedSteps).toBe(2);
    expect(digest(t).equals(Buffer.from(snapshot.buffer))).toBe(false);
    const read = t.consistent().then(() => 'consistent');
    expect(await Promise.race([read, new Promise((r) => setTimeout(() => r('waiting'), 50))])).toBe('waiting');

    importStageState(t, snapshot.header, new Uint8Array(snapshot.buffer));
    expect(t.torn).toBe(false);
    expect(await read).toBe('consistent');
    expect(digest(t).equals(Buffer.from(snapshot.buffer))).toBe(true);
  });

  it('a halted stage says the step its tensors hold, and keeps them when told to restore it without a snapshot; a torn one holds none', async () => {
    for (const x of made) if (!x.disposed) x.dispose();
    const pair = pipeline();
    for (const n of [0, 1]) await step(pair, n, {});
    const t = pair[1]!;
    const before = digest(t);
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-memory-step-'));
    try {
      const snapshots = new StageSnapshots(dir, 2, {} as WorkerFaults, createLogger({ name: 'test', level: 'silent' }));
      expect(memoryStep({ slot: 1, trainer: t }, 1)).toBe(2);
      expect(memoryStep({ slot: 1, trainer: t }, 3)).toBe(-1);
      expect(memoryStep(null, 1)).toBe(-1);
      // No snapshot of step 2 is committed: the tensors are kept, nothing read.
      expect(snapshots.restoreNow(t, 2)).toBe(false);
      expect(digest(t).equals(before)).toBe(true);
      // Another step needs its snapshot.
      expect(() => snapshots.restoreNow(t, 1)).toThrow(/no committed snapshot of step 1/);
      t.torn = true;
      expect(memoryStep({ slot: 1, trainer: t }, 1)).toBe(-1);
      await expect(snapshots.restore(t, 2)).rejects.toThrow(/no committed snapshot of step 2/);
    } finally {
      for (const x of pair) x.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
