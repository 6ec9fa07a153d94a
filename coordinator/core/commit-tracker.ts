// Commit tracking: per stage, the last step completed, the newest snapshot committed and the
// versions of it erasure-coded on peers; from them the steps every stage has completed, the
// global commit step (every stage can restore it locally) and the protected commit step (every
// stage holds it locally and erasure-coded). Rollbacks move all of it back together.

import type { ProtectedVersion, ProtectionStatus } from '../../domain/erasure-protection.ts';
import type { StepReport } from '../../domain/node-reports.ts';
import { StepExtent } from './step-extent.ts';

export interface StageRecord {
  nodeId: string | null;
  /** Last completed step, -1 before the first. Set through the tracker (its step extent follows it). */
  readonly lastStep: number;
  /** The gradient norms of its last step report (CheckFree weighs neighbours by them); null before any. */
  lastNorms: { readonly gradNorm: number; readonly clippedGradNorm: number } | null;
  /** Latest committed snapshot (steps completed it holds); -1 for none. */
  snapshotStep: number;
  /** Versions of its snapshot whose shards all reached their holders, by step. */
  readonly protectedVersions: Map<number, ProtectedVersion>;
}

/**
 * A step's loss from its replicas' last stages: the mean of their losses in replica order when
 * every replica trained its own micro-batches; while a replica is out, the mean over the
 * micro-batches trained (a replica that trained another's too weighs as much as both).
 */
function stepLoss(losses: readonly (number | undefined)[], trained: readonly number[]): number {
  if (losses.length === 1) return losses[0] ?? 0;
  if (losses.every((l) => l !== undefined) && trained.every((t) => t === trained[0])) return (losses as number[]).reduce((a, b) => a + b, 0) / losses.length;
  let sum = 0;
  let count = 0;
  losses.forEach((l, r) => {
    if (l === undefined) return;
    sum += l * trained[r]!;
    count += trained[r]!;
  });
  return count === 0 ? 0 : sum / count;
}

/** The commit tracker as the coordinator's store keeps it. */
export interface DurableCommits {
  readonly stages: readonly (Omit<StageRecord, 'protectedVersions'> & { readonly protectedVersions: readonly ProtectedVersion[] })[];
  readonly codedCommitStep: number;
  readonly restorePoints: readonly { readonly epoch: number; readonly step: number }[];
  readonly checkpointSteps: readonly (readonly [number, readonly number[]])[];
  readonly pendingLosses: readonly (readonly [number, { readonly losses: readonly (number | null)[]; readonly trained: readonly number[] }])[];
  readonly parked: readonly number[];
}

export class CommitTracker {
  readonly stages: StageRecord[];
  /**
   * Newest step every stage's snapshot manager says it has erasure-coded on peers; -1: none yet.
   * Step replies carry it (workers and snapshot managers keep what it still needs).
   */
  codedCommitStep = -1;
  /** Each recovery's epoch and the step it rolled back to: later steps of older epochs are void. */
  private readonly restorePoints: { epoch: number; step: number }[] = [];
  /** Disk checkpoints each stage can load, as reported when it became ready. */
  private readonly checkpointSteps = new Map<number, readonly number[]>();
  /**
   * Of each step not every stage has completed yet, as its last stages reported it: each
   * replica's loss, and the micro-batches trained.
   */
  private readonly pendingLosses = new Map<number, { losses: (number | undefined)[]; trained: number[] }>();

  /**
   * Slots of a replica that is out while it is rebuilt (`--on-replica-loss keep` or `shrink`):
   * they train nothing, so the steps completed, the commit steps and the coded versions are those
   * of the other slots until the replica joins again.
   */
  private readonly parked = new Set<number>();
  /** The slots that train, in order; null: not known since the last park. */
  private activeCache: number[] | null = null;
  /** The lowest and highest last step of the slots that train (StepExtent); null: to be recomputed. */
  private extent: StepExtent | null = null;

  constructor(stages: number) {
    this.stages = Array.from({ length: stages }, () => ({ nodeId: null, lastStep: -1, lastNorms: null, snapshotStep: -1, protectedVersions: new Map() }));
  }

  durable(): DurableCommits {
    return {
      stages: this.stages.map((s) => ({ ...s, protectedVersions: [...s.protectedVersions.values()] })),
      codedCommitStep: this.codedCommitStep,
      restorePoints: [...this.restorePoints],
      checkpointSteps: [...this.checkpointSteps],
      // JSON has no undefined: a replica's loss not reported yet is null there.
      pendingLosses: [...this.pendingLosses].map(([step, p]) => [step, { losses: p.losses.map((l) => l ?? null), trained: [...p.trained] }] as const),
      parked: [...this.parked],
    };
  }

