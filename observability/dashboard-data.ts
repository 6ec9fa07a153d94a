// What the dashboard page draws, in one JSON shape for both the live page (the coordinator's
// HTTP server streams it) and the static page of a finished run (`ftrain report --html`, built
// from the run report). Times are seconds since training started, on the coordinator's clock.

import type { NodeState, NodeSummary, RecoveredFailure, TrainedOn } from '../domain/run-status.ts';
import type { SnapshotCommit } from '../coordinator/core/core-events.ts';
import type { CoordinatorStatus } from '../coordinator/core/coordinator-status.ts';
import type { NodeMemory } from '../coordinator/core/node-memory.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { CoordinatorRoleState } from './coordinator-role.ts';

export const DASHBOARD_SCHEMA = 'ftrain.dashboard/1';

/** Most loss points and snapshot commits one page holds; older ones are dropped first. */
export const MAX_DASHBOARD_POINTS = 50_000;

/** A node as the page shows it: the coordinator's life cycle, in operators' words. */
export type DashboardNodeState = 'starting' | 'running' | 'recovering' | 'spare' | 'stopped' | 'lost';

export interface DashboardLossPoint {
  /** Steps completed with this loss: the console's "step N" (the core counts steps from 0). */
  readonly step: number;
  readonly seconds: number;
  readonly loss: number;
}

/** One snapshot a stage committed in its snapshot manager. */
export interface DashboardSnapshot {
  readonly stage: number;
  /** Steps completed that it holds. */
  readonly step: number;
  readonly seconds: number;
  /** Time the training loop was blocked by it. */
  readonly stallMs: number;
  /** Time from hand-off to commit (runs beside training). */
  readonly copyMs: number;
  readonly bytes: number;
}

/** With replicas: one stage slot's gradient all-reduce of one step. */
export interface DashboardAllReduce {
  /** The slot: replica x stages + stage. */
  readonly stage: number;
  /** Steps completed with it (the page's step numbering, from 1). */
  readonly step: number;
  readonly seconds: number;
  readonly ms: number;
}

export interface DashboardFailure {
  readonly step: number;
  readonly stage: number;
  readonly nodeId: string;
  readonly kind: string;
  readonly method: string;
  readonly detail: string;
  /** When the coordinator detected it. */
  readonly seconds: number;
  readonly detectMs: number | null;
  /** From the failure (or its detection) until training resumed. */
  readonly recoverMs: number;
  readonly lostSteps: number;
  readonly restoredStep: number;
  /** With replicas: how the others trained on while the lost replica was out; null when they waited. */
  readonly trainedOn: TrainedOn | null;
}

export interface DashboardNode {
  readonly nodeId: string;
  readonly hostname: string;
  readonly address: string;
  /** The worker's pid; 0: unknown. */
  readonly pid: number;
  readonly stage: number | null;
  readonly state: DashboardNodeState;
  /** Shards of other stages' snapshots it holds, per snapshot version. */
  readonly shards: number;
  /** Shard bytes its snapshot manager holds for others, as it last said; null: not reported. */
  readonly heldBytes: number | null;
  /** Its failure domain ('' when none was given). */
  readonly zone: string;
}

/**
 * A node's memory in bytes, as the report gives it: current and peak of the worker's and the
 * snapshot manager's RSS, slot files and shards (inside the manager's RSS), and the node's total.
 */
export type DashboardMemory = NodeMemory;

export interface DashboardPlacement {
  readonly stage: number;
  /** Node holding shard i of each snapshot of the stage. */
  readonly holders: readonly string[];
}

