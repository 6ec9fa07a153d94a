// What goes into the coordinator's core (events, each with the time it happened) and what comes
// out (a reply to the RPC that carried the event, and actions for the adapter to carry out).

import type { Command } from '../../domain/commands.ts';
import type { ProtectionStatus } from '../../domain/erasure-protection.ts';
import type { InjectionKind } from '../../domain/inject-spec.ts';
import type { ProcessMemory, Registration, RestoreTrace, SmpMemoryReport, StepReport } from '../../domain/node-reports.ts';
import type { Refusal } from '../../domain/refusal.ts';
import type { Failure, RecoveredFailure } from '../../domain/run-status.ts';
import type { SnapshotInterval } from '../../domain/snapshot-schedule.ts';

export type CoordinatorEvent =
  | ({ type: 'register' } & Registration)
  /** The node goes away within `graceMs` (a preemption notice): move its stage first. */
  | { type: 'leave'; nodeId: string; graceMs: number; reason: string }
  /** A node's snapshot manager on the protection of its stage's snapshots. */
  | { type: 'protection'; nodeId: string; status: ProtectionStatus; /** The reporting snapshot manager's address; '' when not given. */ smpAddress?: string }
  /** Whether a failed node's snapshot manager still answers (the adapter probes it). */
  | { type: 'smp-probed'; nodeId: string; alive: boolean; detail: string }
  | { type: 'halted'; nodeId: string; stage: number; epoch: number; snapshotSteps: readonly number[]; memoryStep: number }
  /**
   * A failure is about to be caused on purpose (`--inject`): the report names its kind and
   * measures its detection. Announced once; a second announcement of the same one is refused.
   */
  | { type: 'injection'; nodeId: string; stage: number; step: number; kind: InjectionKind }
  /** `memory`: the worker process's, when the heartbeat carries it. */
  /** `heardAtMs`: when it arrived, if before it is fed (the heartbeat desk takes beats while the core is busy). */
  | { type: 'heartbeat'; nodeId: string; memory?: ProcessMemory | null; heardAtMs?: number }
  /** A node's snapshot manager on its memory: its process, slot files and shards held. */
  | ({ type: 'memory' } & SmpMemoryReport)
  | { type: 'commands-opened'; nodeId: string }
  | { type: 'commands-closed'; nodeId: string }
  | { type: 'ready'; nodeId: string; stage: number; epoch?: number; checkpointSteps?: readonly number[]; trace?: RestoreTrace }
  | { type: 'step'; report: StepReport }
  | { type: 'fault'; nodeId: string; stage: number; message: string }
  | { type: 'process-exited'; nodeId: string; detail: string }
  /**
   * The clock, every few hundred ms. `stalledMs`: how long before this tick the coordinator's
   * process did not run (its timer fired that late): heartbeats sent meanwhile may still be
   * unread, so that time counts against no lease.
   */
  | { type: 'tick'; stalledMs?: number }
  /** Graceful: finish the step under way, then complete. Not graceful: stop now. */
  | { type: 'stop-requested'; reason: string; graceful: boolean }
  /** The adapter has read the final weights; stop the nodes. */
  | { type: 'finish' };

/**
 * The answer to the RPC that carried an event; `protectedCommitStep` and `snapshotInterval` (the
 * newest interval of `--snapshot-every auto`, null for a fixed one) go into step replies.
 */
export type Reply =
  | { readonly ok: true; readonly protectedCommitStep: number; readonly snapshotInterval: SnapshotInterval | null }
  | { readonly ok: false; readonly refusal: Refusal };

/** One snapshot a stage reported committed. */
export interface SnapshotCommit {
  readonly stage: number;
  /** Steps completed that it holds. */
  readonly step: number;
  /** When the step report that said so arrived. */
  readonly atMs: number;
  readonly stallMs: number;
  readonly copyMs: number;
  readonly bytes: number;
}

export type Action =
  | { type: 'send'; nodeId: string; command: Command }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  /** A line for the user's progress output too (the adapter also logs it). */
  | { type: 'notice'; level: 'info' | 'warn' | 'error'; msg: string }
  | { type: 'stage-assigned'; stage: number; nodeId: string; address: string; pid: number }
  /** `atMs`: the origin of every "seconds since training started" (report, dashboard). */
  | { type: 'training-started'; fromStep: number; toStep: number | null; resumedFromCheckpoint: boolean; atMs: number }
  /** A stage's step report was taken: its timing, for the report. */
  | { type: 'step-reported'; stage: number; step: number; computeMs: number; waitMs: number; stepMs: number; gradNorm: number; allReduceMs: number }
  /** `microBatches`: trained in the step, every replica's (replicas x micro-batches when none was lost). */
  | { type: 'step-completed'; step: number; loss: number; microBatches: number; atMs: number; commitStep: number }
  /** Every stage has finished the last step: read the weights, then send `finish`. */
  | { type: 'training-complete'; steps: number }
  | { type: 'run-failed'; failure: Failure }
  | { type: 'recovery-started'; stage: number; nodeId: string; detail: string }
  | { type: 'recovered'; failure: RecoveredFailure }
  /** A stage's snapshot manager committed a newer snapshot (as its step report says). */
  | { type: 'snapshot-committed'; snapshot: SnapshotCommit }
  /**
   * `--snapshot-every auto` changed the interval: every stage snapshots every `every` steps from
   * step `fromStep` on; the cost (worst stage's median stall) and step time it was chosen from
   * (null when training restarted), and why.
   */
  | { type: 'snapshot-interval'; fromStep: number; every: number; costMs: number | null; stepMs: number | null; reason: string; atMs: number }
  /** A stage's snapshot manager says how long its last erasure encode took. */
  | { type: 'encode-reported'; stage: number; encodeMs: number }
  /** Ask the failed node's snapshot manager whether it is still there; answer with `smp-probed`. */
  | { type: 'probe-smp'; nodeId: string; address: string }
  /** A worker announced a failure it is about to cause on itself (--inject); it happens once this is out. */
  | { type: 'injection-announced'; nodeId: string; stage: number; step: number; kind: InjectionKind }
  | { type: 'run-stopped'; reason: string }
  | { type: 'run-finished'; steps: number };

export interface Outcome {
  readonly reply: Reply;
  readonly actions: Action[];
}
