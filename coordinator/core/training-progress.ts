// Training under way: stages become ready and start together, report each step they finish
// (with the snapshot they last committed and its erasure protection), and the run completes at
// its step limit. A step report that does not fit (wrong step, no training, another epoch) is
// refused with the reason the node acts on.

import type { ProtectionStatus } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import type { RestoreTrace, StepReport } from '../../domain/node-reports.ts';
import { RefusalReason, type Refusal } from '../../domain/refusal.ts';
import { NodeState, RunPhase, type Failure } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { FailureLog } from './failure-log.ts';
import type { Membership } from './membership.ts';
import type { Recovery } from './recovery.ts';
import type { ShardPlacement } from './shard-placement.ts';
import type { SnapshotIntervals } from './snapshot-interval.ts';
import { replicaOfSlot, slotName, stageOfSlot } from '../../domain/replica-slots.ts';
import { EveryCursor } from './every-cursor.ts';
import { ReplicaCheck } from './replica-check.ts';

/** What training progress needs from the rest of the core. */
export interface ProgressContext {
  readonly phase: RunPhase;
  setPhase(to: RunPhase): void;
  readonly epoch: number;
  failRun(failure: Failure, out: Action[]): void;
  /** Steps were completed or protection moved on: departures may go now. */
  afterSteps(now: number, out: Action[]): void;
  /**
   * The snapshot interval holds still: a stage's node is leaving (until its stage has moved), or
   * the leader cannot reach its store (a change is a decision the store must hold first).
   */
  readonly intervalHeld: boolean;
  /**
   * A replica's weights differ from its stage's other replicas: a failure of its node, whose
   * snapshots of states after `trustUpTo` steps (the newest its replicas agreed on) are not used.
   */
  replicaDiverged(slot: number, trustUpTo: number, detail: string, now: number, out: Action[]): void;
}

