// `ftrain bench replicas`: what replicas of the pipeline cost and buy, in one invocation, as one
// JSON object with a section per question (issue 14's acceptance): `allReduce`, the replicas' ring
// all-reduce against a raw gRPC stream of the same bytes on loopback (bench/replica-ring-bench.ts);
// `snapshotBytes`, the snapshot bytes a node holds with one replica and with two; `timeLost`, the
// time a lost node costs by tier. A reader looks sections up by name and ignores those it does
// not know.

import { mkdirSync, rmSync } from 'node:fs';
import { loadavg } from 'node:os';
import { resolve } from 'node:path';
import { runOnce } from './pipeline-bench.ts';
import { medianSide, side, type SideFigures } from './recovery-bench.ts';
import { measureAllReduce, type AllReduceBenchResult } from './replica-ring-bench.ts';
import { machineFigures, median, sig } from './stats.ts';

export interface ReplicasBenchOptions {
  /** MiB of float32 values the all-reduce sums (and each raw stream carries). */
  readonly megabytes: number;
  readonly replicas: number;
  /** Timed runs of each measurement, after one untimed; figures are medians. */
  readonly repeat: number;
  /** Runs of each recovery tier for `timeLost`; 0 leaves the section out. */
  readonly timeLostRuns: number;
  /** Runs of each replica count for `snapshotBytes`; 0 leaves the section out. */
  readonly snapshotBytesRuns: number;
  /** Runs of each setting of `--overlap-reduce` for `overlap`; 0 leaves the section out. */
  readonly overlapRuns: number;
  /** Where the disk restart's checkpoints go: a real disk, not tmpfs. */
  readonly diskDir: string;
  readonly progress: (line: string) => void;
}

/** The pipeline the time-lost runs train (the default model, wasm) and where its node is killed. */
const TIME_LOST = { stages: 2, killStep: 75, stage: 1, checkpointEvery: 50, backend: 'wasm' } as const;

/** `timeLost`: one whole node lost, recovered by each tier, medians of the runs. */
export interface TimeLostSection {
  readonly settings: Readonly<Record<string, number | string>>;
  /** Seconds lost per tier (measured: kill until the interrupted step is done again, less one step). */
  readonly lostSeconds: { readonly replicaCopy: number; readonly erasureRebuild: number; readonly diskRestart: number };
  readonly ratios: { readonly erasureRebuildToReplicaCopy: number; readonly diskRestartToReplicaCopy: number };
  readonly replicaCopy: Record<string, number | string>;
  readonly erasureRebuild: Record<string, number | string>;
  readonly diskRestart: Record<string, number | string>;
}

/**
 * The node of stage 1 killed at the start of step 75, recovered three ways: by a copy from its
 * live replica (two replicas), by an erasure rebuild (one replica: the copy is not there) and by
 * a restart from the disk checkpoint of step 50 (one replica). Each run forces nothing but what
 * it needs: `--recovery snapshot` leaves the erasure rebuild as the only tier for a lost node,
 * `checkpoint` the disk.
 */
