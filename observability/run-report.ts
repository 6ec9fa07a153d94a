// The JSON report of a run (`--report FILE`). One documented schema: see README "Run report".

import { DataError } from '../domain/errors.ts';
import { dashboardSnapshot } from './dashboard-data.ts';
import { tokensPerStep, type JobOptions } from '../domain/job-options.ts';
import { slotCount } from '../domain/replica-slots.ts';
import type { Failure, NodeSummary, RecoveredFailure } from '../domain/run-status.ts';
import type { CoordinatorStatus } from '../coordinator/core/coordinator-status.ts';
import type { RunLedger } from './run-ledger.ts';
import type { RunResult } from '../coordinator/coordinator-server.ts';
import { survivability, survivabilityLines, type LossCount } from '../coordinator/core/survivability.ts';
import { peakRamPerNodeBytes, type NodeMemory } from '../coordinator/core/node-memory.ts';

export const REPORT_SCHEMA = 'ftrain.run-report/1';

/** Steps averaged for `finalLoss`. */
export const FINAL_LOSS_STEPS = 3;

export interface StageTiming {
  readonly stage: number;
  readonly nodeId: string | null;
  readonly computeMsMean: number | null;
  /** With replicas: mean time of the stage's gradient all-reduce per step (inside computeMsMean); null with one replica. */
  readonly allReduceMsMean: number | null;
  readonly waitMsMean: number | null;
  readonly stepMsMean: number | null;
  readonly lastGradNorm: number | null;
}

/** A change of the snapshot interval under `--snapshot-every auto`. */
export interface IntervalChange {
  readonly seconds: number;
  /** Snapshots of steps fromStep, fromStep + every, ... */
  readonly fromStep: number;
  readonly every: number;
  /** The worst stage's median stall and the median step time it was chosen from; null when training (re)started. */
  readonly costMs: number | null;
  readonly stepMs: number | null;
  readonly reason: string;
}

