// `--snapshot-every auto`: the coordinator chooses how often every stage snapshots, as CheckFreq
// does. A snapshot every step while one costs at most 2% of a step; otherwise every
// ceil(cost / (2% of a step)) steps, so snapshots never take more than about 2% of training. The
// interval grows as soon as the cost calls for it, and shrinks only with 20% headroom, so that
// measurements hovering at the boundary do not make it flap.
//
// Cost: the time the training loop is blocked by one snapshot (its stall: the copy out of the
// model and the wait for the previous commit), of the worst stage: the median of each stage's
// recent snapshots, the largest of those. Step: the median of the stages' recent step times.
//
// Protection: a snapshot is worth taking only if its snapshot manager can erasure-code it and
// place its shards before the next one comes. When that (encode + place, the worst stage's
// median) takes longer than the interval's steps, the interval grows to ceil(protect / step):
// otherwise each manager skips to its newest snapshot, the stages' protected steps drift apart,
// and no step is left that every stage could be rebuilt at.
//
// Consistency: every stage must snapshot the same steps (domain/snapshot-schedule.ts). Each
// training segment (epoch) starts with a snapshot of every step, which every stage derives from
// its Start; a change is announced in the step replies as "every N from step E", with
// E = (newest step any stage has reported) + 2. A stage decides the snapshot of step S right
// after the reply to its report of step S - 1, so when the coordinator takes a report, every
// stage has decided at most the snapshot of (newest step reported) + 1, and decides each later
// one after a reply sent from now on, which carries the change. A reply carries only the newest
// change, so no new one is announced until every stage has had a reply carrying the last.

import { SortedSamples } from './sorted-samples.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { SNAPSHOT_EVERY_AUTO, nextSnapshotStep, segmentStart, type SnapshotInterval } from '../../domain/snapshot-schedule.ts';
import type { Action } from './core-events.ts';
import { slotCount } from '../../domain/replica-slots.ts';

/** The share of a step snapshots may take. */
export const SNAPSHOT_OVERHEAD_TARGET = 0.02;
/**
 * A stall below this never stretches the interval. At that size the measurement is timer,
 * scheduler and garbage-collector jitter rather than copying (a step's own time varies by far
 * more from one step to the next), and a longer interval would trade steps lost at a failure for
 * an overhead no one can measure. The default model's stall (under a millisecond) so keeps a
 * snapshot every step even where its steps are short.
 */
export const STALL_NOISE_FLOOR_MS = 1;
/** A shorter interval is taken only if the cost stays this far under the target (0.8: 20% headroom). */
export const SHORTEN_HEADROOM = 0.8;
/** The longest interval auto picks (the largest `--snapshot-every N` allowed). */
export const MAX_AUTO_INTERVAL = 1_000_000;
/** Recent figures kept per stage: a small window, so the interval follows a change within a few snapshots. */
export const INTERVAL_WINDOW = 5;
/** Snapshots (and steps) every stage must have reported before auto chooses: until then, every step. */
export const INTERVAL_MIN_SAMPLES = 3;

/**
 * The interval for a snapshot that blocks training `costMs` per snapshot, with steps of `stepMs`:
 * 1 while cost <= 2% of a step (or below the noise floor), else ceil(cost / (2% of a step)).
 */
export function snapshotInterval(costMs: number, stepMs: number): number {
  if (!(costMs >= STALL_NOISE_FLOOR_MS) || !(stepMs > 0)) return 1;
  const budgetMs = SNAPSHOT_OVERHEAD_TARGET * stepMs;
  if (costMs <= budgetMs) return 1;
  return Math.min(MAX_AUTO_INTERVAL, Math.ceil(costMs / budgetMs));
}

/**
 * The interval to follow `current`: longer at once when the cost calls for it, shorter only as
 * far as keeps the cost 20% under the target. Either way the cost stays within 2% of a step.
 */
export function nextInterval(current: number, costMs: number, stepMs: number, protectMs: number | null = null): number {
  const wanted = Math.max(snapshotInterval(costMs, stepMs), protectInterval(protectMs, stepMs));
  if (wanted >= current) return wanted;
  const shorter = Math.max(costMs >= STALL_NOISE_FLOOR_MS ? snapshotInterval(costMs / SHORTEN_HEADROOM, stepMs) : 1, protectInterval(protectMs === null ? null : protectMs / SHORTEN_HEADROOM, stepMs));
  return Math.min(current, shorter);
}

