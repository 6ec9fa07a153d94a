// The flags of `ftrain chaos`, compiled once into a complete, validated ChaosOptions.

import type { ChaosSecurityFlags } from './chaos-security.ts';
import type { Command } from 'commander';
import { resolve } from 'node:path';
import { OptionError } from '../domain/errors.ts';
import { DEFAULT_JOB, compileJobOptions, intOption, type RawJobOptions } from '../domain/job-options.ts';
import { ChaosKind, DEFAULT_HA_RATES_SPEC, DEFAULT_RATES_SPEC, HA_KINDS, parseRates, type ChaosRates } from './chaos-schedule.ts';

export const DEFAULT_DURATION_SECONDS = 180;
/** Longer than the default lease (2.5 s), so a frozen node is declared lost, then fenced when it wakes. */
export const DEFAULT_FREEZE_SECONDS = 8;
export const DEFAULT_REPLACE_AFTER_SECONDS = 2;
/** An event whose failure is not recovered by then counts as not recovered. */
export const DEFAULT_RECOVERY_WAIT_SECONDS = 60;
/** Pause after each recovery before the next event may fire. */
export const DEFAULT_GAP_SECONDS = 3;
export const DEFAULT_MAX_LOST_STEPS = 1;
/**
 * Chaos begins once the job has trained this many steps: by then every stage holds a snapshot
 * and its erasure shards, so there is something to recover from (a failure before the first
 * snapshot fails the run, rightly).
 */
export const WARMUP_STEPS = 3;
/** One spare: a whole-node loss is taken over at once while its replacement starts. */
export const DEFAULT_CHAOS_SPARES = 1;

/** Job flags `ftrain chaos` passes to the `ftrain run` it starts (local mode only). */
const JOB_FLAGS = [
  ['nodes', '--nodes <n>', 'pipeline stages, one node each (in each replica)', String(DEFAULT_JOB.nodes)],
  ['replicas', '--replicas <n>', 'data-parallel replicas of the pipeline (--nodes x --replicas nodes)', '1'],
  ['spares', '--spares <n>', 'spare nodes beyond one per stage', String(DEFAULT_CHAOS_SPARES)],
  ['backend', '--backend <name>', 'tfjs backend: wasm, cpu or tensorflow', DEFAULT_JOB.backend],
  ['ec', '--ec <k,m>', 'erasure code of snapshots: K,M, auto or off', 'auto'],
  ['recovery', '--recovery <policy>', 'auto, snapshot, checkfree, checkfree-plus or checkpoint', 'auto'],
  ['dModel', '--d-model <n>', 'model width', String(DEFAULT_JOB.dModel)],
  ['heads', '--heads <n>', 'attention heads', String(DEFAULT_JOB.heads)],
  ['seqLen', '--seq-len <n>', 'tokens (bytes) per sequence', String(DEFAULT_JOB.seqLen)],
  ['microBatches', '--micro-batches <n>', 'micro-batches per step', String(DEFAULT_JOB.microBatches)],
  ['microBatchSize', '--micro-batch-size <n>', 'sequences per micro-batch', String(DEFAULT_JOB.microBatchSize)],
  ['layersPerStage', '--layers-per-stage <n>', 'transformer blocks per stage', String(DEFAULT_JOB.layersPerStage)],
  ['heartbeatMs', '--heartbeat-ms <n>', 'node heartbeat interval', String(DEFAULT_JOB.heartbeatMs)],
  ['leaseMs', '--lease-ms <n>', 'a node silent this long is lost', String(DEFAULT_JOB.leaseMs)],
] as const;
type JobFlagKey = (typeof JOB_FLAGS)[number][0];