async function measureTimeLost(o: ReplicasBenchOptions): Promise<TimeLostSection> {
  const t = TIME_LOST;
  const steps = t.killStep + 3;
  const common = ['--nodes', String(t.stages), '--spares', '1', '--steps', String(steps), '--backend', t.backend];
  const copy: SideFigures[] = [];
  const erasure: SideFigures[] = [];
  const disk: SideFigures[] = [];
  for (let r = 0; r < o.timeLostRuns; r++) {
    const seed = ['--seed', String(r)];
    const say = (what: string, s: SideFigures) => o.progress(`bench replicas: run ${r + 1}/${o.timeLostRuns}: ${what} lost ${s.lostSeconds.toFixed(2)} s (detect ${s.detectSeconds.toFixed(3)} s, restore ${s.restoreSeconds.toFixed(2)} s, ${s.lostSteps} step(s) again, step ${s.stepSeconds.toFixed(2)} s)`);
    o.progress(`bench replicas: run ${r + 1}/${o.timeLostRuns}: node of stage ${t.stage} killed at step ${t.killStep} (${steps} steps), 2 replicas: replica copy`);
    const c = side(await runOnce([...common, ...seed, '--replicas', '2', '--inject', `${t.killStep}:${t.stage}@1:node-kill`]), 'replica-copy');
    say('replica copy', c);
    o.progress(`bench replicas: run ${r + 1}/${o.timeLostRuns}: the same, 1 replica: erasure rebuild`);
    const e = side(await runOnce([...common, ...seed, '--recovery', 'snapshot', '--inject', `${t.killStep}:${t.stage}:node-kill`]), 'erasure-rebuild');
    say('erasure rebuild', e);
    const dir = resolve(o.diskDir, `replicas-${process.pid}-${r}`);
    mkdirSync(dir, { recursive: true });
    o.progress(`bench replicas: run ${r + 1}/${o.timeLostRuns}: the same, 1 replica: restart from the disk checkpoint of step ${t.checkpointEvery}`);
    try {
      const d = side(await runOnce([...common, ...seed, '--ec', 'off', '--recovery', 'checkpoint', '--checkpoint-every', String(t.checkpointEvery), '--checkpoint-dir', dir, '--inject', `${t.killStep}:${t.stage}:node-kill`]), 'disk-checkpoint');
      say('disk restart', d);
      disk.push(d);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    copy.push(c);
    erasure.push(e);
  }
  const lost = (xs: SideFigures[]) => median(xs.map((s) => s.lostSeconds));
  const [c, e, d] = [lost(copy), lost(erasure), lost(disk)];
  return {
    settings: {
      ...t,
      steps,
      runs: o.timeLostRuns,
      spares: 1,
      lostSeconds: `from the kill until the step under way then is complete again, less one median step time; replica copy with 2 replicas (its steps take about twice as long on 2 cores: 4 node processes), erasure rebuild and disk restart (a checkpoint every ${t.checkpointEvery} steps) with 1`,
    },
    lostSeconds: { replicaCopy: sig(c), erasureRebuild: sig(e), diskRestart: sig(d) },
    ratios: { erasureRebuildToReplicaCopy: sig(e / c), diskRestartToReplicaCopy: sig(d / c) },
    replicaCopy: medianSide(copy),
    erasureRebuild: medianSide(erasure),
    diskRestart: medianSide(disk),
  };
}

/** The pipeline the snapshot-bytes runs train: the default model, wasm, a snapshot every step. */
const SNAPSHOT_BYTES = { stages: 2, steps: 8, backend: 'wasm' } as const;

/** Snapshot bytes per node that holds a stage: its own snapshots (slot files) and the shards it holds for others. */
export interface SnapshotBytesPerNode {
  readonly slotBytes: number;
  readonly shardBytes: number;
  readonly totalBytes: number;
}

/** `snapshotBytes`: what a node holds of snapshots with one replica and with two of the same pipeline. */
export interface SnapshotBytesSection {
  readonly settings: Readonly<Record<string, number | string>>;
  readonly oneReplica: SnapshotBytesPerNode;
  readonly twoReplicas: SnapshotBytesPerNode;
  /** oneReplica.totalBytes / twoReplicas.totalBytes: about 2 with snapshots shared out among the replicas. */
  readonly ratio: number;
  /** Whether each replica snapshots only its share of the stage's state. */
  readonly sharded: boolean;
  /** What the figures are. */
  readonly definition: string;
}

/** The peaks of the nodes that held a stage at the end of a run, averaged. */
export function bytesPerNode(report: Awaited<ReturnType<typeof runOnce>>): SnapshotBytesPerNode {
  const staged = new Set(report.nodes.filter((n) => n.stage !== null).map((n) => n.nodeId));
  const nodes = report.memory.filter((m) => staged.has(m.nodeId));
  if (nodes.length === 0) throw new Error('no node reported its memory');
  const mean = (f: (m: (typeof nodes)[number]) => number | null) => nodes.reduce((n, m) => n + (f(m) ?? 0), 0) / nodes.length;
  const slotBytes = mean((m) => m.peakSlotBytes);
  const shardBytes = mean((m) => m.peakShardBytes);
  return { slotBytes: Math.round(slotBytes), shardBytes: Math.round(shardBytes), totalBytes: Math.round(slotBytes + shardBytes) };
}

/**
 * The default model's 2 stages with a spare, once with one replica and once with two (erasure
 * coding as `auto` chooses it for each node count), a snapshot every step: the mean over the
 * nodes holding a stage of their peak slot-file bytes and of the shard bytes their snapshot
 * manager held for others, medians of the runs.
 */
async function measureSnapshotBytes(o: ReplicasBenchOptions): Promise<SnapshotBytesSection> {
  const t = SNAPSHOT_BYTES;
  const common = ['--nodes', String(t.stages), '--spares', '1', '--steps', String(t.steps), '--backend', t.backend, '--snapshot-every', '1'];
  const one: SnapshotBytesPerNode[] = [];
  const two: SnapshotBytesPerNode[] = [];
  let sharded = true;
  for (let r = 0; r < o.snapshotBytesRuns; r++) {
    o.progress(`bench replicas: snapshot bytes, run ${r + 1}/${o.snapshotBytesRuns}: ${t.stages} stages, 1 replica, then 2`);
    one.push(bytesPerNode(await runOnce([...common, '--seed', String(r)])));
    const report = await runOnce([...common, '--seed', String(r), '--replicas', '2']);
    sharded &&= report.snapshotShares;
    two.push(bytesPerNode(report));
  }
  const med = (xs: SnapshotBytesPerNode[]): SnapshotBytesPerNode => ({
    slotBytes: median(xs.map((x) => x.slotBytes)),
    shardBytes: median(xs.map((x) => x.shardBytes)),
    totalBytes: median(xs.map((x) => x.totalBytes)),
  });
  const [a, b] = [med(one), med(two)];
  o.progress(`bench replicas: snapshot bytes per node ${a.totalBytes} with 1 replica, ${b.totalBytes} with 2`);
  return {
    settings: { ...t, spares: 1, runs: o.snapshotBytesRuns, snapshotEvery: 1 },
    oneReplica: a,
    twoReplicas: b,
    ratio: sig(a.totalBytes / b.totalBytes),
    // --snapshot-shares, on by default with replicas and erasure coding.
    sharded: o.snapshotBytesRuns > 0 && sharded,
    definition:
      'per node that holds a stage, the mean of its peak bytes in snapshot slot files (its own snapshots) and of the erasure shards its snapshot manager held for other nodes, with 1 and with 2 replicas of the same pipeline; ratio: 1 replica over 2 (about 2 when each replica snapshots only its share of its stage, --snapshot-shares)',
  };
}

/**
 * The pipeline the overlap runs train: 2 replicas of 2 stages, each stage 2 blocks of width 512
 * (about 6.3 M parameters, 25 MiB of gradient: 6 buckets), one micro-batch per replica so the
 * backward pass is short beside the all-reduce, the cpu backend (deterministic).
 */
const OVERLAP = { stages: 2, replicas: 2, steps: 6, backend: 'cpu', dModel: 512, layersPerStage: 2, microBatches: 1, microBatchSize: 2, seqLen: 32 } as const;

/** One side of the overlap comparison: medians of its runs. */
export interface OverlapSide {
  /** Median of the runs' median step time. */
  readonly stepSeconds: number;
  /** The time a step waited for its all-reduce after its backward pass, mean over the stages, median of the runs. */
  readonly allReduceWaitMs: number;
  readonly weightsDigest: string;
}

/** `overlap`: the same job with the all-reduce overlapped with the backward pass and after it. */
export interface OverlapSection {
  readonly settings: Readonly<Record<string, number | string>>;
  readonly on: OverlapSide;
  readonly off: OverlapSide;
  /** off.stepSeconds / on.stepSeconds: above 1 when the overlap pays. */
  readonly speedup: number;
  /** The digests of every run agree: the overlap changes no bit. */
  readonly sameDigest: boolean;
}

async function measureOverlap(o: ReplicasBenchOptions): Promise<OverlapSection> {
  const t = OVERLAP;
  const common = ['--nodes', String(t.stages), '--replicas', String(t.replicas), '--steps', String(t.steps), '--backend', t.backend, '--d-model', String(t.dModel), '--layers-per-stage', String(t.layersPerStage), '--micro-batches', String(t.microBatches), '--micro-batch-size', String(t.microBatchSize), '--seq-len', String(t.seqLen), '--seed', '1'];
  const runs: Record<'on' | 'off', Awaited<ReturnType<typeof runOnce>>[]> = { on: [], off: [] };
  for (let r = 0; r < o.overlapRuns; r++) {
    // Alternate which goes first, so a drift in the machine's speed falls on both.
    for (const setting of r % 2 === 0 ? (['off', 'on'] as const) : (['on', 'off'] as const)) {
      const report = await runOnce([...common, '--overlap-reduce', setting]);
      runs[setting].push(report);
      o.progress(`bench replicas: overlap, run ${r + 1}/${o.overlapRuns}, --overlap-reduce ${setting}: step ${report.stepSecondsP50?.toFixed(3)} s, all-reduce wait ${waitMs(report).toFixed(0)} ms`);
    }
  }
  const sideOf = (xs: Awaited<ReturnType<typeof runOnce>>[]): OverlapSide => ({
    stepSeconds: sig(median(xs.map((x) => x.stepSecondsP50 ?? Number.NaN))),
    allReduceWaitMs: sig(median(xs.map(waitMs))),
    weightsDigest: xs[0]?.weightsDigest ?? '',
  });
  const [on, off] = [sideOf(runs.on), sideOf(runs.off)];
  const digests = new Set([...runs.on, ...runs.off].map((x) => x.weightsDigest));
  return {
    settings: { ...t, runs: o.overlapRuns, gradientBytesPerStage: 'see the run report', allReduceWaitMs: 'the time a step waited for the all-reduce once its backward pass was over (the whole all-reduce with --overlap-reduce off)' },
    on,
    off,
    speedup: sig(off.stepSeconds / on.stepSeconds),
    sameDigest: digests.size === 1,
  };
}

/** The mean over a report's stages of the time a step waited for the all-reduce after its backward pass. */
function waitMs(report: Awaited<ReturnType<typeof runOnce>>): number {
  const xs = report.stageTiming.map((s) => s.allReduceMsMean ?? 0);
  return xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
}

/** The all-reduce section: the figure (`ratio`, at least 0.5 asked) and what bounds it. */
export interface AllReduceSection {
  readonly megabytes: number;
  readonly replicas: number;
  readonly repeat: number;
  /** The vector's bytes over the median time of the whole all-reduce, in MB/s (1e6 B/s). */
  readonly allReduceMBps: number;
  /** One raw AllReduce stream of the same bytes, ~1 MiB messages with back-pressure. */
  readonly rawStreamMBps: number;
  /** allReduceMBps / rawStreamMBps. */
  readonly ratio: number;
  /** Two raw streams of the same bytes at once, one each way (a ring of two's traffic), the bytes of one over the time. */
  readonly bothWaysMBps: number;
  /** allReduceMBps / bothWaysMBps: how near the ring comes to the bound the machine sets. */
  readonly ratioToBothWays: number;
  readonly target: { readonly minRatio: number; readonly met: boolean };
  /** Each timed run, in ms. */
  readonly runs: AllReduceBenchResult['runsMs'];
}

export interface ReplicasBenchResult {
  readonly machine: {
    readonly cpus: number;
    readonly cpuModel: string;
    readonly totalMemoryBytes: number;
    readonly node: string;
    /** Other load skews every figure here (the parties share the cores with it). */
    readonly loadAverage1mBefore: number;
    readonly loadAverage1mAfter: number;
  };
  readonly definitions: Readonly<Record<string, string>>;
  readonly allReduce: AllReduceSection;
  /** Absent when `snapshotBytesRuns` is 0. */
  readonly snapshotBytes?: SnapshotBytesSection;
  /** Absent when `timeLostRuns` is 0. */
  readonly timeLost?: TimeLostSection;
  /** Absent when `overlapRuns` is 0. */
  readonly overlap?: OverlapSection;
}

/** The ratio issue 14 asks of the all-reduce against one raw stream. */
export const ALL_REDUCE_MIN_RATIO = 0.5;

export async function runReplicasBench(o: ReplicasBenchOptions): Promise<ReplicasBenchResult> {
  const loadAverage1mBefore = loadavg()[0]!;
  o.progress(`bench replicas: all-reduce of ${o.megabytes} MiB over ${o.replicas} replicas (a thread each) against raw gRPC streams of the same bytes, ${o.repeat} timed run(s) each`);
  const r = await measureAllReduce({ megabytes: o.megabytes, replicas: o.replicas, repeat: o.repeat });
  o.progress(`bench replicas: all-reduce ${r.allReduceMBps} MB/s, raw stream ${r.rawStreamMBps} MB/s (ratio ${r.ratio}), both ways at once ${r.bothWaysMBps} MB/s (ratio ${r.ratioToBothWays})`);
  const snapshotBytes = o.snapshotBytesRuns > 0 ? await measureSnapshotBytes(o) : null;
  const timeLost = o.timeLostRuns > 0 ? await measureTimeLost(o) : null;
  const overlap = o.overlapRuns > 0 ? await measureOverlap(o) : null;
  return {
    machine: machineFigures(loadAverage1mBefore),
    definitions: {
      allReduceMBps: 'the vector bytes over the median wall time of one all-reduce on every replica (each a thread with its own gRPC server, as each worker has a process), on loopback; MB = 1e6 bytes',
      rawStreamMBps: 'the same bytes over the median time of one raw Worker.AllReduce stream from one party to another, in ~1 MiB messages with back-pressure, until the receiver answered',
      bothWaysMBps: 'the same bytes over the median time of two such streams at once, one each way between two parties (the slower of the two): the traffic of a ring of two replicas, which bounds it when the cores, not the loopback, are the limit',
    },
    allReduce: {
      megabytes: o.megabytes,
      replicas: r.replicas,
      repeat: r.repeat,
      allReduceMBps: r.allReduceMBps,
      rawStreamMBps: r.rawStreamMBps,
      ratio: r.ratio,
      bothWaysMBps: r.bothWaysMBps,
      ratioToBothWays: r.ratioToBothWays,
      target: { minRatio: ALL_REDUCE_MIN_RATIO, met: r.ratio >= ALL_REDUCE_MIN_RATIO },
      runs: r.runsMs,
    },
    ...(snapshotBytes ? { snapshotBytes } : {}),
    ...(timeLost ? { timeLost } : {}),
    ...(overlap ? { overlap } : {}),
  };
}
