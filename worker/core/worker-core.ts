// The worker's brain: a synchronous state machine of its protocol with the coordinator. Commands,
// the outcomes of its own requests (refusals included), signals and the time go in; actions come
// out, and the adapter (worker/worker-node.ts) carries them out: it owns the sockets, the
// training loop, the snapshot manager and the timers. No I/O and no clock here.
//
// Ordering contracts the adapter keeps: `assign-applied` (or a fault) follows every
// `apply-assign`, `halted` follows every `halt-training`, and the training loop asks
// `mayStartStep` before each step, `isLast` before reporting it, and `snapshotDue` once per step
// after its report was accepted (whose reply may change the snapshot interval).

import type { ProtectionPlan } from '../../domain/erasure-protection.ts';
import type { ReceivedAssign, ReceivedCommand } from '../../domain/commands.ts';
import { EXIT_FENCED } from '../../domain/exit-codes.ts';
import { RefusalReason, type Refusal } from '../../domain/refusal.ts';
import { slotOf } from '../../domain/replica-slots.ts';
import { SnapshotSchedule, type SnapshotEvery, type SnapshotInterval } from '../../domain/snapshot-schedule.ts';
import type { WorkerOptions } from './worker-options.ts';
import { WorkerState, transitionWorker } from './worker-state.ts';

/** Exit code of a node told it is being preempted (128 + SIGTERM). */
export const EXIT_TERMINATED = 143;

export type WorkerInput =
  | { type: 'registered' }
  | { type: 'command'; command: ReceivedCommand }
  /** The adapter applied the assignment of `epoch` (stage built, restored, peers connected). */
  | { type: 'assign-applied'; epoch: number }
  /** The training loop stopped after a Halt and the last snapshot was written. */
  | { type: 'halted' }
  /** A step report was accepted; `snapshotInterval`: the newest interval of `--snapshot-every auto` (null: fixed). */
  | { type: 'report-accepted'; protectedCommitStep: number; snapshotInterval: SnapshotInterval | null }
  /** The coordinator refused a report of this worker's (a step, readiness). */
  | { type: 'report-refused'; rpc: string; refusal: Refusal }
  | { type: 'heartbeat-refused'; refusal: Refusal }
  | { type: 'commands-lost'; why: string }
  /** A preemption notice (SIGTERM): hand the stage over within `graceMs`. */
  | { type: 'terminate'; graceMs: number; reason: string }
  | { type: 'leave-refused'; why: string }
  /** Something this worker cannot recover from by itself. */
  | { type: 'fault'; message: string }
  | { type: 'shutdown'; code: number; reason: string }
  | { type: 'tick' };

export type WorkerAction =
  | { type: 'apply-assign'; assign: ReceivedAssign }
  | { type: 'report-ready'; stage: number; epoch: number }
  | { type: 'start-training'; fromStep: number; restoreCheckpointStep: number; fromScratch: boolean }
  /** Abandon the step under way, wait for the last snapshot, then feed `halted`. */
  | { type: 'halt-training'; reason: string; resumeAtMost: number }
  | { type: 'report-halted'; stage: number; epoch: number }
  | { type: 'configure-smp'; plan: ProtectionPlan | null; protectedCommitStep: number }
  | { type: 'leave'; graceMs: number; reason: string }
  | { type: 'report-fault'; stage: number; message: string }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'exit'; code: number; reason: string };

/** A timed consequence: at `atMs`, unless cleared first. */
interface Deadline {
  readonly atMs: number;
  readonly input: WorkerInput;
}

