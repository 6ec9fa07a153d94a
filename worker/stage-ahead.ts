// A successor's head start. A worker that replaces a dead one on its node (the standby taking
// over, or a restart) builds the stage its predecessor held (as that worker wrote it down beside
// the slots) and restores that stage's newest committed snapshot as it starts (the bytes are read
// on the thread pool), while the coordinator halts the other stages. Its first assignment takes
// the stage when it is the one assigned, for the same job, and frees it otherwise.

import type { Logger } from '../common/logging.ts';
import type { ReceivedAssign } from '../domain/commands.ts';
import { errorMessage } from '../domain/errors.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { slotOf } from '../domain/replica-slots.ts';
import { buildStage } from './stage-assignment.ts';
import type { RememberedAssignment, StageSnapshots } from './stage-snapshots.ts';
import type { StageTrainer } from './stage-trainer.ts';

interface Built {
  readonly assignment: RememberedAssignment;
  readonly trainer: StageTrainer;
}

export class StageAhead {
  /** Being built, or built, until the first assignment takes or drops it. */
  private pending: Promise<Built | null> | null = null;

  constructor(private readonly log: Logger) {}

  /** Whether the first assignment came: a build started after it would be of no use. */
  private taken = false;

  /**
   * Starts building the predecessor's stage, when the slots say which and hold a snapshot of it;
   * once only, and not after the first assignment.
   */
  start(snapshots: StageSnapshots): void {
    if (this.taken || this.pending) return;
    this.pending = this.build(snapshots);
  }

  private async build(snapshots: StageSnapshots): Promise<Built | null> {
    const assignment = snapshots.rememberedAssignment();
    const held = snapshots.held();
    if (!assignment || !held || held.stage !== assignment.stage) return null;
    const step = Math.max(...held.steps);
    // A share is restored with its replicas' other shares, which only the assignment names.
    if (!snapshots.hasCommitted(step)) return null;
    const started = performance.now();
    let trainer: StageTrainer | null = null;
    try {
      trainer = await buildStage(assignment.job, assignment.stage, assignment.dataSha256, 'zeros');
      await snapshots.restore(trainer, step);
      this.log.info({ stage: assignment.stage, step, ms: performance.now() - started }, "built its predecessor's stage ahead of the assignment");
      return { assignment, trainer };
    } catch (err) {
      trainer?.dispose();
      this.log.warn({ stage: assignment.stage, step, err: errorMessage(err) }, "could not build its predecessor's stage ahead: the assignment builds it");
      return null;
    }
  }

  /** The stage built ahead when it is the one `a` assigns, for `job`; else null (and it is freed). Once only. */
  async take(a: ReceivedAssign, job: JobOptions): Promise<StageTrainer | null> {
    this.taken = true;
    const pending = this.pending;
    if (!pending) return null;
    this.pending = null;
    const built = await pending;
    if (!built) return null;
    const { assignment } = built;
    // The slots know the stage by its slot (domain/replica-slots.ts).
    if (assignment.stage === slotOf(job, a.replica, a.stage) && !a.checkfree && assignment.dataSha256 === (a.dataSha256 || null) && JSON.stringify(assignment.job) === JSON.stringify(job)) return built.trainer;
    this.log.info({ built: assignment.stage, assigned: a.stage }, 'the stage built ahead is not the one assigned: dropped');
    built.trainer.dispose();
    return null;
  }
}
