// The coordinator's read-only view: a frozen copy of the run as it stands, for the adapter
// (replies, Status, the final weights), tools and observability. Nothing outside the core reads
// the core's parts; they read this.

import { describeCode, type ErasureCode } from '../../domain/erasure-protection.ts';
import type { Failure, NodeSummary, RecoveredFailure, RunPhase } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { FailureLog } from './failure-log.ts';
import { byNodeId, type Membership } from './membership.ts';
import type { NodeMemory, NodeMemoryTracker } from './node-memory.ts';
import type { ShardPlacement } from './shard-placement.ts';
import type { IntervalStatus } from './snapshot-interval.ts';

export interface StageStatus {
  readonly stage: number;
  readonly nodeId: string | null;
  /** Last completed step, -1 before the first. */
  readonly lastStep: number;
  /** Latest committed snapshot, -1 for none. */
  readonly snapshotStep: number;
  /** A slot of a replica that is out while the others train on (`--on-replica-loss`): it trains nothing until it joins. */
  readonly out: boolean;
}

export interface ErasureStatus {
  readonly code: ErasureCode | null;
  /** "RS(k,m)", or null without erasure coding. */
  readonly codeName: string | null;
  readonly disabledReason: string | null;
  readonly degraded: boolean;
  /** Holders of each stage's shards, by shard index. */
  readonly placement: readonly { readonly stage: number; readonly holders: readonly string[] }[];
  /** Shards each node holds per snapshot version, by node id. */
  readonly shardsPerNode: Readonly<Record<string, number>>;
  /** Shard bytes each node's snapshot manager holds for others, as it last said. */
  readonly heldBytesPerNode: Readonly<Record<string, number>>;
}

export interface CoordinatorStatus {
  readonly phase: RunPhase;
  readonly epoch: number;
  /** Steps every stage has completed. */
  readonly completedSteps: number;
  readonly globalCommitStep: number;
  readonly protectedCommitStep: number;
  /** Exclusive step limit, or null to run until stopped. */
  readonly toStep: number | null;
  readonly nodes: readonly NodeSummary[];
  readonly stages: readonly StageStatus[];
  readonly erasure: ErasureStatus;
  /** The failure a recovery under way is for; null when none is. */
  readonly recovering: {
    readonly stage: number;
    readonly nodeId: string;
    readonly detail: string;
    readonly atMs: number;
    /** The other replicas train on meanwhile (`--on-replica-loss keep|shrink`): the replica that is out of it is what is recovering. */
    readonly othersTrainOn?: boolean;
  } | null;
  /** The failure that ended the run. */
  readonly failure: Failure | null;
  /** The failures survived so far. */
  readonly failures: readonly RecoveredFailure[];
  /** Every node's memory as it last said, with the peaks of the run, in node order. */
  readonly memory: readonly NodeMemory[];
  /** The snapshot interval in force (`--snapshot-every`; auto: as last announced). */
  readonly snapshotInterval: IntervalStatus;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function coordinatorStatus(parts: {
  phase: RunPhase;
  epoch: number;
  toStep: number | null;
  failure: Failure | null;
  recovering: CoordinatorStatus['recovering'];
  members: Membership;
  commits: CommitTracker;
  shards: ShardPlacement;
  failures: FailureLog;
  memory: NodeMemoryTracker;
  snapshotInterval: IntervalStatus;
}): CoordinatorStatus {
  const { commits, shards } = parts;
  const nodes = parts.members.summaries();
  return deepFreeze({
    phase: parts.phase,
    epoch: parts.epoch,
    completedSteps: commits.completedSteps,
    globalCommitStep: commits.globalCommitStep,
    protectedCommitStep: commits.protectedCommitStep,
    toStep: parts.toStep,
    nodes,
    stages: commits.stages.map((s, stage) => ({ stage, nodeId: s.nodeId, lastStep: s.lastStep, snapshotStep: s.snapshotStep, out: commits.isParked(stage) })),
    erasure: {
      code: shards.code ? { ...shards.code } : null,
      codeName: shards.code ? describeCode(shards.code) : null,
      disabledReason: shards.disabledReason,
      degraded: shards.placement?.degraded ?? false,
      placement: [...(shards.placement?.plans ?? [])].map(([stage, plan]) => ({ stage, holders: plan.holders.map((h) => h.nodeId) })),
      shardsPerNode: Object.fromEntries(shards.placement?.load ?? []),
      heldBytesPerNode: Object.fromEntries(shards.heldBytes),
    },
    recovering: parts.recovering ? { ...parts.recovering } : null,
    failure: parts.failure ? { ...parts.failure } : null,
    failures: parts.failures.list(),
    memory: parts.memory.list([...nodes].sort(byNodeId)),
    snapshotInterval: { ...parts.snapshotInterval },
  });
}
