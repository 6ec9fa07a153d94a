// The command-line flags that describe a job, shared by `ftrain run` and `ftrain coordinator`.

import { Command, Option } from 'commander';
import { DEFAULT_JOB, intOption, type RawJobOptions } from '../domain/job-options.ts';
import { OptionError } from '../domain/errors.ts';
import { INJECTION_KINDS, INJECTION_KIND_SUMMARY } from '../domain/inject-spec.ts';
import { DEFAULT_DASHBOARD_PORT } from '../observability/dashboard-server.ts';
import { MIN_TOKEN_CHARS, compileDashboardAccess } from '../observability/dashboard-access.ts';
import type { DashboardSettings } from './coordinator-session.ts';

/** `--inject`'s help: every kind the domain knows, so the list cannot fall behind it. */
export function injectHelp(): string {
  const kinds = INJECTION_KINDS.map((k) => `${k} (${INJECTION_KIND_SUMMARY[k]})`);
  return `failures to cause: STEP:STAGE:KIND,... (STEP:STAGE@REPLICA:KIND for one replica's stage; replica 0 when not given) with STEP below --steps and KIND one of ${kinds.join(', ')}`;
}

export function addJobFlags(cmd: Command): Command {
  return cmd
    .option('--nodes <n>', 'pipeline stages, one node each (in each replica)', String(DEFAULT_JOB.nodes))
    .option('--check-every <k>', 'with --replicas: the replicas of each stage compare a digest of their weights after every K-th step; one that differs from the others (silent corruption) is repaired from them (0: never)', '10')
    .option('--on-replica-loss <policy>', 'with --replicas, while a lost replica is rebuilt: keep (the others train on and one of them trains its micro-batches too: the same maths as without the loss), shrink (the others train on with their own micro-batches only) or stop (every replica waits)', 'keep')
    .option('--snapshot-shares <on|off>', 'with --replicas and erasure coding: each replica snapshots only its share of its stage (about 1/D of the bytes per node), and a restore gathers the shares from the replicas; off: every replica snapshots its whole stage (default: on where it applies)')
    .option('--overlap-reduce <on|off>', 'with --replicas: sum the gradients in buckets of whole variables, each as soon as the backward pass has finished it, while the pass goes on; off: all at once after it (the same bits either way; tfjs computes on the thread that carries the streams, so on measured no faster)', 'off')
    .option('--replicas <n>', 'data-parallel replicas of the pipeline: --nodes x --replicas nodes; each step trains --micro-batches per replica, and the replicas of a stage sum their gradients with a ring all-reduce', '1')
    .option('--steps <n>', 'optimizer steps to train (default: until Ctrl-C)')
    .option('--seed <n>', 'seed of weights and batches', String(DEFAULT_JOB.seed))
    .option('--data <file>', 'UTF-8 text to train on, or "moby-dick" (bundled)', DEFAULT_JOB.data)
    .option('--backend <name>', 'tfjs backend: wasm, cpu (deterministic) or tensorflow (needs @tensorflow/tfjs-node[-gpu])', DEFAULT_JOB.backend)
    .option('--micro-batches <n>', 'micro-batches per step (of each replica)', String(DEFAULT_JOB.microBatches))
    .option('--model <preset>', 'model shape preset: default, or wide (257 MiB of training state per stage: --d-model 968 --heads 8 --layers-per-stage 2 --seq-len 16 --micro-batch-size 1); shape flags given override it', 'default')
    .option('--micro-batch-size <n>', `sequences per micro-batch (default: ${DEFAULT_JOB.microBatchSize}, or the --model preset's)`)
    .option('--seq-len <n>', `tokens (bytes) per sequence (default: ${DEFAULT_JOB.seqLen}, or the --model preset's)`)
    .option('--d-model <n>', `model width (default: ${DEFAULT_JOB.dModel}, or the --model preset's)`)
    .option('--heads <n>', `attention heads (default: ${DEFAULT_JOB.heads}, or the --model preset's)`)
    .option('--layers-per-stage <n>', `transformer blocks per stage (default: ${DEFAULT_JOB.layersPerStage}, or the --model preset's)`)
    .option('--ffn-mult <n>', 'MLP width as a multiple of --d-model', String(DEFAULT_JOB.ffnMult))
    .option('--lr <x>', 'Adam learning rate', String(DEFAULT_JOB.lr))
    .option('--clip-norm <x>', 'per-stage gradient clipping norm', String(DEFAULT_JOB.clipNorm))
    .option('--heartbeat-ms <n>', 'node heartbeat interval', String(DEFAULT_JOB.heartbeatMs))
    .option('--lease-ms <n>', 'a node without a heartbeat for this long is lost', String(DEFAULT_JOB.leaseMs))
    .option(
      '--snapshot-every <n|auto>',
      'snapshot every stage into RAM after every N-th step (0: off); auto: every step while a snapshot stalls training at most 2% of a step, otherwise every ceil(stall / 2% of a step) steps, measured and chosen by the coordinator while training',
      String(DEFAULT_JOB.snapshotEvery),
    )
    .option('--recovery <policy>', 'how lost stages come back: auto (local snapshot, erasure rebuild, CheckFree, disk checkpoint: the cheapest that works), or force snapshot, checkfree, checkfree-plus (out-of-order pipelining and copies of the embedding and head: recovers stage 0 and the last stage too; 4 nodes or more) or checkpoint', 'auto')
    .option('--checkfree-lr-scale <x>', 'learning-rate multiplier of a stage rebuilt by CheckFree', '1.1')
    .option('--spares <n>', 'spare nodes to wait for beyond one per stage: they hold erasure shards and take over the stage of a lost node', '0')
    .option('--ec <k,m>', 'erasure-code each snapshot into K data + M parity shards on K+M other nodes; "auto" picks from the node count (stages + spares: 3 nodes: 1,1; 4: 2,1; 5: 3,1; 6: 3,2; 7+: 4,2; fewer than 3: none), "off" keeps snapshots local', 'auto')
    .option('--inject <spec>', injectHelp())
    .option('--recovery-timeout-ms <n>', 'how long a recovery waits: a node that has not answered its halt or assignment by then is given up (a spare takes its stage), and a stage no node has taken by then fails the run', String(DEFAULT_JOB.recoveryTimeoutMs))
    .option('--checkpoint-every <n>', 'also write a durable disk checkpoint after every N-th step (needs --checkpoint-dir)', '0')
    .option('--checkpoint-dir <dir>', 'disk checkpoint directory; a run started with it resumes from the newest checkpoint every stage has')
    .option('--report <file>', 'write the run report (JSON) here at the end')
    .option('--log-file <file>', 'write JSON logs here')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .addOption(new Option('--dump-grads <dir>', 'write each stage\'s first-step gradients here (tests)').hideHelp());
}

