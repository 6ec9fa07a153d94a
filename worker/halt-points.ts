// Where a stage under way hears a Halt, and what it does about a step it was in the middle of:
// between the pieces of a backward pass (the step is abandoned; nothing has changed yet), and
// between the parameters of an optimizer update (abandoned only when training resumes at or
// before the step it completes and the stage holds a snapshot to go back to; the stage is then
// torn until `repair` restores that snapshot).

import { RecoveryPolicy, type JobOptions } from '../domain/job-options.ts';
import { HaltedError, type PipelineLinks } from './pipeline-links.ts';
import type { StageSnapshots } from './stage-snapshots.ts';
import type { StageTrainer } from './stage-trainer.ts';

const yieldNow = () => new Promise<void>((resolve) => setImmediate(resolve));
/**
 * Two turns of the event loop: a message that arrived during the piece before (a Halt on the
 * command stream) is read from its socket in the first turn's poll phase, but grpc-js may hand
 * it over in that turn's check phase, after a single yield has already resumed (measured: a halt
 * heard one piece late, 0.4-0.65 s under load).
 */
const yieldTwice = async () => {
  await yieldNow();
  await yieldNow();
};

export class HaltPoints {
  /** The latest step training resumes from, as the last Halt said. */
  private resumeAtMost = -1;

  constructor(
    private readonly links: PipelineLinks,
    private readonly snapshots: StageSnapshots | null,
  ) {}

  /** A Halt: what is awaited fails, and the yields below start to throw. */
  halt(reason: string, resumeAtMost: number): void {
    this.resumeAtMost = resumeAtMost;
    this.links.halt(reason);
  }

  /** Between the pieces of a backward pass: lets the event loop run, and abandons the step on a Halt. */
  async betweenPieces(): Promise<void> {
    await yieldTwice();
    if (this.links.haltRequested) throw new HaltedError('halted during a backward pass: the step is abandoned');
  }

  /**
   * Between the parts of an optimizer update: lets the event loop run, and abandons the update
   * when the coordinator has said to halt and the stage can go back to a snapshot of the step it
   * completed (every recovery then restores it: the update would be undone anyway). Without such
   * a snapshot, or when the policy keeps the survivors' weights (CheckFree, disk checkpoints),
   * the update runs to its end.
   */
  async inUpdate(trainer: StageTrainer, job: JobOptions): Promise<void> {
    await yieldTwice();
    // The update completes step completedSteps + 1; worth keeping when training may resume there.
    if (!this.links.haltRequested || !this.snapshots || trainer.completedSteps < this.resumeAtMost) return;
    if (job.recovery !== RecoveryPolicy.auto && job.recovery !== RecoveryPolicy.snapshot) return;
    if (!this.snapshots.hasCommitted(trainer.completedSteps)) return;
    throw new HaltedError(`halted during the optimizer update of step ${trainer.completedSteps}: abandoned, the stage goes back to its snapshot of it`);
  }

  /**
   * After the training loop ended on a Halt: a stage whose update was abandoned half-way goes
   * back to the snapshot of the step it completed, before anything (a neighbour's FetchWeights,
   * the halted report) sees it.
   */
  repair(trainer: StageTrainer | undefined): void {
    if (!trainer?.torn) return;
    try {
      this.snapshots!.restoreNow(trainer, trainer.completedSteps);
    } catch (err) {
      throw new Error(`after an abandoned update, the snapshot of step ${trainer.completedSteps} could not be restored: ${(err as Error).message}`, { cause: err });
    }
  }
}

/**
 * The step a halted stage's tensors hold as they are (ReportHalted's memory_step): its completed
 * steps, unless an update was abandoned half way; -1 when the node holds no stage of that slot.
 */
export function memoryStep(held: { readonly slot: number; readonly trainer: StageTrainer } | null, slot: number): number {
  return held?.slot === slot && !held.trainer.torn && !held.trainer.unwritten ? held.trainer.completedSteps : -1;
}