  restore(d: DurableCommits): void {
    d.stages.forEach((s, i) => {
      this.stages[i] = { ...s, protectedVersions: new Map(s.protectedVersions.map((v) => [v.step, v])) };
    });
    this.codedCommitStep = d.codedCommitStep;
    this.restorePoints.splice(0, this.restorePoints.length, ...d.restorePoints.map((p) => ({ ...p })));
    this.checkpointSteps.clear();
    for (const [slot, steps] of d.checkpointSteps) this.checkpointSteps.set(slot, steps);
    this.pendingLosses.clear();
    for (const [step, p] of d.pendingLosses) this.pendingLosses.set(step, { losses: p.losses.map((l) => l ?? undefined), trained: [...p.trained] });
    this.park(d.parked);
  }

  stage(stage: number): StageRecord {
    return this.stages[stage]!;
  }

  /** The slots that train: every slot but those of a replica that is out. */
  private get active(): StageRecord[] {
    return this.parked.size === 0 ? this.stages : this.stages.filter((_, s) => !this.parked.has(s));
  }

  /** Slot indices that train, in order (do not change the array: it is kept until the next park). */
  activeSlots(): readonly number[] {
    this.activeCache ??= this.stages.flatMap((_, s) => (this.parked.has(s) ? [] : [s]));
    return this.activeCache;
  }

  isParked(slot: number): boolean {
    return this.parked.has(slot);
  }

  /** A replica's slots are out (`slots`), or all are back (`[]`). */
  park(slots: readonly number[]): void {
    this.parked.clear();
    for (const s of slots) this.parked.add(s);
    this.activeCache = null;
    this.extent = null;
  }

  /** Sets a slot's last completed step (a new leader catching a slot up, a rollback). */
  setLastStep(slot: number, step: number): void {
    (this.stages[slot] as { lastStep: number }).lastStep = step;
    this.extent = null;
  }

  /** The lowest and highest last step of the slots that train, kept between reports. */
  private stepExtent(): StepExtent {
    this.extent ??= StepExtent.of(this.activeSlots().map((s) => this.stages[s]!.lastStep));
    return this.extent;
  }

  /** Whether every slot that trains has completed exactly `step` steps' worth: its last step is `step - 1`. */
  allAtLastStep(lastStep: number): boolean {
    if (this.activeSlots().length === 0) return true;
    const e = this.stepExtent();
    return e.min === lastStep && e.max === lastStep;
  }

  /**
   * The step every stage can restore: the minimum of their latest committed snapshots. A snapshot
   * manager codes only snapshots its worker committed, so a stage's protected version counts as
   * committed even before the step report saying so arrives: the global commit step is never
   * behind the coded one, and a worker told the coded step may let older slots go.
   */
  get globalCommitStep(): number {
    return Math.min(...this.active.map((s) => Math.max(s.snapshotStep, ...s.protectedVersions.keys())));
  }

  /**
   * Newest step every stage holds locally and erasure-coded on peers; -1: none yet. A snapshot
   * manager may tell of a version's shards before the worker's step report tells of its commit
   * (they travel on separate calls): until that report the step does not count, so this never
   * exceeds the global commit step.
   */
  get protectedCommitStep(): number {
    return Math.min(this.codedCommitStep, this.globalCommitStep);
  }

  /** Steps every stage has completed. */
  get completedSteps(): number {
    return this.stepExtent().min + 1;
  }

  /** The newest step any stage has completed, plus one: the step under way. */
  get stepUnderWay(): number {
    return this.stepExtent().max + 1;
  }

  /**
   * Takes in an accepted step report; returns the steps it completed for every stage, with their
   * losses and micro-batches. `lossOfReplica`: the replica whose loss the report carries (a last
   * stage's, which trained `microBatches`), or null. A step's loss is the mean of its replicas'
   * (each over as many micro-batches), added up in replica order.
   */
  recordStep(r: StepReport, lossOfReplica: number | null, replicas: number, microBatches: number): { step: number; loss: number; microBatches: number }[] {
    const stage = this.stages[r.stage]!;
    const before = this.completedSteps;
    if (!this.parked.has(r.stage) && this.extent?.move(stage.lastStep, r.step) === false) this.extent = null;
    (stage as { lastStep: number }).lastStep = r.step;
    stage.lastNorms = { gradNorm: r.gradNorm, clippedGradNorm: r.clippedGradNorm ?? r.gradNorm };
    if (lossOfReplica !== null) {
      const pending = this.pendingLosses.get(r.step) ?? { losses: Array.from({ length: replicas }, () => undefined), trained: Array.from({ length: replicas }, () => 0) };
      pending.losses[lossOfReplica] = r.loss;
      pending.trained[lossOfReplica] = microBatches;
      this.pendingLosses.set(r.step, pending);
    }
    const done: { step: number; loss: number; microBatches: number }[] = [];
    for (let s = before; s < this.completedSteps; s++) {
      // A step a slot caught up over (a new leader's first report from it) has no loss here.
      const pending = this.pendingLosses.get(s);
      if (pending) done.push({ step: s, loss: stepLoss(pending.losses, pending.trained), microBatches: pending.trained.reduce((a, b) => a + b, 0) });
      this.pendingLosses.delete(s);
    }
    return done;
  }

