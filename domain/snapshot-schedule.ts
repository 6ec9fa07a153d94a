// Which steps are snapshotted: the contract every stage and the coordinator share. Recovery rolls
// every stage back to the global commit step (the minimum over stages of their newest committed
// snapshot), so all stages must snapshot exactly the same steps.
//
// A step here counts steps completed: "the snapshot of step S" holds the state after S steps,
// taken once step S - 1 is done. `--snapshot-every N` fixes the schedule for the whole run (S a
// multiple of N; 0: none). `--snapshot-every auto` lets the coordinator choose the interval while
// training runs (coordinator/core/snapshot-interval.ts): each training segment (an epoch: the
// start of the run, or its restart after a recovery) begins with a snapshot of every step, and
// the coordinator announces each change in its step replies as "every N from step E". A stage
// learns of the change before it decides the snapshot of step E (the coordinator picks E so), so
// every stage, applying the same announcements, snapshots the same steps.

/** `--snapshot-every`: a fixed interval N (0: no snapshots), or `auto`. */
export type SnapshotEvery = number | 'auto';

export const SNAPSHOT_EVERY_AUTO = 'auto' as const;

/** Whether a job takes snapshots at all (auto always does). */
export function snapshotsOn(every: SnapshotEvery): boolean {
  return every !== 0;
}

/** An interval in force from a step on: the snapshots of steps E, E + N, E + 2N, ... */
export interface SnapshotInterval {
  /** E: the first step (steps completed) the interval decides. */
  readonly fromStep: number;
  /** N >= 1. */
  readonly every: number;
}

/**
 * Whether the snapshot of `step` is taken under `intervals` (sorted by `fromStep`, each in force
 * from its step until the next one's): the newest interval that has begun decides.
 */
export function isSnapshotStep(step: number, intervals: readonly SnapshotInterval[]): boolean {
  let inForce: SnapshotInterval | null = null;
  for (const i of intervals) {
    if (i.fromStep > step) break;
    inForce = i;
  }
  return inForce !== null && (step - inForce.fromStep) % inForce.every === 0;
}

/** The interval in force at `step`, or null before the first one begins. */
export function intervalAt(step: number, intervals: readonly SnapshotInterval[]): SnapshotInterval | null {
  let inForce: SnapshotInterval | null = null;
  for (const i of intervals) {
    if (i.fromStep > step) break;
    inForce = i;
  }
  return inForce;
}

/** The first snapshot step at or after `step` under `intervals`; null if there is none. */
export function nextSnapshotStep(step: number, intervals: readonly SnapshotInterval[]): number | null {
  const last = intervals.at(-1);
  if (!last) return null;
  // Past the newest interval's start, one of its next `every` steps is a snapshot step.
  const bound = Math.max(step, last.fromStep) + last.every;
  for (let s = step; s <= bound; s++) if (isSnapshotStep(s, intervals)) return s;
  return null;
}

/** The schedule a training segment starts with: fixed N from step 0 (today's rule), or auto's every step from where training (re)starts. */
export function segmentStart(every: SnapshotEvery, fromStep: number): SnapshotInterval[] {
  if (every === SNAPSHOT_EVERY_AUTO) return [{ fromStep, every: 1 }];
  return every === 0 ? [] : [{ fromStep: 0, every }];
}

/**
 * One stage's copy of the schedule of the segment under way: it decides each step's snapshot in
 * order and learns the coordinator's announcements; it refuses an announcement that would change
 * a step it has already decided (the two would no longer agree).
 */
export class SnapshotSchedule {
  private readonly intervals: SnapshotInterval[];
  /** The newest step decided; -1: none. */
  private decided = -1;

  constructor(every: SnapshotEvery, fromStep: number) {
    this.intervals = segmentStart(every, fromStep);
  }

  /** Decides the snapshot of `step` (called once per step, in order). */
  isDue(step: number): boolean {
    this.decided = Math.max(this.decided, step);
    return isSnapshotStep(step, this.intervals);
  }

  /** The interval in force now (the newest announced), or null when snapshots are off. */
  get latest(): SnapshotInterval | null {
    return this.intervals.at(-1) ?? null;
  }

  /**
   * Takes in the interval the coordinator says is in force (or will be, from its step). The same
   * one again is nothing new. Returns why it cannot be taken, or null.
   */
  learn(i: SnapshotInterval): string | null {
    const last = this.intervals.at(-1);
    if (last && last.fromStep === i.fromStep && last.every === i.every) return null;
    if (!Number.isSafeInteger(i.every) || i.every < 1) return `an interval of ${i.every} steps is not one`;
    if (last && i.fromStep < last.fromStep) return `every ${i.every} from step ${i.fromStep} is older than the interval in force (every ${last.every} from step ${last.fromStep})`;
    if (i.fromStep <= this.decided) {
      return `every ${i.every} from step ${i.fromStep} came too late: this stage already decided the snapshot of step ${this.decided}`;
    }
    if (last && last.fromStep === i.fromStep) this.intervals[this.intervals.length - 1] = i;
    else this.intervals.push(i);
    return null;
  }
}
