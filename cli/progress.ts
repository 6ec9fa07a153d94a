// Human-readable progress lines on stdout while a run trains. Each step line ends with the
// global commit step and the snapshot interval in force; a change of the interval under
// `--snapshot-every auto` gets a line of its own, with the reason.

import type { Action } from '../coordinator/core/core-events.ts';
import { slotName, type ReplicaShape } from '../domain/replica-slots.ts';
import { SNAPSHOT_EVERY_AUTO, type SnapshotEvery } from '../domain/snapshot-schedule.ts';

/** Minimum time between two progress lines. */
export const PROGRESS_INTERVAL_MS = 1000;

export class ProgressPrinter {
  private lastPrintMs = 0;
  /**
   * Where the rate is measured from: the step before the first one trained since training
   * (re)started, and when. A resume from step 15 or a rollback starts a new window: the steps
   * done before it took no time of this run's.
   */
  private origin: { step: number; atMs: number } | null = null;
  private readonly completions: { step: number; atMs: number }[] = [];
  /** The run's failure has been printed (its summary need not repeat it). */
  failurePrinted = false;
  /** The snapshot interval in force (auto: as last announced; starts at every step). */
  private every: number;
  private readonly auto: boolean;
  /** With a store: the leader cannot reach it (each step line says so until it answers). */
  private storeDown = false;

  constructor(
    private readonly totalSteps: number | null,
    private readonly tokensPerStep: number,
    private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`),
    snapshotEvery: SnapshotEvery = 0,
    /** With replicas, stages are named by slot (`stage 1@1`). */
    private readonly shape: ReplicaShape = { stages: 1, replicas: 1 },
  ) {
    this.auto = snapshotEvery === SNAPSHOT_EVERY_AUTO;
    this.every = snapshotEvery === SNAPSHOT_EVERY_AUTO ? 1 : snapshotEvery;
  }

  /** With a store: whether the leader can reach it; while it cannot, step lines end with a note. */
  storeReachable(reachable: boolean): void {
    this.storeDown = !reachable;
  }

  /** A stage slot as people read it. */
  private stage(slot: number): string {
    return this.shape.replicas > 1 ? slotName(this.shape, slot) : `stage ${slot}`;
  }

  onAction(a: Action): void {
    switch (a.type) {
      case 'stage-assigned':
        this.write(`  ${this.stage(a.stage)} -> ${a.nodeId} (pid ${a.pid}, ${a.address})`);
        break;
      case 'training-started':
        this.origin = { step: a.fromStep - 1, atMs: a.atMs };
        this.completions.length = 0;
        if (a.resumedFromCheckpoint) this.write(`resuming from the disk checkpoint of step ${a.fromStep}`);
        this.write(`training${a.toStep === null ? ' until Ctrl-C' : ` to step ${a.toStep}`}`);
        break;
      case 'step-completed':
        this.onStep(a.step, a.loss, a.atMs, a.commitStep);
        break;
      case 'recovery-started':
        this.write(`RECOVERING: ${this.stage(a.stage)} (${a.nodeId}) failed: ${a.detail}`);
        break;
      case 'recovered': {
        const f = a.failure;
        const on = f.trainedOn;
        this.write(
          on
            ? `recovered ${this.stage(f.stage)}: the other replicas trained on after ${(f.recoverMs / 1000).toFixed(2)} s` +
                `${on.host === null ? ' with their own micro-batches' : ` (replica ${on.host} trained replica ${on.replica}'s micro-batches too)`}, ${on.steps} step(s) meanwhile; ` +
                (on.joinedAtStep === null
                  ? `the run ended before replica ${on.replica} joined, ${f.lostSteps} step(s) lost`
                  : `replica ${on.replica} joined by ${f.method} of step ${on.joinedAtStep} after ${((on.rejoinMs ?? 0) / 1000).toFixed(2)} s (a pause of ${((on.joinPauseMs ?? 0) / 1000).toFixed(2)} s), ${f.lostSteps} step(s) lost`)
            : `recovered ${this.stage(f.stage)} by ${f.method} of step ${f.restoredStep} in ${(f.recoverMs / 1000).toFixed(2)} s` +
                `${f.detectMs === null ? '' : ` (detected in ${f.detectMs} ms)`}, ${f.lostSteps} step(s) lost`,
        );
        // Training goes on from the restored step: the window starts over there and now.
        this.origin = { step: (on?.joinedAtStep ?? f.restoredStep) - 1, atMs: Date.now() };
        this.completions.length = 0;
        break;
      }
      case 'snapshot-interval':
        this.every = a.every;
        this.write(`snapshots ${interval(a.every)} from step ${a.fromStep}: ${a.reason}`);
        break;
      case 'notice':
        this.write(a.level === 'info' ? a.msg : `${a.level === 'warn' ? 'WARNING' : 'ERROR'}: ${a.msg}`);
        break;
      case 'run-failed':
        this.failurePrinted = true;
        this.write(`FAILED: node ${a.failure.nodeId}${a.failure.stage === null ? '' : ` (${this.stage(a.failure.stage)})`} failed: ${a.failure.detail}`);
        break;
      default:
        break;
    }
  }

  private onStep(step: number, loss: number, atMs: number, commitStep: number): void {
    this.completions.push({ step, atMs });
    if (this.completions.length > 10) this.completions.shift();
    const last = this.totalSteps !== null && step + 1 >= this.totalSteps;
    if (!last && step > 0 && atMs - this.lastPrintMs < PROGRESS_INTERVAL_MS) return;
    this.lastPrintMs = atMs;
    // Over the last (up to 10) completions; with one only, since the window's origin.
    const first = this.completions.length > 1 ? this.completions[0]! : this.origin;
    const windowSteps = first === null ? 0 : step - first.step;
    let rate: number | null = null;
    let secPerStep: number | null = null;
    if (first !== null && windowSteps > 0) secPerStep = (atMs - first.atMs) / 1000 / windowSteps;
    if (secPerStep !== null && secPerStep > 0) rate = this.tokensPerStep / secPerStep;
    const of = this.totalSteps === null ? '' : `/${this.totalSteps}`;
    const parts = [
      `step ${step + 1}${of}`,
      `loss ${loss.toFixed(4)}`,
      rate === null ? '' : `${Math.round(rate).toLocaleString('en-US')} tok/s`,
      secPerStep === null ? '' : `${secPerStep.toFixed(2)} s/step`,
      commitStep >= 0 ? `snapshot ${commitStep}${this.every > 0 ? ` (${interval(this.every)}${this.auto ? ', auto' : ''})` : ''}` : '',
      this.storeDown ? 'STORE UNREACHABLE: training goes on, no new decision' : '',
    ].filter(Boolean);
    this.write(parts.join('  '));
  }
}

function interval(every: number): string {
  return every === 1 ? 'every step' : `every ${every} steps`;
}