/** What changes as a run goes on, apart from the appended series. */
export interface DashboardStatus {
  readonly phase: string;
  readonly epoch: number;
  readonly completedSteps: number;
  /** Newest step every stage can restore from its local snapshot; -1: none yet. */
  readonly globalCommitStep: number;
  /** Newest step every stage holds erasure-coded on other nodes; -1: none yet. */
  readonly protectedCommitStep: number;
  /** A recovery under way: what failed, and since when. */
  readonly recovering: { readonly stage: number; readonly nodeId: string; readonly detail: string; readonly sinceSeconds: number; readonly othersTrainOn: boolean } | null;
  /** The failure that ended the run, if one did. */
  readonly fatal: { readonly stage: number | null; readonly nodeId: string; readonly detail: string } | null;
  /** Seconds since training started, as of this status (0 before it starts). */
  readonly seconds: number;
  /** "RS(k,m)" and whether placement had to double up, or why erasure coding is off. */
  readonly erasure: { readonly code: string | null; readonly degraded: boolean; readonly disabledReason: string | null };
  /** The snapshot interval in force: every N steps (0: off); `auto` when the coordinator chooses it. */
  readonly snapshotInterval: { readonly mode: 'auto' | 'fixed'; readonly every: number };
  /** With a store (leader and standbys): the coordinator serving the page; absent or null: it runs alone. */
  readonly coordinator?: DashboardCoordinator | null;
}

/** The leading coordinator whose page this is (a standby serves no dashboard, see standby-page.ts). */
export interface DashboardCoordinator {
  readonly id: string;
  readonly term: number;
  /** Why its store cannot be reached (training goes on, no new decision until it answers); null while it answers. */
  readonly storeUnreachable: string | null;
}

export function dashboardCoordinator(state: CoordinatorRoleState): DashboardCoordinator | null {
  return state.role === 'leader' ? { id: state.id, term: state.term, storeUnreachable: state.storeUnreachable } : null;
}

export interface DashboardJob {
  readonly stages: number;
  /** Replicas of the pipeline: a node's `stage` is then its slot, replica x stages + stage. */
  readonly replicas: number;
  /** Steps the run trains; null: until stopped. */
  readonly steps: number | null;
  /** `--snapshot-every`: N (0: off) or `auto` (the status says the interval in force). */
  readonly snapshotEvery: number | 'auto';
  readonly recovery: string;
  readonly backend: string;
  readonly seed: number;
  readonly spares: number;
}

export interface DashboardData {
  readonly schema: typeof DASHBOARD_SCHEMA;
  /** True on the coordinator's page (updates follow), false on a finished run's page. */
  readonly live: boolean;
  readonly job: DashboardJob;
  status: DashboardStatus;
  nodes: DashboardNode[];
  placement: DashboardPlacement[];
  failures: DashboardFailure[];
  /** Every node's memory (absent from pages of reports written before nodes reported it). */
  memory: DashboardMemory[];
  readonly loss: DashboardLossPoint[];
  readonly snapshots: DashboardSnapshot[];
  /** With replicas: every step's all-reduce time per slot (absent from static pages of reports, which keep only means). */
  readonly allReduce?: DashboardAllReduce[];
}

/**
 * What the live page receives after its first DashboardData: the status, nodes, placement,
 * failures and memory replace the page's; `loss` and `snapshots` are appended (dropping the oldest beyond
 * MAX_DASHBOARD_POINTS).
 */
export interface DashboardUpdate {
  readonly status: DashboardStatus;
  readonly nodes: DashboardNode[];
  readonly placement: DashboardPlacement[];
  readonly failures: DashboardFailure[];
  readonly memory: DashboardMemory[];
  readonly loss: DashboardLossPoint[];
  readonly snapshots: DashboardSnapshot[];
  readonly allReduce: DashboardAllReduce[];
}

const NODE_STATE_NAMES: Record<NodeState, DashboardNodeState> = {
  registered: 'starting',
  assigned: 'starting',
  ready: 'starting',
  training: 'running',
  recovering: 'recovering',
  spare: 'spare',
  stopped: 'stopped',
  lost: 'lost',
};

export function dashboardNodeState(state: NodeState): DashboardNodeState {
  return NODE_STATE_NAMES[state];
}