export interface JobFlagValues {
  readonly nodes: string;
  readonly replicas: string;
  readonly checkEvery: string;
  readonly onReplicaLoss: string;
  readonly snapshotShares?: string;
  readonly overlapReduce?: string;
  readonly steps?: string;
  readonly seed: string;
  readonly data: string;
  readonly backend: string;
  readonly microBatches: string;
  readonly model: string;
  readonly microBatchSize?: string;
  readonly seqLen?: string;
  readonly dModel?: string;
  readonly heads?: string;
  readonly layersPerStage?: string;
  readonly ffnMult: string;
  readonly lr: string;
  readonly clipNorm: string;
  readonly heartbeatMs: string;
  readonly leaseMs: string;
  readonly report?: string;
  readonly logFile?: string;
  readonly logLevel: string;
  readonly dumpGrads?: string;
  readonly snapshotEvery: string;
  readonly inject?: string;
  readonly recoveryTimeoutMs: string;
  readonly checkpointEvery: string;
  readonly checkpointDir?: string;
  readonly ec: string;
  readonly spares: string;
  readonly recovery: string;
  readonly checkfreeLrScale: string;
}

export function rawJobOptions(v: JobFlagValues): RawJobOptions {
  return {
    nodes: v.nodes,
    replicas: v.replicas,
    checkEvery: v.checkEvery,
    onReplicaLoss: v.onReplicaLoss,
    snapshotShares: v.snapshotShares,
    overlapReduce: v.overlapReduce,
    steps: v.steps,
    seed: v.seed,
    data: v.data,
    backend: v.backend,
    microBatches: v.microBatches,
    model: v.model,
    microBatchSize: v.microBatchSize,
    seqLen: v.seqLen,
    dModel: v.dModel,
    heads: v.heads,
    layersPerStage: v.layersPerStage,
    ffnMult: v.ffnMult,
    lr: v.lr,
    clipNorm: v.clipNorm,
    heartbeatMs: v.heartbeatMs,
    leaseMs: v.leaseMs,
    dumpGrads: v.dumpGrads,
    snapshotEvery: v.snapshotEvery,
    inject: v.inject,
    recoveryTimeoutMs: v.recoveryTimeoutMs,
    checkpointEvery: v.checkpointEvery,
    checkpointDir: v.checkpointDir,
    ec: v.ec,
    spares: v.spares,
    recovery: v.recovery,
    checkfreeLrScale: v.checkfreeLrScale,
  };
}

