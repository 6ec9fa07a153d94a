// `ftrain bench replicas`: what replicas of the pipeline cost and buy, in one invocation, as one
// JSON object with a section per question (issue 14's acceptance). For now the one section is
// `allReduce`: the replicas' ring all-reduce against a raw gRPC stream of the same bytes on
// loopback (bench/replica-ring-bench.ts). Later sections (`snapshotBytes`, `timeLost`) are added
// beside it as named keys; a reader looks sections up by name and ignores those it does not know.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { measureAllReduce, type AllReduceBenchResult } from './replica-ring-bench.ts';
import { sig } from './stats.ts';

export interface ReplicasBenchOptions {
  /** MiB of float32 values the all-reduce sums (and each raw stream carries). */
  readonly megabytes: number;
  readonly replicas: number;
  /** Timed runs of each measurement, after one untimed; figures are medians. */
  readonly repeat: number;
  readonly progress: (line: string) => void;
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
}

/** The ratio issue 14 asks of the all-reduce against one raw stream. */
export const ALL_REDUCE_MIN_RATIO = 0.5;

export async function runReplicasBench(o: ReplicasBenchOptions): Promise<ReplicasBenchResult> {
  const loadAverage1mBefore = loadavg()[0]!;
  o.progress(`bench replicas: all-reduce of ${o.megabytes} MiB over ${o.replicas} replicas (a thread each) against raw gRPC streams of the same bytes, ${o.repeat} timed run(s) each`);
  const r = await measureAllReduce({ megabytes: o.megabytes, replicas: o.replicas, repeat: o.repeat });
  o.progress(`bench replicas: all-reduce ${r.allReduceMBps} MB/s, raw stream ${r.rawStreamMBps} MB/s (ratio ${r.ratio}), both ways at once ${r.bothWaysMBps} MB/s (ratio ${r.ratioToBothWays})`);
  return {
    machine: {
      cpus: availableParallelism(),
      cpuModel: cpus()[0]?.model ?? 'unknown',
      totalMemoryBytes: totalmem(),
      node: process.version,
      loadAverage1mBefore: sig(loadAverage1mBefore),
      loadAverage1mAfter: sig(loadavg()[0]!),
    },
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
  };
}