export class TrainingProgress {
  /** Exclusive step limit, or null to run until stopped. */
  toStep: number | null;
  /** The replicas' weight digests, compared every `--check-every` steps. */
  private readonly checks: ReplicaCheck;
  /** Slots whose first report since a takeover has not come yet. */
  private readonly catchingUp = new Set<number>();
  /** Where the last search for a slot whose node is not ready stopped. */
  private readonly allReady = new EveryCursor();

  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly failures: FailureLog,
    private readonly recovery: Recovery,
    private readonly shards: ShardPlacement,
    private readonly intervals: SnapshotIntervals,
    private readonly ctx: ProgressContext,
  ) {
    this.toStep = job.steps;
    this.checks = new ReplicaCheck(job);
  }

  /** A node applied its assignment; once every stage is ready, all start (again). */
  /** A new leader took over: each slot's first report may catch it up (see step). */
  takeOver(slots: number): void {
    for (let s = 0; s < slots; s++) this.catchingUp.add(s);
  }

  /** The step to stop at and the replicas' check, as the coordinator's store keeps them. */
  durable(): { toStep: number | null; checks: ReturnType<ReplicaCheck['durable']> } {
    return { toStep: this.toStep, checks: this.checks.durable() };
  }

  restore(d: { readonly toStep: number | null; readonly checks: Parameters<ReplicaCheck['restore']>[0] }): void {
    this.toStep = d.toStep;
    this.checks.restore(d.checks);
  }

  ready(nodeId: string, stage: number, epoch: number, checkpointSteps: readonly number[], now: number, out: Action[], trace?: RestoreTrace): Refusal | null {
    if (epoch !== this.ctx.epoch) {
      return { reason: RefusalReason.staleEpoch, message: `ready for epoch ${epoch}, but the run is in epoch ${this.ctx.epoch}`, runEpoch: this.ctx.epoch, givenEpoch: epoch };
    }
    const node = this.members.get(nodeId)!;
    if (node.state !== NodeState.assigned) return { reason: RefusalReason.wrongState, message: `node ${nodeId} is ${node.state}, not waiting to become ready` };
    this.members.move(node, NodeState.ready);
    this.commits.setCheckpointSteps(stage, checkpointSteps);
    this.recovery.stageReady(stage, trace);
    if (this.ctx.phase !== RunPhase.starting) return null;
    // Every slot, but those of a replica that is out while the others train on.
    const active = this.commits.activeSlots();
    const nodeOf = (s: number) => this.members.get(this.commits.stage(s).nodeId ?? '');
    if (!this.allReady.every(active.length, (i) => nodeOf(active[i]!)?.state === NodeState.ready)) return null;
    const placed = active.map(nodeOf);
    const toStep = this.toStep ?? 0;
    let restoreCheckpointStep = -1;
    let fromScratch = false;
    if (this.ctx.epoch === 0 && this.commits.completedSteps === 0 && this.job.checkpointDir) {
      const resume = this.commits.resumeStep();
      if (resume !== null) {
        if (this.toStep !== null && resume >= this.toStep) {
          this.ctx.failRun({ nodeId, stage, detail: `the disk checkpoints already reach step ${resume}, at or past --steps ${this.toStep}: nothing to train`, detectedAtMs: now }, out);
          return null;
        }
        restoreCheckpointStep = resume;
        this.commits.resumeAt(resume);
        out.push({ type: 'log', level: 'info', msg: `resuming from the disk checkpoint of step ${resume}` });
      }
    }
    if (this.recovery.toDisk) {
      const resume = this.commits.resumeStep();
      // No checkpoint yet: the rollback goes all the way to the start.
      fromScratch = resume === null;
      restoreCheckpointStep = resume ?? -1;
      this.recovery.rollBackToDisk(resume, out);
    }
    const fromStep = this.commits.completedSteps;
    this.intervals.start(fromStep, now, out);
    for (const n of placed) {
      this.members.move(n!, NodeState.training);
      out.push({ type: 'send', nodeId: n!.nodeId, command: { kind: 'start', fromStep, toStep, restoreCheckpointStep, ...(fromScratch ? { fromScratch } : {}) } });
    }
    this.ctx.setPhase(RunPhase.training);
    if (this.recovery.active) this.recovery.complete(fromStep, now, out);
    else out.push({ type: 'training-started', fromStep, toStep: this.toStep, resumedFromCheckpoint: restoreCheckpointStep >= 0, atMs: now });
    return null;
  }

  /** A stage finished a step. The caller has checked that the node holds the stage. */
  step(r: StepReport, now: number, out: Action[]): Refusal | null {
    const stage = this.commits.stage(r.stage);
    // A new leader's first report from a slot may be ahead of what the old leader wrote: the old
    // one took reports while its store could not be reached. The slot catches up (the reports
    // between are gone with the old leader; the training itself never needed them).
    if (this.catchingUp.delete(r.stage) && Number.isInteger(r.step) && r.step > stage.lastStep + 1 && (r.epoch ?? 0) === this.ctx.epoch && this.ctx.phase === RunPhase.training) {
      out.push({ type: 'log', level: 'warn', msg: `${slotName(this.job, r.stage)} catches up from step ${stage.lastStep} to ${r.step - 1}: steps the previous leader took in while its store could not be reached`, fields: { stage: r.stage } });
      this.commits.setLastStep(r.stage, r.step - 1);
    }
    // The same report again, in the same epoch: a node re-sent it to a new leader that had taken
    // it in before the old one went (the reply was lost with it). Taken, changing nothing.
    if (r.step === stage.lastStep && (r.epoch ?? 0) === this.ctx.epoch && this.ctx.phase === RunPhase.training) return null;
    if (!Number.isInteger(r.step) || r.step !== stage.lastStep + 1) {
      return { reason: RefusalReason.wrongStep, message: `stage ${r.stage} reported step ${r.step}, but its next step is ${stage.lastStep + 1}` };
    }
    if (this.ctx.phase !== RunPhase.training) return { reason: RefusalReason.notTraining, message: `no training is under way (phase ${this.ctx.phase})` };
    if (this.commits.isParked(r.stage)) {
      return { reason: RefusalReason.notTraining, message: `replica ${replicaOfSlot(this.job, r.stage)} is out while a stage of it is rebuilt: ${slotName(this.job, r.stage)} trains nothing until it joins` };
    }
    const epoch = r.epoch ?? 0;
    if (epoch !== this.ctx.epoch) {
      return { reason: RefusalReason.staleEpoch, message: `step report of epoch ${epoch}, but the run is in epoch ${this.ctx.epoch}`, runEpoch: this.ctx.epoch, givenEpoch: epoch };
    }
    const newSnapshot = this.commits.recordSnapshot(r.stage, r.snapshotStep);
    if (newSnapshot) {
      out.push({
        type: 'snapshot-committed',
        snapshot: { stage: r.stage, step: r.snapshotStep!, atMs: now, stallMs: r.snapshotStallMs ?? 0, copyMs: r.snapshotCopyMs ?? 0, bytes: r.snapshotBytes ?? 0 },
      });
    }
    if (r.protection) this.recordProtection(r.stage, r.nodeId, r.protection, out);
    out.push({ type: 'step-reported', stage: r.stage, step: r.step, computeMs: r.computeMs, waitMs: r.waitMs, stepMs: r.stepMs, gradNorm: r.gradNorm, allReduceMs: r.allReduceMs ?? 0 });
    const last = stageOfSlot(this.job, r.stage) === this.job.stages - 1;
    // The last stage computes the loss of every micro-batch it trained: its tokens say how many.
    const microBatches = Math.round(r.tokens / (this.job.microBatchSize * this.job.model.seqLen));
    const completed = this.commits.recordStep(r, last ? replicaOfSlot(this.job, r.stage) : null, this.job.replicas, microBatches);
    this.intervals.observe(r.stage, r.stepMs, newSnapshot ? (r.snapshotStallMs ?? 0) : null);
    this.intervals.afterReport(r.stage, this.commits.stepUnderWay, this.ctx.intervalHeld, now, out);
    if (stageOfSlot(this.job, r.stage) === 0 && r.last && (this.toStep === null || r.step + 1 < this.toStep)) {
      this.toStep = r.step + 1;
      out.push({ type: 'log', level: 'info', msg: `the run ends after step ${r.step}` });
    }
    for (const { step, loss, microBatches: trained } of completed) {
      out.push({ type: 'step-completed', step, loss, microBatches: trained, atMs: now, commitStep: this.commits.globalCommitStep });
      this.failures.stepCompleted(step, now);
      this.recovery.stepCompleted(step, now);
    }
    this.ctx.afterSteps(now, out);
    const after = this.commits.completedSteps;
    if (this.toStep !== null && after >= this.toStep) {
      this.ctx.setPhase(RunPhase.complete);
      this.recovery.endedWhileOut(after, now, out);
      out.push({ type: 'training-complete', steps: after });
    }
    // A replica that is out joins once the others paused for it, unless the run has just ended.
    if (this.ctx.phase === RunPhase.training) this.recovery.maybeJoin(out);
    if (r.weightsDigest) this.compareReplicas(r.stage, r.step, r.weightsDigest, now, out);
    return null;
  }

  /** A replica's digest of its weights: once its stage's replicas have all given theirs, they must agree. */
  private compareReplicas(slot: number, step: number, digest: string, now: number, out: Action[]): void {
    const v = this.checks.record(slot, step, digest);
    if (!v) return;
    const stage = `stage ${v.stage}`;
    if (v.kind === 'agree') {
      out.push({ type: 'log', level: 'info', msg: `the replicas of ${stage} agree after step ${step}` });
      return;
    }
    const digests = v.digests.map((d, r) => `replica ${r} ${d}`).join(', ');
    if (v.kind === 'undecided') {
      const failure = { nodeId: this.commits.stage(slot).nodeId ?? '', stage: slot, detectedAtMs: now };
      this.ctx.failRun({ ...failure, detail: `the replicas of ${stage} hold different weights after step ${step} (${digests}) and no majority says which are right: with --replicas 3 or more the odd one is repaired from the others` }, out);
      return;
    }
    const trust = this.checks.agreedState(v.stage);
    for (const odd of v.odd) {
      const detail = `its weights differ from the other replicas of ${stage} after step ${step} (${digests}): silent corruption; its snapshots after step ${trust} are not used`;
      out.push({ type: 'notice', level: 'error', msg: `${slotName(this.job, odd)}: ${detail}` });
      this.ctx.replicaDiverged(odd, trust, detail, now, out);
    }
  }

  /** A stage's snapshot manager on the protection of its snapshots (with a step report, or on its own). */
  recordProtection(stage: number, nodeId: string, status: ProtectionStatus, out: Action[]): void {
    this.shards.heldBytes.set(nodeId, status.heldBytes);
    if (status.stage === stage && status.encodeMs !== null) out.push({ type: 'encode-reported', stage, encodeMs: status.encodeMs });
    const newest = status.versions.at(-1);
    if (status.stage === stage && newest && status.encodeMs !== null && status.placeMs !== null) this.intervals.observeProtection(stage, newest.step, status.encodeMs + status.placeMs);
    this.commits.recordProtection(stage, status);
  }
}