/** The dashboard flags of `ftrain run` and `ftrain coordinator`. */
export function addDashboardFlags(cmd: Command): Command {
  return cmd
    .option('--dashboard-port <n>', 'port of the dashboard page and /metrics (0: any free port; when the default is taken, a free one is used)', String(DEFAULT_DASHBOARD_PORT))
    .option('--dashboard-host <host>', 'address to serve the dashboard on (0.0.0.0: every interface); on any address but loopback (127.0.0.0/8, ::1, localhost) every request needs a token: see --dashboard-token', '127.0.0.1')
    .option(
      '--dashboard-token <token>',
      `bearer token the dashboard requires (page, API, event stream, standby page, /metrics): Authorization: Bearer TOKEN, ?token=TOKEN (the page then gets a cookie) or that cookie; at least ${MIN_TOKEN_CHARS} characters. Required on loopback too when given. Off loopback without it or --dashboard-token-file, a random token is made; the dashboard: line printed at start carries it as ?token=. /leader and /healthz (probes) stay open. Other users of this machine can see it in ps: prefer --dashboard-token-file`,
    )
    .option('--dashboard-token-file <path>', `read --dashboard-token from this file (trimmed; at least ${MIN_TOKEN_CHARS} characters), e.g. a mounted Kubernetes Secret`)
    .option('--metrics-open', 'serve /metrics (only) without the dashboard token, for a Prometheus that sends none (one can: authorization: {credentials: TOKEN} or credentials_file)')
    .option('--no-dashboard', 'serve no dashboard and no /metrics');
}

export interface DashboardFlagValues {
  readonly dashboardPort: string;
  readonly dashboardHost: string;
  readonly dashboardToken?: string;
  readonly dashboardTokenFile?: string;
  readonly metricsOpen?: boolean;
  readonly dashboard: boolean;
}

export function dashboardSettings(cmd: Command, v: DashboardFlagValues): DashboardSettings | null {
  if (!v.dashboard) return null;
  const port = intOption('--dashboard-port', v.dashboardPort, 0, 0, 65535);
  if (v.dashboardHost.trim() === '') throw new OptionError('--dashboard-host', 'must not be empty');
  const access = compileDashboardAccess({ host: v.dashboardHost, token: v.dashboardToken, tokenFile: v.dashboardTokenFile, metricsOpen: v.metricsOpen === true });
  return { host: v.dashboardHost, port, fallbackToFreePort: cmd.getOptionValueSource('dashboardPort') === 'default', access };
}