export class WorkerCore {
  private current: WorkerState = WorkerState.starting;
  /** The stage and epoch of the assignment in force (or being applied). */
  private assignment: { readonly stage: number; readonly epoch: number } | null = null;
  /** Exclusive step limit from Start or Limit; 0: none. */
  private limit = 0;
  /** Limit with to_step 0: finish the step under way, then start no other. */
  private stopAfterCurrent = false;
  /** The limit is a pause (a stage is about to move), not the end of the run. */
  private paused = false;
  /** A Halt that came while an assignment was being applied: carried out once it is. */
  private pendingHalt: { readonly epoch: number; readonly reason: string; readonly resumeAtMost: number } | null = null;
  /** The epoch the Halt under way reports in. */
  private haltEpoch = 0;
  /** Newest step every stage holds locally and erasure-coded; its slot is kept. */
  private protectedCommitStepValue = -1;
  private departing = false;
  /** A refused report announced a recovery: fault if no Halt or Assign comes by then. */
  private haltExpected: Deadline | null = null;
  /** Leave when the preemption grace is over; exit when a fault was not answered with Stop. */
  private exitDeadline: Deadline | null = null;
  /** The job's `--snapshot-every`, from the newest assignment. */
  private snapshotEvery: SnapshotEvery = 0;
  /** Which steps this stage snapshots in the training segment under way (from Start). */
  private schedule: SnapshotSchedule | null = null;

  constructor(private readonly options: Pick<WorkerOptions, 'haltGraceMs' | 'faultExitGraceMs'>) {}

  get state(): WorkerState {
    return this.current;
  }

  get protectedCommitStep(): number {
    return this.protectedCommitStepValue;
  }

  /** The stage held (or being taken on); null before the first assignment. */
  get stage(): number | null {
    return this.assignment?.stage ?? null;
  }

  get epoch(): number | null {
    return this.assignment?.epoch ?? null;
  }

  /**
   * Whether to snapshot the state after `step` steps (the step just done). Asked once per step, in
   * order, after the step's report was accepted: every stage decides the same steps.
   */
  snapshotDue(step: number): boolean {
    return this.schedule?.isDue(step) ?? false;
  }

  /** Whether the training loop may start `step` (the step limit and a stop request say no). */
  mayStartStep(step: number): boolean {
    return this.current === WorkerState.training && !(this.limit !== 0 && step >= this.limit);
  }

  handle(input: WorkerInput, now: number): WorkerAction[] {
    const out: WorkerAction[] = [];
    if (this.current === WorkerState.stopped && input.type !== 'tick') return out;
    this.dispatch(input, now, out);
    return out;
  }

  private move(to: WorkerState): void {
    this.current = transitionWorker(this.current, to);
  }

  private dispatch(e: WorkerInput, now: number, out: WorkerAction[]): void {
    switch (e.type) {
      case 'registered':
        this.move(WorkerState.idle);
        return;
      case 'command':
        this.onCommand(e.command, now, out);
        return;
      case 'assign-applied': {
        if (this.current !== WorkerState.assigning || this.assignment?.epoch !== e.epoch) return;
        const halt = this.pendingHalt;
        if (halt) {
          this.pendingHalt = null;
          this.halt(halt.epoch, halt.reason, halt.resumeAtMost, out);
          return;
        }
        this.move(WorkerState.ready);
        out.push({ type: 'report-ready', stage: this.assignment.stage, epoch: this.assignment.epoch });
        return;
      }
      case 'halted':
        if (this.current !== WorkerState.halting) return;
        this.move(WorkerState.halted);
        out.push({ type: 'report-halted', stage: this.assignment!.stage, epoch: this.haltEpoch });
        return;
      case 'report-accepted': {
        if (e.protectedCommitStep > this.protectedCommitStepValue) this.protectedCommitStepValue = e.protectedCommitStep;
        const refused = e.snapshotInterval && this.schedule ? this.schedule.learn(e.snapshotInterval) : null;
        if (refused) this.fault(`the coordinator's snapshot interval cannot be followed: ${refused}`, now, out);
        return;
      }
      case 'report-refused':
        this.onRefused(e.rpc, e.refusal, now, out);
        return;
      case 'heartbeat-refused':
        if (e.refusal.reason === RefusalReason.fenced) this.exit(EXIT_FENCED, `fenced: the coordinator no longer knows this node (${e.refusal.message})`, out);
        else out.push({ type: 'log', level: 'warn', msg: 'heartbeat refused', fields: { reason: e.refusal.reason, detail: e.refusal.message } });
        return;
      case 'commands-lost':
        this.exit(1, `lost the coordinator: ${e.why}`, out);
        return;
      case 'terminate':
        this.onTerminate(e.graceMs, e.reason, now, out);
        return;
      case 'leave-refused':
        this.exit(EXIT_TERMINATED, `terminated; the coordinator did not take the notice: ${e.why}`, out);
        return;
      case 'fault':
        this.haltExpected = null;
        out.push({ type: 'log', level: 'error', msg: 'worker fault', fields: { err: e.message } });
        out.push({ type: 'report-fault', stage: this.assignment?.stage ?? -1, message: e.message });
        // The coordinator answers with Stop; exit anyway if it does not.
        this.exitDeadline ??= { atMs: now + this.options.faultExitGraceMs, input: { type: 'shutdown', code: 1, reason: e.message } };
        return;
      case 'shutdown':
        this.exit(e.code, e.reason, out);
        return;
      case 'tick': {
        for (const d of [this.haltExpected, this.exitDeadline]) {
          if (d && now >= d.atMs && this.current !== WorkerState.stopped) {
            if (d === this.haltExpected) this.haltExpected = null;
            else this.exitDeadline = null;
            this.dispatch(d.input, now, out);
          }
        }
        return;
      }
    }
  }

