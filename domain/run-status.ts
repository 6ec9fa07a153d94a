// The run as the coordinator reports it to tools (Coordinator.Status, the run report, the
// dashboard): node and run states, the failures survived and the one that ended a run.

/** The life cycle of a node as the coordinator sees it (transitions: coordinator/core/node-lifecycle.ts). */
export const NodeState = {
  /** Registered; its command stream may not be open yet. */
  registered: 'registered',
  /** Holds a stage assignment, not yet connected to its peers. */
  assigned: 'assigned',
  /** Connected to its pipeline peers, waiting for Start. */
  ready: 'ready',
  training: 'training',
  /** Halted by a recovery; waits for its new assignment. */
  recovering: 'recovering',
  /** Registered beyond the job's stage count; holds no stage. */
  spare: 'spare',
  /** Told to stop; gone or going. */
  stopped: 'stopped',
  /** Failed: process exit, broken command stream, expired lease or a fault it reported. */
  lost: 'lost',
} as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

/** A node that still counts as part of the cluster. */
export function isLive(state: NodeState): boolean {
  return state !== NodeState.lost && state !== NodeState.stopped;
}

/** The phases of a run (transitions: coordinator/core/run-phase.ts). */
export const RunPhase = {
  waiting: 'waiting-for-nodes',
  starting: 'starting',
  training: 'training',
  recovering: 'recovering',
  complete: 'complete',
  finished: 'finished',
  failed: 'failed',
  stopped: 'stopped',
} as const;
export type RunPhase = (typeof RunPhase)[keyof typeof RunPhase];

/** How a failure was recovered: the cheapest lossless tier that was available. */
export const RecoveryMethod = {
  localSnapshot: 'local-snapshot',
  erasureRebuild: 'erasure-rebuild',
  /** From a live replica of the stage (`--replicas`). */
  replicaCopy: 'replica-copy',
  /** The other replicas trained on without its replica, and the run ended before it joined (`--on-replica-loss`). */
  replicaOut: 'replica-out',
  checkfree: 'checkfree',
  checkfreePlus: 'checkfree-plus',
  diskCheckpoint: 'disk-checkpoint',
} as const;
export type RecoveryMethod = (typeof RecoveryMethod)[keyof typeof RecoveryMethod];

/** A node as Coordinator.Status lists it. */
export interface NodeSummary {
  readonly nodeId: string;
  readonly state: NodeState;
  readonly stage: number | null;
  /** The worker's pid (0: unknown). */
  readonly pid: number;
  readonly smpPid: number;
  readonly agentPid: number;
  readonly hostname: string;
  readonly address: string;
  /** Its snapshot manager's address; empty: none. */
  readonly smpAddress: string;
  /** Its failure domain (`ftrain node --zone`); empty: none given. */
  readonly zone: string;
}

/** The failure that ended a run. */
export interface Failure {
  readonly nodeId: string;
  readonly stage: number | null;
  readonly detail: string;
  /** When the coordinator learned of it. */
  readonly detectedAtMs: number;
}

/** One failure the run survived, as the report lists it. */
/**
 * Where a recovery's time went, in milliseconds. detectMs + replaceMs + readyMs is the time to
 * training resumed (recoverMs). The worker phases are those of the failed stage's worker (its
 * own restore, or its rebuild from erasure shards and then the restore); rollbackMs is the
 * slowest restore of the other stages, which runs beside it.
 */
export interface RecoveryPhases {
  /** The failure (or its detection, when its moment is unknown) to its detection. */
  readonly detectMs: number;
  /** Detection to the assignments: the other stages halted, a node for the stage (a restarted worker, a spare), the plan. */
  readonly replaceMs: number;
  /** The assignments to every stage ready (training resumes at once). */
  readonly readyMs: number;
  /** The failed stage's worker: backend and model made (a node new to the stage). */
  readonly buildMs: number;
  /** Erasure shards fetched, decoded, and the snapshot committed into a slot (0: a local restore). */
  readonly fetchMs: number;
  readonly decodeMs: number;
  readonly commitMs: number;
  /** The snapshot read from its slot and loaded into the backend. */
  readonly restoreMs: number;
  /** Slots readied and pipeline neighbours connected. */
  readonly prepareMs: number;
  readonly connectMs: number;
  /** The other stages going back to the restored step from their own slots: the slowest. */
  readonly rollbackMs: number;
  /** Training resumed to the first step completed; null until then. */
  readonly firstStepMs: number | null;
}

export interface RecoveredFailure {
  /** The step under way when the failure happened. */
  readonly step: number;
  readonly stage: number;
  readonly nodeId: string;
  readonly kind: string;
  readonly method: RecoveryMethod;
  readonly detail: string;
  /** From the failure (where known: an injected one) to its detection; null when unknown. */
  readonly detectMs: number | null;
  /** When the coordinator detected it (its clock, ms since the epoch): tools that caused the failure work out the detection time from it. */
  readonly detectedAtMs: number;
  /** From the failure (or its detection) until training resumed. */
  readonly recoverMs: number;
  /**
   * A planned departure (preemption notice): from the notice until the stage could be moved (the
   * pause at a step boundary and the erasure coding of its newest snapshot); `recoverMs` counts
   * from the move. Null for failures without notice.
   */
  readonly handoverMs?: number | null;
  /** Steps completed before the failure that had to be computed again. */
  readonly lostSteps: number;
  readonly restoredStep: number;
  /**
   * From the failure (or its detection) until the step under way then was complete again: all
   * the failure cost, measured (detection, restore, warm-up and the lost steps computed again,
   * plus that step itself). Null until then.
   */
  readonly caughtUpMs: number | null;
  /** Where the time to training resumed went; absent when the workers did not trace it. */
  readonly phases?: RecoveryPhases;
  /**
   * A replica's loss the other replicas trained on through (`--on-replica-loss keep` or
   * `shrink`): `recoverMs` is until they trained again; the replica joined later.
   */
  readonly trainedOn?: TrainedOn;
}

/** How the other replicas trained on while a lost replica was rebuilt. */
export interface TrainedOn {
  /** The replica that was out. */
  readonly replica: number;
  /** The replica that trained its micro-batches too (keep); null under shrink. */
  readonly host: number | null;
  /** Steps the others completed while it was out. */
  readonly steps: number;
  /** From the failure until the replica trained again (it joined); null: the run ended first. */
  readonly rejoinMs: number | null;
  /** The pause at its join: from the others' stop at the step boundary until every replica trained again. */
  readonly joinPauseMs: number | null;
  /** The step it joined at (the others' snapshot of it, copied); null: the run ended first. */
  readonly joinedAtStep: number | null;
}

/** The run so far, as Coordinator.Status gives it. */
export interface RunSummary {
  readonly phase: RunPhase;
  readonly epoch: number;
  readonly completedSteps: number;
  readonly failure: Failure | null;
  readonly failures: readonly RecoveredFailure[];
}
