// What a run did, step by step, built from the coordinator core's actions alone (its ledger): the
// loss of every step, when each was first completed, the timeline of completions (recomputed
// steps too), every snapshot commit and snapshot interval change, each stage's timing and the
// erasure encode times. The run report is this plus the core's status at the end.

import type { Action, SnapshotCommit } from '../coordinator/core/core-events.ts';

/** Samples kept for percentiles. */
export const MAX_SAMPLES = 10_000;
/** Step completions and snapshot commits kept for the report's timeline. */
export const MAX_TIMELINE = 100_000;

export interface StageTimingSums {
  /** Steps after the first (warm-up excluded) and their summed times. */
  steps: number;
  computeMs: number;
  waitMs: number;
  stepMs: number;
  allReduceMs: number;
  /** Gradient norm of the stage's last step report; null before any. */
  lastGradNorm: number | null;
}

export class RunLedger {
  /** The step training started from: 0, or the disk checkpoint it resumed. */
  firstStep = 0;
  /** When training first started (the coordinator's clock); null before. */
  trainingStartedAtMs: number | null = null;
  /** Loss of each completed step (a step computed again after a rollback has its newest loss). */
  readonly losses: number[] = [];
  /** Micro-batches trained in each step (every replica's), by step. */
  readonly microBatches: number[] = [];
  /** When each step was first completed (a step computed again after a rollback keeps its first time). */
  readonly stepDoneAtMs: number[] = [];
  /** Every step completion in order, recomputed steps included: loss against wall-clock time. */
  readonly timeline: { atMs: number; step: number; loss: number | null }[] = [];
  /** Every snapshot commit in order (up to MAX_TIMELINE). */
  readonly snapshotLog: SnapshotCommit[] = [];
  readonly snapshots = { count: 0, bytesPerStage: [] as number[], stallMs: [] as number[], copyMs: [] as number[] };
  readonly stageTiming: StageTimingSums[];
  /** Erasure encode times (ms) the stages' snapshot managers reported. */
  readonly encodeMs: number[] = [];
  /** `--snapshot-every auto`: every change of the interval, in order (up to MAX_TIMELINE). */
  readonly intervalChanges: Omit<Extract<Action, { type: 'snapshot-interval' }>, 'type'>[] = [];

  constructor(stages: number) {
    this.stageTiming = Array.from({ length: stages }, () => ({ steps: 0, computeMs: 0, waitMs: 0, stepMs: 0, allReduceMs: 0, lastGradNorm: null }));
    this.snapshots.bytesPerStage = Array.from({ length: stages }, () => 0);
  }

  /**
   * A leader that took over the run at `step` (completed steps) saw none of the steps before:
   * its figures count from here, as for a run resumed from a checkpoint.
   */
  tookOver(step: number, atMs: number): void {
    this.firstStep = step;
    this.trainingStartedAtMs = atMs;
  }

  onAction(a: Action): void {
    switch (a.type) {
      case 'training-started':
        if (this.trainingStartedAtMs !== null) break;
        this.trainingStartedAtMs = a.atMs;
        this.firstStep = a.fromStep;
        break;
      case 'step-reported': {
        const t = this.stageTiming[a.stage];
        if (!t) break;
        t.lastGradNorm = a.gradNorm;
        if (a.step > 0) {
          t.steps += 1;
          t.computeMs += a.computeMs;
          t.waitMs += a.waitMs;
          t.stepMs += a.stepMs;
          t.allReduceMs += a.allReduceMs;
        }
        break;
      }
      case 'step-completed':
        this.losses[a.step] = a.loss;
        this.microBatches[a.step] = a.microBatches;
        this.stepDoneAtMs[a.step] ??= a.atMs;
        if (this.timeline.length < MAX_TIMELINE) this.timeline.push({ atMs: a.atMs, step: a.step, loss: a.loss ?? null });
        break;
      case 'snapshot-committed': {
        const c = a.snapshot;
        this.snapshots.count += 1;
        this.snapshots.bytesPerStage[c.stage] = c.bytes;
        if (this.snapshots.stallMs.length < MAX_SAMPLES) {
          this.snapshots.stallMs.push(c.stallMs);
          this.snapshots.copyMs.push(c.copyMs);
        }
        if (this.snapshotLog.length < MAX_TIMELINE) this.snapshotLog.push(c);
        break;
      }
      case 'snapshot-interval': {
        const { type: _type, ...change } = a;
        if (this.intervalChanges.length < MAX_TIMELINE) this.intervalChanges.push(change);
        break;
      }
      case 'encode-reported':
        if (this.encodeMs.length < MAX_SAMPLES) this.encodeMs.push(a.encodeMs);
        break;
      default:
        break;
    }
  }
}