export interface RunReport {
  readonly schema: typeof REPORT_SCHEMA;
  readonly status: RunResult['status'];
  readonly reason: string;
  readonly steps: number;
  /** The disk checkpoint step this run resumed from (0: a fresh start). */
  readonly resumedFromStep: number;
  readonly initialLoss: number | null;
  readonly finalLoss: number | null;
  readonly tokensPerSecond: number | null;
  readonly wallSeconds: number;
  readonly trainingSeconds: number | null;
  readonly backend: string;
  readonly stages: number;
  /** Replicas of the pipeline (`--replicas`). */
  readonly replicas: number;
  /** Each replica snapshotted only its share of its stage (`--snapshot-shares`, with replicas and an erasure code). */
  readonly snapshotShares: boolean;
  readonly weightsDigest: string | null;
  /** Each replica's weights digest (the same definition as weightsDigest), by replica; with one replica, [weightsDigest]. */
  readonly replicaDigests: readonly string[];
  /** Micro-batches trained in each step (every replica's), in step order. */
  readonly microBatchesPerStep: readonly number[];
  readonly seed: number;
  readonly data: string;
  readonly dataSha256: string;
  readonly microBatches: number;
  readonly microBatchSize: number;
  readonly tokensPerStep: number;
  readonly model: JobOptions['model'];
  readonly losses: number[];
  readonly stageTiming: StageTiming[];
  readonly bubble: { readonly measured: number | null; readonly theoretical: number };
  readonly failure: Failure | null;
  /** Failures the run survived, in order. */
  readonly failures: RecoveredFailure[];
  readonly globalCommitStep: number;
  /** Median time between the completions of consecutive steps (first completions only). */
  readonly stepSecondsP50: number | null;
  /** Every step completion, recomputed ones included: seconds since training started, step, loss. */
  readonly timeline: { readonly seconds: number; readonly step: number; readonly loss: number | null }[];
  /** When training started (coordinator clock, ms since the epoch); the origin of every `seconds`. */
  readonly trainingStartedAtMs: number | null;
  readonly recovery: JobOptions['recovery'];
  readonly spares: number;
  /** What the job survives (the statement printed at start): losses at once recovered whichever nodes they hit. */
  readonly survives: { readonly workerCrashes: LossCount; readonly nodeLosses: LossCount; readonly statement: readonly string[] };
  /** The nodes as the coordinator knew them at the end. */
  readonly nodes: NodeSummary[];
  /** Every snapshot commit a stage reported, in order: seconds since training started. */
  readonly snapshotLog: { readonly stage: number; readonly step: number; readonly seconds: number; readonly stallMs: number; readonly copyMs: number; readonly bytes: number }[];
  readonly snapshots: {
    readonly count: number;
    /** The interval in force at the end: a snapshot every N steps (0: off). */
    readonly everySteps: number;
    /** `auto`: chosen by the coordinator while training (`--snapshot-every auto`); `fixed`: `--snapshot-every N`. */
    readonly intervalMode: 'auto' | 'fixed';
    /** Auto: each change of the interval, in order: from which step, why, and when (seconds since training started). */
    readonly intervalChanges: readonly IntervalChange[];
    readonly bytesPerStage: number[];
    /** Median time the training loop was blocked by one snapshot (copy out + wait for commit). */
    readonly stallMsP50: number | null;
    /** Median time from hand-off to commit of one snapshot (runs beside training). */
    readonly copyMsP50: number | null;
    /** Blocked time per snapshot as a share of step time: median stall / mean step time x 100. */
    readonly overheadPct: number | null;
    /** Blocked time per step trained: overheadPct x snapshots per stage / steps trained (the interval spreads it). */
    readonly overheadPctPerStep: number | null;
  };
  /** Erasure coding of snapshots across nodes. */
  readonly erasure: {
    /** "RS(k,m)", or null when off. */
    readonly code: string | null;
    readonly dataShards: number | null;
    readonly parityShards: number | null;
    readonly disabledReason: string | null;
    /** Newest step every stage holds locally and erasure-coded on peers. */
    readonly protectedCommitStep: number;
    readonly degraded: boolean;
    /** Holders of each stage's shards at the end, by shard index. */
    readonly placement: Record<string, string[]>;
    /** Shards each node holds per snapshot version, by node id. */
    readonly shardsPerNode: Record<string, number>;
    /** Shard bytes each node's snapshot manager held for others (as last reported; stage nodes only). */
    readonly heldBytesPerNode: Record<string, number>;
    /** (k+m)/k: peers' RAM per byte of one stage's state, per protected version. */
    readonly memoryOverhead: number | null;
    readonly encodeMsP50: number | null;
  };
  /**
   * Every node's memory in bytes, as it last said, and the peaks of the run (README "Run report"):
   * totalBytes = worker RSS + snapshot manager RSS + slot bytes (shards are inside the manager's RSS).
   */
  readonly memory: NodeMemory[];
  /** The largest peakTotalBytes over the nodes; null when no node reported its memory. */
  readonly peakRamPerNodeBytes: number | null;
}

/** Fields added after the first reports were written: a report read from a file may lack them. */
type NewerReportFields = 'trainingStartedAtMs' | 'recovery' | 'spares' | 'survives' | 'nodes' | 'snapshotLog' | 'memory' | 'peakRamPerNodeBytes' | 'replicas' | 'replicaDigests' | 'microBatchesPerStep';

/** A run report as read back from a file. */
export type StoredRunReport = Omit<RunReport, NewerReportFields> & Partial<Pick<RunReport, NewerReportFields>>;

