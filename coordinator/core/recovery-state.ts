// The state of a recovery under way, and what it needs from the rest of the core: shared by the
// recovery (recovery.ts) and the flow of a replica the others train on without (replica-away.ts).

import type { RestoreTrace } from '../../domain/node-reports.ts';
import type { Failure, RunPhase } from '../../domain/run-status.ts';
import type { Action } from './core-events.ts';
import type { FailureInfo } from './failure-log.ts';
import { RecoveryAnswers } from './recovery-answers.ts';
import type { RecoveryDecision } from './recovery-policy.ts';

/** What the recovery needs from the rest of the core. */
export interface RecoveryContext {
  readonly phase: RunPhase;
  setPhase(to: RunPhase): void;
  readonly epoch: number;
  /** Starts a new epoch: traffic of the old one is refused from now on. */
  nextEpoch(): number;
  failRun(failure: Failure, out: Action[]): void;
  /** The first step at or after `step` whose snapshot every stage takes. */
  nextSnapshotStep(step: number): number;
  /** Sharded snapshots: the slots that wrote the shares of `stage`'s snapshot of `step`, or null (share-layouts.ts). */
  shareLayout(stage: number, step: number): readonly number[] | null;
}

export interface RecoveryState {
  epoch: number;
  /** Stages without a node, and the node that held each. */
  readonly vacant: Map<number, string>;
  /**
   * Stages placed on a node of their own (a returning worker or a node that takes over), with the
   * snapshot steps that node holds locally. What shards can rebuild is worked out when the plan is
   * chosen: holders found lost meanwhile no longer count.
   */
  readonly filled: Map<number, readonly number[]>;
  /** What each stage can restore: its halted report, or its new node's snapshots and shards. */
  readonly snapshotSteps: Map<number, readonly number[]>;
  /** The step each halted survivor's tensors hold as they are, whatever its snapshots (-1: none). */
  readonly memorySteps: Map<number, number>;
  readonly failure: FailureInfo;
  /** Further failures during the same recovery (several nodes lost at once). */
  readonly others: FailureInfo[];
  readonly completedAtFailure: number;
  /** The plan in force once chosen; null while stages are still vacant or unreported. */
  decision: RecoveryDecision | null;
  /** Vacant stages for which the run has said it waits for a node. */
  readonly waitingSaid: Set<number>;
  /** When the assignments of the plan went out; null before. */
  assignedAtMs: number | null;
  /** Each stage's worker trace from its assignment to ready. */
  readonly traces: Map<number, RestoreTrace>;
  /** A replica the others train on without until it joins again (replica-away.ts); null: every replica waits. */
  away: AwayReplica | null;
  /** The halts and assignments of this recovery that wait for their node's answer (recovery-answers.ts). */
  readonly answers: RecoveryAnswers;
  /** Times a further failure sent the survivors back to halt after the plan went out, since training last went on. */
  restarts: number;
}

/** A recovery that starts in `epoch` with its first failure, nothing placed or said yet. */
export function freshRecoveryState(epoch: number, failure: FailureInfo, completedAtFailure: number, away: AwayReplica | null): RecoveryState {
  return {
    epoch,
    vacant: new Map(),
    snapshotSteps: new Map(),
    memorySteps: new Map(),
    filled: new Map(),
    failure,
    others: [],
    completedAtFailure,
    decision: null,
    waitingSaid: new Set(),
    assignedAtMs: null,
    traces: new Map(),
    away,
    answers: new RecoveryAnswers(),
    restarts: 0,
  };
}

/** A replica out while one of its stages is rebuilt, the others training on (replica-away.ts). */
export interface AwayReplica {
  readonly replica: number;
  /** Under keep, the replica that trains the away one's micro-batches too; null under shrink. */
  readonly host: number | null;
  /** Its slots, in order. */
  readonly slots: readonly number[];
  /** When the other replicas trained on without it, and from which step; null until they start. */
  resumed: { readonly step: number; readonly atMs: number } | null;
  /** The step boundary it joins at (the live replicas pause there), once a node holds each of its slots; null before. */
  joinAt: number | null;
  /** Every replica restores the same step now (the join, or a further failure): when that began; null before. */
  restoringSinceMs: number | null;
  /** When the others completed again the step under way at the failure; null before. */
  caughtUpAtMs: number | null;
}
