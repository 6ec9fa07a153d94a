// What the coordinator tells a node, over its command stream (proto Command). The coordinator's
// core emits these; the worker's core takes them in.

import type { CheckfreeOrder } from './checkfree.ts';
import type { ProtectionPlan, RebuildOrder, ReplicaCopyOrder } from './erasure-protection.ts';
import type { JobOptions } from './job-options.ts';

/** Run one stage of the job, wired to its neighbours, in `epoch`. */
export interface AssignCommand {
  readonly kind: 'assign';
  readonly stage: number;
  readonly numStages: number;
  readonly prevAddress: string;
  readonly nextAddress: string;
  readonly epoch: number;
  /** Restore the stage's snapshot of this step before training; -1: start fresh. */
  readonly restoreStep: number;
  /** Where the stage's snapshot manager places erasure shards; null: no erasure coding. */
  readonly plan: ProtectionPlan | null;
  /** Rebuild `restoreStep` from peers' shards first (the node took over a lost stage). */
  readonly rebuild: RebuildOrder | null;
  /** Copy `restoreStep` from a live replica's snapshot manager first (the node took over a lost stage whose replica lives). */
  readonly replicaCopy?: ReplicaCopyOrder | null;
  /** Rebuild the stage from its neighbours' weights (CheckFree) instead of restoring. */
  readonly checkfree?: CheckfreeOrder | null;
  /** The replica of the pipeline the stage belongs to (0 with one): the node's slot is replica * numStages + stage. */
  readonly replica: number;
  /** This stage's address in each replica, by replica, for the gradient all-reduce; empty with one replica. */
  readonly replicaAddresses: readonly string[];
  /**
   * While a replica is out (`--on-replica-loss keep`): the replicas whose micro-batches this
   * replica trains as well, ascending; this worker plays their ranks in the ring too (their
   * addresses are this node's). Absent or empty: none.
   */
  readonly guestReplicas?: readonly number[];
  /** While a replica is out (`--on-replica-loss shrink`): the replicas out of the ring and the batch, ascending (their addresses are empty). */
  readonly outReplicas?: readonly number[];
  /**
   * Sharded snapshots: the slot snapshots share `shareIndex` of `shareCount` of the stage's state
   * (domain/share-layout.ts). Absent (or a count of 1): the whole state.
   */
  readonly shareIndex?: number;
  readonly shareCount?: number;
  /**
   * The snapshot managers that hold the stage's other shares of `restoreStep`; the restore gathers
   * them with this node's own. Absent or empty: restore from this node's slots alone.
   */
  readonly shareSources?: readonly ShareSource[];
  /**
   * Sharded snapshots: restore `restoreStep` from a live replica's worker, which holds it in its
   * tensors (a lost slot whose own share of the step is gone), not from shares.
   */
  readonly stateSource?: StateSource;
  /**
   * The nodes this stage exchanges traffic with in this epoch: its neighbours in its replica and
   * the nodes of its replicas' ring. With TLS, the worker takes pipeline and all-reduce streams
   * only from these. Absent: not said (an older coordinator): any member.
   */
  readonly peerNodeIds?: readonly string[];
}

/** A live replica's worker that serves its stage's whole state (Worker.FetchState). */
export interface StateSource {
  readonly slot: number;
  /** host:port of its Worker service. */
  readonly address: string;
}

/** A replica slot of the stage and the snapshot manager that serves its snapshots (FetchSnapshot, stage = slot). */
export interface ShareSource {
  readonly slot: number;
  /** host:port of its SnapshotManager service. */
  readonly smpAddress: string;
}

/** Train steps [fromStep, toStep); toStep 0: until stopped. */
export interface StartCommand {
  readonly kind: 'start';
  readonly fromStep: number;
  readonly toStep: number;
  /** Load this disk checkpoint first; -1: none. */
  readonly restoreCheckpointStep: number;
  /** Back to the initial weights and a fresh optimizer first (a rollback to step 0). */
  readonly fromScratch?: boolean;
}

/** To stage 0: start no step from `toStep` on (0: after the step under way); with `pause` the run does not end there. */
export interface LimitCommand {
  readonly kind: 'limit';
  readonly toStep: number;
  readonly pause?: boolean;
}

/** Stop training now, abandon the step under way, report the snapshots held. */
export interface HaltCommand {
  readonly kind: 'halt';
  readonly epoch: number;
  readonly reason: string;
  /**
   * Training resumes from this step or an earlier one (the fewest steps a failed stage had
   * reported): a stage whose update would complete a later step may abandon it.
   */
  readonly resumeAtMost: number;
}

export interface StopCommand {
  readonly kind: 'stop';
  readonly reason: string;
  readonly failed: boolean;
}

/** A new erasure protection plan for the stage's snapshot manager; null: none. */
export interface ProtectCommand {
  readonly kind: 'protect';
  readonly plan: ProtectionPlan | null;
}

export type Command = AssignCommand | ProtectCommand | StartCommand | LimitCommand | HaltCommand | StopCommand;

/** An assignment as a node receives it: with the compiled job and the training text's digest. */
export interface ReceivedAssign extends AssignCommand {
  readonly job: JobOptions;
  readonly dataSha256: string;
}

/** A command as a node receives it. */
export type ReceivedCommand = Exclude<Command, AssignCommand> | ReceivedAssign;