export function addChaosFlags(cmd: Command): Command {
  cmd
    .option('--coordinator <host:port>', 'attach to a running job instead of starting one; only nodes on this machine (same hostname) can be hit')
    .option('--ha', `the local job runs with --ha (two coordinators, a local etcd of 3 members); adds the kinds coordinator-kill, coordinator-freeze and etcd-kill, and the default rates become ${DEFAULT_HA_RATES_SPEC}`)
    .option('--duration <seconds>', `seconds of chaos, counted from step ${WARMUP_STEPS} (every stage has a snapshot by then); the event in flight then is seen through`, String(DEFAULT_DURATION_SECONDS))
    .option('--seed <n>', 'seed of the schedule and of the targets (and of the local job)', '0')
    .option(
      '--rates <spec>',
      'events per minute of each kind, KIND=RATE,...; kinds: worker-kill (SIGKILL the worker), smp-kill (SIGKILL the snapshot manager), node-kill (SIGKILL agent, worker and snapshot manager), freeze (SIGSTOP them, SIGCONT after --freeze-seconds), preempt (SIGTERM the agent: a spot notice); with --ha also coordinator-kill (SIGKILL the leading coordinator), coordinator-freeze (SIGSTOP it, SIGCONT after --freeze-seconds), etcd-kill (SIGKILL one etcd member); kinds not named: 0',
      DEFAULT_RATES_SPEC,
    )
    .option('--freeze-seconds <s>', 'how long a frozen node stays frozen (longer than the lease: it is declared lost and fenced when it wakes)', String(DEFAULT_FREEZE_SECONDS))
    .option('--replace-after-seconds <s>', 'start a new node this long after a node is gone (smp-kill, node-kill, freeze, preempt), as a spot fleet would', String(DEFAULT_REPLACE_AFTER_SECONDS))
    .option('--recovery-wait-seconds <s>', 'an event not recovered within this long counts as not recovered', String(DEFAULT_RECOVERY_WAIT_SECONDS))
    .option('--gap-seconds <s>', 'pause after each recovery before the next event', String(DEFAULT_GAP_SECONDS))
    .option('--max-lost-steps <n>', 'fail if any failure cost more steps than this', String(DEFAULT_MAX_LOST_STEPS))
    .option('--json <file>', 'write the figures and every event as JSON here')
    .option('--work-dir <dir>', "where the local job's report, logs and output go", '.ftrain/chaos/chaos-TIMESTAMP')
    .option('--tls-dir <dir>', "with --coordinator: the job's TLS directory (`ftrain certs`); its ca.key issues certificates for chaos and for the nodes it starts. A local job gets a CA of its own in the work dir")
    .option('--join-token-file <file>', 'with --coordinator: the job\'s join token, for the nodes chaos starts (or FTRAIN_JOIN_TOKEN); a local job gets a random one')
    .option('--insecure', 'no TLS and no join token (the local job runs `ftrain run --insecure`; attached: the job runs so)');
  for (const [, flag, what, fallback] of JOB_FLAGS) cmd.option(flag, `local job: ${what}`, fallback);
  return cmd;
}

export type ChaosFlagValues = Readonly<Record<JobFlagKey, string>> & {
  readonly coordinator?: string;
  readonly ha?: boolean;
  readonly duration: string;
  readonly seed: string;
  readonly rates: string;
  readonly freezeSeconds: string;
  readonly replaceAfterSeconds: string;
  readonly recoveryWaitSeconds: string;
  readonly gapSeconds: string;
  readonly maxLostSteps: string;
  readonly json?: string;
  readonly workDir: string;
  readonly tlsDir?: string;
  readonly joinTokenFile?: string;
  readonly insecure?: boolean;
};

export type ChaosTarget =
  | {
      readonly mode: 'local';
      /** Flags for `ftrain run` beyond --report, --log-file and --respawn. */
      readonly runArgs: readonly string[];
      readonly stages: number;
      readonly spares: number;
      readonly leaseMs: number;
      /** `ftrain run --ha`: two coordinators and a local etcd of 3 members. */
      readonly ha: boolean;
    }
  | { readonly mode: 'attach'; readonly coordinator: string };

export interface ChaosOptions {
  readonly target: ChaosTarget;
  readonly durationMs: number;
  readonly seed: number;
  readonly rates: ChaosRates;
  readonly freezeMs: number;
  readonly replaceAfterMs: number;
  readonly recoveryWaitMs: number;
  readonly gapMs: number;
  readonly maxLostSteps: number;
  readonly jsonPath: string | null;
  readonly workDir: string;
  /** How chaos and the nodes it starts join the job (chaos-security.ts). */
  readonly security: ChaosSecurityFlags;
}

