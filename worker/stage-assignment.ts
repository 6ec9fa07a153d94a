// An assignment's work and where its time goes: building the stage, and the trace of phases sent
// with the ready report (the coordinator builds each recovery's phases from them).

import { checkCorpusFits, loadCorpus, type Corpus } from '../domain/corpus.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { RestoreTrace } from '../domain/node-reports.ts';
import { stageOfSlot } from '../domain/replica-slots.ts';
import { StageTrainer } from './stage-trainer.ts';
import { useBackend } from './tfjs-backend.ts';

/** Laps of one assignment: `lap()` gives the milliseconds since the previous lap (or the start). */
export class RestoreClock {
  readonly trace: { -readonly [K in keyof RestoreTrace]: RestoreTrace[K] } = {
    buildMs: 0,
    rebuildFetchMs: 0,
    rebuildDecodeMs: 0,
    rebuildMs: 0,
    restoreMs: 0,
    prepareMs: 0,
    connectMs: 0,
    bytes: 0,
  };
  private at = performance.now();

  lap(): number {
    const now = performance.now();
    const ms = now - this.at;
    this.at = now;
    return ms;
  }
}

/**
 * Makes a stage for an assignment: the backend, the training text where the stage needs it
 * (checked against the coordinator's), and the model with its optimizer. `weights` 'zeros': the
 * stage is restored from a snapshot at once, so its initial values are not made.
 */
export async function buildStage(job: JobOptions, slot: number, dataSha256: string | null, weights: 'initial' | 'zeros'): Promise<StageTrainer> {
  await useBackend(job.backend);
  const stage = stageOfSlot(job, slot);
  let corpus: Corpus | null = null;
  if (stage === 0 || stage === job.stages - 1) {
    corpus = loadCorpus(job.data);
    checkCorpusFits(corpus, job.model.seqLen);
    if (dataSha256 && corpus.sha256 !== dataSha256) {
      throw new Error(`training text ${job.data} on this node differs from the coordinator's (sha256 ${corpus.sha256.slice(0, 12)} vs ${dataSha256.slice(0, 12)}); give every node the same file`);
    }
  }
  return new StageTrainer(job, slot, corpus, weights);
}