  private onCommand(c: ReceivedCommand, now: number, out: WorkerAction[]): void {
    switch (c.kind) {
      case 'assign': {
        const prev = this.assignment;
        if (prev && c.epoch <= prev.epoch) {
          this.fault(`already assigned stage ${prev.stage} in epoch ${prev.epoch}; refusing an assignment for epoch ${c.epoch}`, now, out);
          return;
        }
        if (this.current !== WorkerState.idle && this.current !== WorkerState.halted) {
          this.fault(`told to take stage ${c.stage} in epoch ${c.epoch} while ${this.current}`, now, out);
          return;
        }
        this.haltExpected = null;
        this.move(WorkerState.assigning);
        // The coordinator knows the stage by its slot (domain/replica-slots.ts).
        this.assignment = { stage: slotOf(c.job, c.replica, c.stage), epoch: c.epoch };
        this.snapshotEvery = c.job.snapshotEvery;
        out.push({ type: 'log', level: 'info', msg: 'assigned stage', fields: { stage: c.stage, of: c.numStages, epoch: c.epoch, restoreStep: c.restoreStep } });
        out.push({ type: 'apply-assign', assign: c });
        return;
      }
      case 'start':
        if (this.current !== WorkerState.ready) {
          this.fault(`told to start at step ${c.fromStep} while ${this.current}`, now, out);
          return;
        }
        this.limit = c.toStep;
        this.schedule = new SnapshotSchedule(this.snapshotEvery, c.fromStep);
        this.stopAfterCurrent = false;
        this.paused = false;
        this.move(WorkerState.training);
        out.push({ type: 'start-training', fromStep: c.fromStep, restoreCheckpointStep: c.restoreCheckpointStep, fromScratch: c.fromScratch ?? false });
        return;
      case 'halt':
        this.haltExpected = null;
        if (this.current === WorkerState.assigning) {
          this.pendingHalt = { epoch: c.epoch, reason: c.reason, resumeAtMost: c.resumeAtMost };
          return;
        }
        if (this.current === WorkerState.halting) {
          this.haltEpoch = c.epoch;
          return;
        }
        if (this.current === WorkerState.ready || this.current === WorkerState.training || this.current === WorkerState.halted) {
          this.halt(c.epoch, c.reason, c.resumeAtMost, out);
          return;
        }
        out.push({ type: 'log', level: 'warn', msg: 'a halt came before this node held a stage: nothing to halt', fields: { epoch: c.epoch, state: this.current } });
        return;
      case 'protect':
        out.push({ type: 'configure-smp', plan: c.plan, protectedCommitStep: this.protectedCommitStepValue });
        return;
      case 'limit':
        if (c.toStep === 0) this.stopAfterCurrent = true;
        else this.limit = c.toStep;
        this.paused = c.pause ?? false;
        out.push({ type: 'log', level: 'info', msg: this.paused ? 'pausing at a step boundary' : 'step limit changed', fields: { toStep: c.toStep, pause: this.paused } });
        return;
      case 'stop':
        this.exit(0, `coordinator: ${c.reason}`, out);
        return;
    }
  }