/** Steps between snapshots so that protecting one (`protectMs`) ends before the next is taken. */
export function protectInterval(protectMs: number | null, stepMs: number): number {
  if (protectMs === null || !(protectMs > 0) || !(stepMs > 0)) return 1;
  return Math.min(MAX_AUTO_INTERVAL, Math.max(1, Math.ceil(protectMs / stepMs)));
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Adds a sample to a window; returns the sample it pushed out, if any. */
function push(window: number[], value: number): number | undefined {
  window.push(value);
  return window.length > INTERVAL_WINDOW ? window.shift() : undefined;
}

/** The interval in force, as `status()` and observability give it. */
export interface IntervalStatus {
  readonly mode: 'auto' | 'fixed';
  /** Snapshot every N steps; 0: snapshots off. */
  readonly every: number;
  /** The step it decides from (0 for a fixed interval). */
  readonly fromStep: number;
}

/** The snapshot intervals' state as the coordinator's store keeps it. */
export interface DurableIntervals {
  readonly stallMs: readonly (readonly number[])[];
  readonly stepMs: readonly (readonly number[])[];
  readonly protectMs: readonly (readonly number[])[];
  readonly protectedStep: readonly number[];
  readonly intervals: readonly SnapshotInterval[];
  readonly told: readonly number[];
}

export class SnapshotIntervals {
  private readonly auto: boolean;
  private readonly stallMs: number[][];
  private readonly stepMs: number[][];
  /** Per stage: recent protection times (encode + place), and the step of the version each was last seen for. */
  private readonly protectMs: number[][];
  private readonly protectedStep: number[];
  /** The segment's intervals, newest last (auto: every step from its start, then each change). */
  private intervals: SnapshotInterval[];
  /** Stages that have had a reply carrying the newest interval. */
  private readonly told = new Set<number>();
  /** Stage slots: every replica's stages. */
  private readonly slots: number;
  /**
   * Kept as the windows change, so that a report does not sort every slot's windows again: each
   * slot's median stall and protection time (null: none yet), and every slot's step times.
   */
  private stallMedian: (number | null)[] = [];
  private protectMedian: (number | null)[] = [];
  private readonly allStepMs = new SortedSamples();

  constructor(private readonly job: JobOptions) {
    this.auto = job.snapshotEvery === SNAPSHOT_EVERY_AUTO;
    this.slots = slotCount(job);
    this.stallMs = Array.from({ length: this.slots }, () => []);
    this.stepMs = Array.from({ length: this.slots }, () => []);
    this.protectMs = Array.from({ length: this.slots }, () => []);
    this.protectedStep = Array.from({ length: this.slots }, () => -1);
    this.intervals = segmentStart(job.snapshotEvery, 0);
    for (let s = 0; s < this.slots; s++) this.told.add(s);
    this.measured();
  }

  /** The kept medians and step times, from the windows as they are. */
  private measured(): void {
    this.stallMedian = this.stallMs.map((w) => median(w));
    this.protectMedian = this.protectMs.map((w) => median(w));
    this.allStepMs.clear();
    for (const w of this.stepMs) for (const ms of w) this.allStepMs.add(ms);
  }

  status(): IntervalStatus {
    const i = this.intervals.at(-1);
    return { mode: this.auto ? 'auto' : 'fixed', every: i?.every ?? 0, fromStep: i?.fromStep ?? 0 };
  }

  /** What step replies carry: the newest interval (auto only; a fixed one every stage knows). */
  get announced(): SnapshotInterval | null {
    return this.auto ? (this.intervals.at(-1) ?? null) : null;
  }

  /** The measurements and the intervals announced, as the coordinator's store keeps them. */
  durable(): DurableIntervals {
    return {
      stallMs: this.stallMs.map((w) => [...w]),
      stepMs: this.stepMs.map((w) => [...w]),
      protectMs: this.protectMs.map((w) => [...w]),
      protectedStep: [...this.protectedStep],
      intervals: this.intervals.map((i) => ({ ...i })),
      told: [...this.told],
    };
  }

  restore(d: DurableIntervals): void {
    const fill = (into: number[][], from: readonly (readonly number[])[]) => from.forEach((w, s) => into[s]!.splice(0, into[s]!.length, ...w));
    fill(this.stallMs, d.stallMs);
    fill(this.stepMs, d.stepMs);
    fill(this.protectMs, d.protectMs);
    this.protectedStep.splice(0, this.protectedStep.length, ...d.protectedStep);
    this.intervals = d.intervals.map((i) => ({ ...i }));
    this.told.clear();
    for (const s of d.told) this.told.add(s);
    this.measured();
  }

  /**
   * Back to the intervals the store holds (`d`, as last written): a change decided since was told
   * to no stage (its reply waited for the write) and, with the store unreachable, a new leader
   * would not know it. The measurements stay.
   */
  withdrawUnwritten(d: DurableIntervals): SnapshotInterval | null {
    const newest = this.intervals.at(-1) ?? null;
    const held = d.intervals.at(-1) ?? null;
    const withdrawn = newest && (newest.fromStep !== held?.fromStep || newest.every !== held.every) ? newest : null;
    this.intervals = d.intervals.map((i) => ({ ...i }));
    this.told.clear();
    for (const s of d.told) this.told.add(s);
    return withdrawn;
  }

  /** The first snapshot step at or after `step` as announced so far (`step` itself without snapshots). */
  nextSnapshotStep(step: number): number {
    return nextSnapshotStep(step, this.intervals) ?? step;
  }

  /**
   * Training (re)starts at `fromStep` in a new segment: every stage starts its schedule afresh
   * from its Start (auto: every step until the measurements say otherwise). The measurements stay.
   */
  start(fromStep: number, now: number, out: Action[]): void {
    if (!this.auto) return;
    const before = this.intervals.at(-1)?.every ?? 1;
    this.intervals = segmentStart(this.job.snapshotEvery, fromStep);
    for (let s = 0; s < this.slots; s++) this.told.add(s);
    if (before !== 1) {
      out.push({ type: 'snapshot-interval', fromStep, every: 1, costMs: null, stepMs: null, reason: 'training (re)started: a snapshot every step until measured again', atMs: now });
    }
  }

  /** A stage's accepted step report: its step time and, when it brought a newer snapshot, that snapshot's stall. */
  observe(stage: number, stepMs: number, snapshotStallMs: number | null): void {
    if (!this.auto) return;
    if (Number.isFinite(stepMs) && stepMs > 0) {
      const out = push(this.stepMs[stage]!, stepMs);
      this.allStepMs.add(stepMs);
      if (out !== undefined) this.allStepMs.delete(out);
    }
    if (snapshotStallMs !== null && Number.isFinite(snapshotStallMs) && snapshotStallMs >= 0) {
      push(this.stallMs[stage]!, snapshotStallMs);
      this.stallMedian[stage] = median(this.stallMs[stage]!);
    }
  }

  /** A stage's snapshot manager protected the version of `step` in `ms` (encode + place); counted once per version. */
  observeProtection(stage: number, step: number, ms: number): void {
    if (!this.auto || step === this.protectedStep[stage] || !Number.isFinite(ms) || ms < 0) return;
    this.protectedStep[stage] = step;
    push(this.protectMs[stage]!, ms);
    this.protectMedian[stage] = median(this.protectMs[stage]!);
  }

  /**
   * After a stage's step report was taken (`stepUnderWay`: the newest step any stage has
   * completed, plus one): announces a new interval when the measurements call for one. `hold`:
   * change nothing now (a departure waits for a snapshot step already chosen). Records that the
   * reporting stage's reply carries the newest interval.
   */
  afterReport(stage: number, stepUnderWay: number, hold: boolean, now: number, out: Action[]): void {
    if (!this.auto) return;
    const change = hold || this.told.size < this.slots ? null : this.proposal(stepUnderWay);
    if (change) {
      this.intervals.push({ fromStep: change.fromStep, every: change.every });
      this.told.clear();
      out.push({ type: 'snapshot-interval', ...change, atMs: now });
    }
    this.told.add(stage);
  }

  private proposal(stepUnderWay: number): Omit<Extract<Action, { type: 'snapshot-interval' }>, 'type' | 'atMs'> | null {
    if (this.stallMs.some((w) => w.length < INTERVAL_MIN_SAMPLES) || this.stepMs.some((w) => w.length < INTERVAL_MIN_SAMPLES)) return null;
    const costMs = Math.max(...(this.stallMedian as number[]));
    const stepMs = this.allStepMs.median()!;
    const current = this.intervals.at(-1)?.every ?? 1;
    const measured = this.protectMedian.filter((m) => m !== null);
    const protectMs = measured.length > 0 ? Math.max(...measured) : null;
    const every = nextInterval(current, costMs, stepMs, protectMs);
    if (every === current) return null;
    const pct = ((costMs / stepMs) * 100).toFixed(2);
    const byProtection = protectMs !== null && protectInterval(protectMs, stepMs) === every && every > snapshotInterval(costMs, stepMs);
    const reason = byProtection
      ? `protecting a snapshot takes ${(protectMs / 1000).toFixed(2)} s (erasure coding and placing its shards), ${(stepMs / 1000).toFixed(2)} s a step: every ${every} steps, so each is protected before the next`
      : costMs < STALL_NOISE_FLOOR_MS
        ? `a snapshot stalls training ${costMs.toFixed(2)} ms, under the ${STALL_NOISE_FLOOR_MS} ms noise floor: every step`
        : every === 1
          ? `a snapshot costs ${pct}% of a step (${costMs.toFixed(1)} of ${stepMs.toFixed(0)} ms), within ${SNAPSHOT_OVERHEAD_TARGET * 100}%: every step`
          : `a snapshot costs ${pct}% of a step (${costMs.toFixed(1)} of ${stepMs.toFixed(0)} ms): every ${every} steps keeps it within ${SNAPSHOT_OVERHEAD_TARGET * 100}%`;
    // One step past the newest any stage may already have decided (see the header).
    return { fromStep: stepUnderWay + 1, every, costMs, stepMs, reason };
  }
}