  /** A newer committed snapshot of a stage, or false when the report's is not newer. */
  recordSnapshot(stage: number, snapshotStep: number | undefined): boolean {
    const st = this.stages[stage]!;
    if (snapshotStep === undefined || snapshotStep <= st.snapshotStep) return false;
    st.snapshotStep = snapshotStep;
    return true;
  }

  /** Takes in a stage's protection status; moves the protected commit step on. */
  recordProtection(stage: number, status: ProtectionStatus): void {
    const st = this.stages[stage]!;
    if (status.stage === stage) {
      for (const v of status.versions) {
        if (!this.versionValid(v)) continue;
        const known = st.protectedVersions.get(v.step);
        if (!known || known.epoch <= v.epoch) st.protectedVersions.set(v.step, v);
      }
    }
    const step = this.newestCommonVersion();
    if (step <= this.codedCommitStep) return;
    this.codedCommitStep = step;
    for (const x of this.stages) for (const old of [...x.protectedVersions.keys()]) if (old < step) x.protectedVersions.delete(old);
  }

  /** The newest version every stage holds erasure-coded; -1: none. */
  private newestCommonVersion(): number {
    const sets = this.active.map((x) => new Set(x.protectedVersions.keys()));
    const common = [...sets[0]!].filter((step) => sets.every((set) => set.has(step)));
    return common.length === 0 ? -1 : Math.max(...common);
  }

  /** A node's new snapshot manager holds none of the old one's shards: forget it as a holder. */
  forgetHolder(nodeId: string): void {
    for (const st of this.stages) {
      for (const [step, v] of st.protectedVersions) st.protectedVersions.set(step, { ...v, holders: v.holders.map((h) => (h === nodeId ? '' : h)) });
    }
  }

  /** Whether a protected version belongs to the timeline training continues on. */
  private versionValid(v: ProtectedVersion): boolean {
    return this.restorePoints.every((p) => p.epoch <= v.epoch || v.step <= p.step);
  }

  /**
   * Every stage goes back to `step` in `epoch`: `snapshotStep` is what each then holds (the restored
   * snapshot, or -1 when the snapshots belong to another timeline now). Protected versions past
   * the step go.
   */
  rollBack(epoch: number, step: number, snapshotStep: number): void {
    this.restorePoints.push({ epoch, step });
    this.extent = null;
    for (const s of this.stages) {
      (s as { lastStep: number }).lastStep = step - 1;
      s.snapshotStep = snapshotStep;
      for (const old of [...s.protectedVersions.keys()]) if (old > step) s.protectedVersions.delete(old);
    }
    // The versions past the step went with it.
    this.codedCommitStep = Math.min(this.codedCommitStep, this.newestCommonVersion());
    for (const pending of [...this.pendingLosses.keys()]) if (pending >= step) this.pendingLosses.delete(pending);
  }

  /**
   * CheckFree: the other stages keep their weights and training goes on from `fromStep`; the
   * snapshots and shards of before belong to another timeline.
   */
  continueWithoutRollBack(epoch: number, fromStep: number): void {
    this.restorePoints.push({ epoch, step: -1 });
    this.extent = null;
    for (const s of this.stages) {
      (s as { lastStep: number }).lastStep = fromStep - 1;
      s.snapshotStep = -1;
      s.protectedVersions.clear();
    }
    this.codedCommitStep = -1;
    for (const pending of [...this.pendingLosses.keys()]) if (pending >= fromStep) this.pendingLosses.delete(pending);
  }

  /** A run that resumes from the disk checkpoint of `step` starts there. */
  resumeAt(step: number): void {
    for (const s of this.stages) (s as { lastStep: number }).lastStep = step - 1;
    this.extent = null;
  }

  setCheckpointSteps(stage: number, steps: readonly number[]): void {
    this.checkpointSteps.set(stage, steps);
  }

  /** The newest disk checkpoint step every stage holds, or null. */
  resumeStep(): number | null {
    const lists = this.stages.map((_, s) => new Set(this.checkpointSteps.get(s) ?? []));
    const common = [...lists[0]!].filter((step) => lists.every((l) => l.has(step)));
    return common.length > 0 ? Math.max(...common) : null;
  }
}