/** Parses a report written by `--report`; says clearly what is wrong with anything else. */
export function parseRunReport(path: string, text: string): StoredRunReport {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new DataError(`${path}: not JSON (${(err as Error).message}); expected the file a run wrote with --report`, path, { cause: err });
  }
  const v = value as Partial<RunReport> | null;
  if (typeof v !== 'object' || v === null || v.schema !== REPORT_SCHEMA) {
    const schema = typeof v === 'object' && v !== null && 'schema' in v ? `its schema is "${String(v.schema)}"` : 'it has no schema';
    throw new DataError(`${path}: not a run report (${schema}, not "${REPORT_SCHEMA}"); expected the file a run wrote with --report`, path);
  }
  for (const field of ['timeline', 'failures', 'losses', 'stageTiming'] as const) {
    if (!Array.isArray(v[field])) throw new DataError(`${path}: is a damaged run report: "${field}" is missing or not a list`, path);
  }
  if (typeof v.erasure !== 'object' || v.erasure === null || typeof v.snapshots !== 'object' || v.snapshots === null) {
    throw new DataError(`${path}: is a damaged run report: "erasure" or "snapshots" is missing`, path);
  }
  return v as StoredRunReport;
}

export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export interface ReportTimes {
  readonly launchedAtMs: number;
  readonly trainingStartedAtMs: number | null;
  readonly lastStepAtMs: number | null;
  readonly endedAtMs: number;
}

function mean(sum: number, n: number): number | null {
  return n > 0 ? sum / n : null;
}

/** GPipe's idle fraction with S stages and M micro-batches of equal cost. */
export function theoreticalBubble(stages: number, microBatches: number): number {
  return (stages - 1) / (microBatches + stages - 1);
}

export function buildRunReport(
  job: JobOptions,
  dataSha256: string,
  backend: string,
  status: CoordinatorStatus,
  ledger: RunLedger,
  result: RunResult,
  times: ReportTimes,
): RunReport {
  const steps = result.steps;
  // A run resumed from a disk checkpoint knows only the losses of the steps it ran.
  const losses = ledger.losses.slice(ledger.firstStep, steps);
  const tail = losses.slice(-FINAL_LOSS_STEPS);
  const trainingSeconds =
    times.trainingStartedAtMs !== null && times.lastStepAtMs !== null ? (times.lastStepAtMs - times.trainingStartedAtMs) / 1000 : null;
  const stageTiming = ledger.stageTiming.map((t, stage) => ({
    stage,
    nodeId: status.stages[stage]?.nodeId ?? null,
    computeMsMean: mean(t.computeMs, t.steps),
    allReduceMsMean: job.replicas > 1 ? mean(t.allReduceMs, t.steps) : null,
    waitMsMean: mean(t.waitMs, t.steps),
    stepMsMean: mean(t.stepMs, t.steps),
    lastGradNorm: t.lastGradNorm,
  }));
  const ratios = ledger.stageTiming.filter((t) => t.stepMs > 0).map((t) => t.waitMs / t.stepMs);
  const stallMsP50 = percentile(ledger.snapshots.stallMs, 50);
  const stepMeans = stageTiming.map((s) => s.stepMsMean).filter((m): m is number => m !== null);
  const meanStepMs = stepMeans.length > 0 ? stepMeans.reduce((a, b) => a + b, 0) / stepMeans.length : null;
  const overheadPct = stallMsP50 !== null && meanStepMs ? (stallMsP50 / meanStepMs) * 100 : null;
  // Steps trained, those computed again after a rollback included: each may have been snapshotted.
  const stepsTrained = ledger.timeline.length;
  const origin = times.trainingStartedAtMs;
  return {
    schema: REPORT_SCHEMA,
    status: result.status,
    reason: result.reason,
    steps,
    // The first step known (a leader that took over may have been caught up past a step or two).
    initialLoss: losses.find((l) => l !== undefined) ?? null,
    finalLoss: tail.length > 0 ? tail.reduce((a, b) => a + b, 0) / tail.length : null,
    tokensPerSecond: trainingSeconds && trainingSeconds > 0 ? ((steps - ledger.firstStep) * tokensPerStep(job)) / trainingSeconds : null,
    resumedFromStep: ledger.firstStep,
    wallSeconds: (times.endedAtMs - times.launchedAtMs) / 1000,
    trainingSeconds,
    backend,
    stages: job.stages,
    replicas: job.replicas,
    snapshotShares: job.snapshotShares && status.erasure.code !== null,
    weightsDigest: result.weightsDigest,
    replicaDigests: result.replicaDigests && result.replicaDigests.length > 0 ? [...result.replicaDigests] : result.weightsDigest ? [result.weightsDigest] : [],
    microBatchesPerStep: ledger.microBatches.slice(ledger.firstStep, steps),
    seed: job.seed,
    data: job.data,
    dataSha256,
    microBatches: job.microBatches,
    microBatchSize: job.microBatchSize,
    tokensPerStep: tokensPerStep(job),
    model: job.model,
    losses,
    stageTiming,
    bubble: {
      measured: ratios.length > 0 ? ratios.reduce((a, b) => a + b, 0) / ratios.length : null,
      theoretical: theoreticalBubble(job.stages, job.microBatches),
    },
    failure: result.failure,
    failures: [...status.failures],
    globalCommitStep: status.globalCommitStep,
    stepSecondsP50: stepInterval(ledger.stepDoneAtMs),
    timeline: ledger.timeline.map((e) => ({ seconds: (e.atMs - (times.trainingStartedAtMs ?? e.atMs)) / 1000, step: e.step, loss: e.loss })),
    trainingStartedAtMs: times.trainingStartedAtMs,
    recovery: job.recovery,
    spares: job.spares,
    survives: survivesFigures(job),
    nodes: [...status.nodes],
    snapshotLog: ledger.snapshotLog.map((c) => dashboardSnapshot(c, times.trainingStartedAtMs ?? c.atMs)),
    snapshots: {
      count: ledger.snapshots.count,
      everySteps: status.snapshotInterval.every,
      intervalMode: status.snapshotInterval.mode,
      intervalChanges: ledger.intervalChanges.map(({ atMs, ...c }) => ({ seconds: (atMs - (origin ?? atMs)) / 1000, ...c })),
      bytesPerStage: [...ledger.snapshots.bytesPerStage],
      stallMsP50,
      copyMsP50: percentile(ledger.snapshots.copyMs, 50),
      overheadPct,
      overheadPctPerStep: overheadPct !== null && stepsTrained > 0 ? (overheadPct * ledger.snapshots.count) / slotCount(job) / stepsTrained : null,
    },
    erasure: erasureFigures(status, ledger),
    memory: status.memory.map((m) => ({ ...m })),
    peakRamPerNodeBytes: peakRamPerNodeBytes(status.memory),
  };
}