/** `heldBytes`: as the node's snapshot manager last said; a lost node's word is stale (its shards are gone). */
export function dashboardNode(n: Pick<NodeSummary, 'nodeId' | 'hostname' | 'address' | 'pid' | 'stage' | 'state'> & { readonly zone?: string }, shards: number, heldBytes: number | undefined): DashboardNode {
  return {
    nodeId: n.nodeId,
    hostname: n.hostname,
    address: n.address,
    pid: n.pid,
    stage: n.stage,
    state: dashboardNodeState(n.state),
    shards,
    heldBytes: n.state === 'lost' ? null : (heldBytes ?? null),
    zone: n.zone ?? '',
  };
}

/** The loss of step index `step` (from 0) as the page numbers it: steps completed, from 1. */
export function dashboardLossPoint(step: number, seconds: number, loss: number): DashboardLossPoint {
  return { step: step + 1, seconds, loss };
}

/** Seconds from `originMs` (training start) to `atMs`, both on the coordinator's clock. */
export function secondsSince(atMs: number, originMs: number): number {
  return (atMs - originMs) / 1000;
}

/** A snapshot commit as the page and the run report give it: in seconds since training started. */
export function dashboardSnapshot({ atMs, ...commit }: SnapshotCommit, originMs: number): DashboardSnapshot {
  return { ...commit, seconds: secondsSince(atMs, originMs) };
}

export function dashboardFailure(f: RecoveredFailure, originMs: number): DashboardFailure {
  return {
    step: f.step,
    stage: f.stage,
    nodeId: f.nodeId,
    kind: f.kind,
    method: f.method,
    detail: f.detail,
    seconds: secondsSince(f.detectedAtMs, originMs),
    detectMs: f.detectMs,
    recoverMs: f.recoverMs,
    lostSteps: f.lostSteps,
    restoredStep: f.restoredStep,
    trainedOn: f.trainedOn ?? null,
  };
}

export function dashboardJob(j: JobOptions): DashboardJob {
  return { stages: j.stages, replicas: j.replicas, steps: j.steps, snapshotEvery: j.snapshotEvery, recovery: j.recovery, backend: j.backend, seed: j.seed, spares: j.spares };
}

/**
 * The live parts of the coordinator's state, from its status. `originMs`: when training started
 * (the coordinator's clock); `nowMs`: the time of this reading.
 */
export function liveStatus(status: CoordinatorStatus, originMs: number | null, nowMs: number): Pick<DashboardUpdate, 'status' | 'nodes' | 'placement' | 'failures' | 'memory'> {
  const origin = originMs ?? nowMs;
  const e = status.erasure;
  const failure = status.failure;
  const recovering = status.recovering;
  return {
    status: {
      phase: status.phase,
      epoch: status.epoch,
      completedSteps: status.completedSteps,
      globalCommitStep: status.globalCommitStep,
      protectedCommitStep: status.protectedCommitStep,
      recovering: recovering
        ? { stage: recovering.stage, nodeId: recovering.nodeId, detail: recovering.detail, sinceSeconds: secondsSince(recovering.atMs, origin), othersTrainOn: recovering.othersTrainOn ?? false }
        : null,
      fatal: failure ? { stage: failure.stage, nodeId: failure.nodeId, detail: failure.detail } : null,
      seconds: originMs === null ? 0 : secondsSince(nowMs, originMs),
      erasure: { code: e.codeName, degraded: e.degraded, disabledReason: e.disabledReason },
      snapshotInterval: { mode: status.snapshotInterval.mode, every: status.snapshotInterval.every },
    },
    nodes: status.nodes.map((n) => dashboardNode(n, e.shardsPerNode[n.nodeId] ?? 0, e.heldBytesPerNode[n.nodeId])),
    placement: e.placement.map((p) => ({ stage: p.stage, holders: [...p.holders] })),
    failures: status.failures.map((f) => dashboardFailure(f, origin)),
    memory: status.memory.map((m) => ({ ...m })),
  };
}