  /** Whether the step just done is the last this stage starts (stage 0 marks its report `last`). */
  isLast(step: number): boolean {
    return this.stopAfterCurrent || (!this.paused && this.limit !== 0 && step + 1 >= this.limit);
  }

  private halt(epoch: number, reason: string, resumeAtMost: number, out: WorkerAction[]): void {
    this.haltEpoch = epoch;
    this.move(WorkerState.halting);
    out.push({ type: 'log', level: 'warn', msg: 'halting', fields: { epoch, reason } });
    out.push({ type: 'halt-training', reason: `halted: ${reason}`, resumeAtMost });
  }

  private onRefused(rpc: string, refusal: Refusal, now: number, out: WorkerAction[]): void {
    switch (refusal.reason) {
      case RefusalReason.fenced:
        this.exit(EXIT_FENCED, `fenced: the coordinator no longer knows this node (${refusal.message})`, out);
        return;
      case RefusalReason.notTraining:
      case RefusalReason.staleEpoch:
      case RefusalReason.stopping:
        // A report of an older epoch than the halt now under way (one sent again to a new leader,
        // which halted this node in its own epoch meanwhile): nothing follows from it.
        if (refusal.reason === RefusalReason.staleEpoch && refusal.givenEpoch !== undefined && refusal.givenEpoch < this.haltEpoch) {
          out.push({ type: 'log', level: 'info', msg: `${rpc} of an older epoch refused: this node was halted in epoch ${this.haltEpoch} since`, fields: { detail: refusal.message } });
          return;
        }
        // A recovery (or the end of the run) began while this report was on its way: the Halt,
        // Assign or Stop that says so follows.
        this.haltExpected ??= {
          atMs: now + this.options.haltGraceMs,
          input: { type: 'fault', message: `the coordinator refused ${rpc} (${refusal.message}) and sent no Halt` },
        };
        out.push({ type: 'log', level: 'info', msg: `${rpc} refused: a halt should follow`, fields: { reason: refusal.reason, detail: refusal.message } });
        return;
      default:
        this.fault(`the coordinator refused ${rpc}: ${refusal.message}`, now, out);
    }
  }

  private fault(message: string, now: number, out: WorkerAction[]): void {
    this.dispatch({ type: 'fault', message }, now, out);
  }

  /**
   * A preemption notice: ask the coordinator to move this node's stage, keep training until it
   * says stop (it pauses at a step boundary and waits for this stage's newest snapshot to be
   * erasure-coded on other nodes), and exit when the grace period is over in any case.
   */
  private onTerminate(graceMs: number, reason: string, now: number, out: WorkerAction[]): void {
    if (this.departing) return;
    if (graceMs <= 0 || this.current === WorkerState.starting) {
      this.exit(EXIT_TERMINATED, `terminated (${reason})`, out);
      return;
    }
    this.departing = true;
    out.push({ type: 'log', level: 'warn', msg: 'leaving: asking the coordinator to move this stage', fields: { graceMs, reason } });
    this.exitDeadline = { atMs: now + graceMs, input: { type: 'shutdown', code: EXIT_TERMINATED, reason: `grace period of ${graceMs / 1000} s over (${reason})` } };
    out.push({ type: 'leave', graceMs, reason });
  }

  private exit(code: number, reason: string, out: WorkerAction[]): void {
    this.haltExpected = null;
    this.exitDeadline = null;
    this.move(WorkerState.stopped);
    out.push({ type: 'exit', code, reason });
  }
}