function survivesFigures(job: JobOptions): RunReport['survives'] {
  const s = survivability(job);
  return { workerCrashes: s.workerCrashes, nodeLosses: s.nodeLosses, statement: survivabilityLines(job, s).map((l) => l.trim()) };
}

function erasureFigures(status: CoordinatorStatus, ledger: RunLedger): RunReport['erasure'] {
  const e = status.erasure;
  const code = e.code;
  const placement: Record<string, string[]> = {};
  for (const p of e.placement) placement[String(p.stage)] = [...p.holders];
  return {
    code: e.codeName,
    dataShards: code?.dataShards ?? null,
    parityShards: code?.parityShards ?? null,
    disabledReason: e.disabledReason,
    protectedCommitStep: status.protectedCommitStep,
    degraded: e.degraded,
    placement,
    shardsPerNode: { ...e.shardsPerNode },
    heldBytesPerNode: { ...e.heldBytesPerNode },
    // Shard bytes in peers' RAM per byte of snapshot: (k + m) / k, or as many shards as a degraded
    // plan places (the most of any stage) over k.
    memoryOverhead: code ? Math.max(0, ...e.placement.map((p) => p.holders.length)) / code.dataShards || (code.dataShards + code.parityShards) / code.dataShards : null,
    encodeMsP50: percentile(ledger.encodeMs, 50),
  };
}

function stepInterval(doneAtMs: readonly (number | undefined)[]): number | null {
  const gaps: number[] = [];
  for (let i = 1; i < doneAtMs.length; i++) {
    const a = doneAtMs[i - 1];
    const b = doneAtMs[i];
    if (a !== undefined && b !== undefined) gaps.push((b - a) / 1000);
  }
  return percentile(gaps, 50);
}