/** A duration flag in seconds (decimals allowed) from `min` to `max`, as ms. */
function secondsOption(field: string, raw: string, min: number, max: number): number {
  const text = raw.trim();
  const v = Number(text);
  if (text === '' || !Number.isFinite(v) || v < min || v > max) throw new OptionError(field, `must be a number of seconds from ${min} to ${max}, got "${raw}"`);
  return Math.round(v * 1000);
}

function checkHostPort(field: string, raw: string): string {
  const i = raw.lastIndexOf(':');
  const port = Number(raw.slice(i + 1));
  if (i <= 0 || raw.slice(i + 1) === '' || !Number.isInteger(port) || port < 1 || port > 65535) throw new OptionError(field, `must be HOST:PORT, got "${raw}"`);
  return raw;
}

function flagName(key: string): string {
  return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/**
 * Validates every flag. `explicit` holds the keys given on the command line: in attach mode a
 * job flag is an error (the job is already running), not silently ignored.
 */
export function compileChaosOptions(flags: ChaosFlagValues, explicit: ReadonlySet<string>, now = new Date()): ChaosOptions {
  const ha = flags.ha === true;
  const rates = parseRates(ha && !explicit.has('rates') ? DEFAULT_HA_RATES_SPEC : flags.rates);
  const haKind = [...HA_KINDS].find((k) => (rates.get(k) ?? 0) > 0);
  if (haKind && !ha) throw new OptionError('--rates', `${haKind} hits a coordinator or etcd: it needs --ha (a local job with two coordinators and a local etcd)`);
  if (ha && flags.coordinator !== undefined) throw new OptionError('--ha', 'starts a local job with two coordinators; with --coordinator the job is already running: drop one');
  const freezeMs = secondsOption('--freeze-seconds', flags.freezeSeconds, 0.1, 600);
  let target: ChaosTarget;
  if (flags.coordinator !== undefined) {
    const given = JOB_FLAGS.map(([key]) => key).filter((k) => explicit.has(k));
    if (given.length > 0) throw new OptionError(flagName(given[0]!), 'sets up the local job; with --coordinator the job is already running: drop it');
    target = { mode: 'attach', coordinator: checkHostPort('--coordinator', flags.coordinator) };
  } else {
    const raw: RawJobOptions = Object.fromEntries([...JOB_FLAGS.map(([key]) => [key, flags[key]]), ['seed', flags.seed]]);
    const job = compileJobOptions(raw);
    const freezes = (rates.get(ChaosKind.freeze) ?? 0) > 0 || (rates.get(ChaosKind.coordinatorFreeze) ?? 0) > 0;
    if (freezes && freezeMs <= job.leaseMs) {
      throw new OptionError('--freeze-seconds', `must be longer than the lease (--lease-ms ${job.leaseMs}), or a frozen node is never declared lost; got ${flags.freezeSeconds}`);
    }
    const runArgs = [...JOB_FLAGS.flatMap(([key, flag]) => [flag.split(' ')[0]!, flags[key]]), '--seed', String(job.seed), ...(ha ? ['--ha', '--etcd-members', '3'] : [])];
    target = { mode: 'local', runArgs, stages: job.stages, spares: job.spares, leaseMs: job.leaseMs, ha };
  }
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  return {
    target,
    durationMs: secondsOption('--duration', flags.duration, 1, 7 * 86_400),
    seed: intOption('--seed', flags.seed, 0, 0, 0xffff_ffff),
    rates,
    freezeMs,
    replaceAfterMs: secondsOption('--replace-after-seconds', flags.replaceAfterSeconds, 0, 3600),
    recoveryWaitMs: secondsOption('--recovery-wait-seconds', flags.recoveryWaitSeconds, 1, 3600),
    gapMs: secondsOption('--gap-seconds', flags.gapSeconds, 0, 3600),
    maxLostSteps: intOption('--max-lost-steps', flags.maxLostSteps, DEFAULT_MAX_LOST_STEPS, 0, 1_000_000),
    jsonPath: flags.json === undefined ? null : resolve(flags.json),
    workDir: resolve(flags.workDir.replace('TIMESTAMP', stamp)),
    security: {
      ...(flags.tlsDir !== undefined ? { tlsDir: resolve(flags.tlsDir) } : {}),
      ...(flags.joinTokenFile !== undefined ? { joinTokenFile: flags.joinTokenFile } : {}),
      ...(flags.insecure ? { insecure: true } : {}),
    },
  };
}
