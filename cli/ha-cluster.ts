// `ftrain run --ha`: the local cluster with a coordinator that is not a single point of failure.
// A local etcd (1 or 3 members, from PATH), two `ftrain coordinator --store` child processes (one
// leads, the other stands by) and one `ftrain node` per slot that knows both. The console shows
// the leading coordinator's progress; the run ends when a coordinator ends it. `--inject
// STEP:coordinator:kill|freeze` hits the leader when the run has completed STEP steps: SIGKILL,
// or SIGSTOP and SIGCONT well after its lease ran out (it then finds itself deposed);
// `kill-in-recovery` SIGKILLs it at the first recovery under way from step STEP on; `partition`
// cuts it off from etcd (not from its nodes or the other coordinator) for PARTITION_MS;
// `STEP:etcd:kill` SIGKILLs one etcd member (with `--etcd-members 3` the others go on);
// `STEP:etcd:stop` SIGSTOPs every member for ETCD_STOP_MS (the store unreachable), then SIGCONT.
// As a Deployment and a StatefulSet would, the launcher starts again a coordinator that was killed
// (it stands by) and an etcd member that was killed (it rejoins with its data).

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import * as grpc from '@grpc/grpc-js';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { GRPC_CHANNEL_OPTIONS, loadProto } from '../common/proto.ts';
import { freePort, startLocalEtcd } from '../coordinator/store/local-etcd.ts';
import { OptionError } from '../domain/errors.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { slotCount } from '../domain/replica-slots.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { defaultLogFile } from './local-cluster.ts';
import { StorePartition } from './store-partition.ts';
import type { DashboardSettings } from './coordinator-session.ts';
import { channelCredentials } from '../common/transport.ts';
import { tokenPlaceholder } from '../observability/dashboard-access.ts';
import { prepareRunSecurity, type RunSecurityFlags } from './run-security.ts';

/** Coordinators `--ha` starts: a leader and one standby. */
export const HA_COORDINATORS = 2;
/** The coordinators' leader lease under `--ha`: a standby leads within about this long. */
export const HA_LEADER_LEASE_MS = 2000;
/** A frozen leader stays stopped this long: well past its lease, so a standby has taken over. */
export const COORDINATOR_FREEZE_MS = 3 * HA_LEADER_LEASE_MS;
/** How often the launcher asks the leader how far the run is (for `--inject ...:coordinator:...`). */
const POLL_MS = 100;

export type CoordinatorInjectionKind = 'kill' | 'freeze' | 'kill-in-recovery' | 'partition' | 'etcd-kill' | 'etcd-stop';

/** How long `STEP:coordinator:partition` keeps the leader cut off from etcd. */
export const PARTITION_MS = 10_000;

/**
 * A killed coordinator is started again after this long (a killed etcd member after
 * ETCD_RESPAWN_MS): past the leader lease, so that the standby, warm, takes over first.
 */
export const COORDINATOR_RESPAWN_MS = 2 * HA_LEADER_LEASE_MS;
export const ETCD_RESPAWN_MS = 3000;

/** How long `STEP:etcd:stop` keeps every etcd member stopped. */
export const ETCD_STOP_MS = 10_000;

export interface CoordinatorInjection {
  readonly step: number;
  readonly kind: CoordinatorInjectionKind;
}

/**
 * Takes the `STEP:coordinator:KIND` items out of an `--inject` value: they are the launcher's
 * (it owns the coordinators' processes); the rest goes to the job as before.
 */
export function splitCoordinatorInjections(raw: string | undefined): { coordinator: CoordinatorInjection[]; rest: string | undefined } {
  if (!raw) return { coordinator: [], rest: raw };
  const coordinator: CoordinatorInjection[] = [];
  const rest: string[] = [];
  for (const item of raw.split(',').map((s) => s.trim()).filter(Boolean)) {
    const etcd = /^(\d+):etcd:(\w+)$/.exec(item);
    if (etcd) {
      if (etcd[2] !== 'kill' && etcd[2] !== 'stop') throw new OptionError('--inject', `"${item}": etcd can be hit with kill (one member) or stop (every member for ${ETCD_STOP_MS / 1000} s), not "${etcd[2]}"`);
      coordinator.push({ step: Number(etcd[1]), kind: etcd[2] === 'kill' ? 'etcd-kill' : 'etcd-stop' });
      continue;
    }
    const m = /^(\d+):coordinator:([\w-]+)$/.exec(item);
    if (!m) {
      if (/:coordinator:/.test(item)) throw new OptionError('--inject', `"${item}" is not STEP:coordinator:KIND (kill, freeze, kill-in-recovery or partition)`);
      rest.push(item);
      continue;
    }
    const kind = m[2]!;
    if (kind !== 'kill' && kind !== 'freeze' && kind !== 'kill-in-recovery' && kind !== 'partition') throw new OptionError('--inject', `"${item}": a coordinator can be hit with kill, freeze, kill-in-recovery or partition, not "${kind}"`);
    coordinator.push({ step: Number(m[1]), kind });
  }
  return { coordinator, rest: rest.length > 0 ? rest.join(',') : undefined };
}

export interface HaClusterOptions {
  readonly job: JobOptions;
  readonly injections: readonly CoordinatorInjection[];
  /** etcd members: 1, or 3 (one may be killed without effect). */
  readonly etcdMembers: 1 | 3;
  readonly standby: boolean;
  readonly reportPath: string | null;
  readonly logFile: string | null;
  readonly logLevel: string;
  /** Each coordinator serves its dashboard (the leader the run's, a standby a page naming the leader); null: none. */
  readonly dashboard: DashboardSettings | null;
  /** `--insecure`, `--tls-dir`, the join token: how the run is protected (run-security.ts). */
  readonly security: RunSecurityFlags;
  readonly print?: (line: string) => void;
}

/**
 * The dashboard flags of coordinator `i`: the first on the port asked for (the default one falls
 * back to a free port when taken), the others on the next ports, or free ones. `tokenFile`: where
 * the launcher wrote the dashboard's token, so that every coordinator requires the same one (a
 * file, not the token itself: argv is public); null when the dashboard needs none.
 */
export function coordinatorDashboardArgs(d: DashboardSettings | null, i: number, tokenFile: string | null = null): string[] {
  if (!d) return ['--no-dashboard'];
  const port = d.fallbackToFreePort ? (i === 0 ? null : 0) : d.port === 0 ? 0 : d.port + i;
  const access = [...(tokenFile ? ['--dashboard-token-file', tokenFile] : []), ...(d.access.metricsOpen ? ['--metrics-open'] : [])];
  return ['--dashboard-host', d.host, ...(port === null ? [] : ['--dashboard-port', String(port)]), ...access];
}

interface CoordinatorProcess {
  readonly id: string;
  readonly address: string;
  readonly child: ChildProcess;
  readonly client: CoordinatorClient;
  exited: { code: number | null; signal: NodeJS.Signals | null } | null;
}

export async function runHaCluster(options: HaClusterOptions): Promise<number> {
  const print = options.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const job = options.job;
  const logFile = resolve(options.logFile ?? defaultLogFile());
  mkdirSync(dirname(logFile), { recursive: true });
  const logFd = openSync(logFile, 'a');
  const etcd = await startLocalEtcd({ size: options.etcdMembers });
  const runId = `ftrain-run-${process.pid}-${Date.now()}`;
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  const jobFile = join(base, `${runId}-job.json`);
  writeFileSync(jobFile, JSON.stringify(job));
  const token = options.dashboard?.access.token ?? null;
  const tokenFile = token === null ? null : join(base, `${runId}-dashboard-token`);
  if (tokenFile) writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  const ports = [];
  for (let i = 0; i < HA_COORDINATORS; i++) ports.push(await freePort());
  const addresses = ports.map((p) => `127.0.0.1:${p}`);
  const nodeCount = slotCount(job) + job.spares;
  // The coordinators share one certificate (`coordinator`), the launcher's too (it asks them their status).
  const security = await prepareRunSecurity(options.security, Array.from({ length: nodeCount }, (_, i) => `node-${i}`));
  print(`ftrain: ${HA_COORDINATORS} coordinators on ${addresses.join(',')} (one leads), their state in a local etcd of ${options.etcdMembers} member(s) (${etcd.url}), ${nodeCount} nodes, backend ${job.backend}`);
  print(`  logs: ${logFile}`);
  print(`  ${security.describe()}`);

  // Under a partition injection each coordinator reaches etcd through proxies of its own.
  const partitions = options.injections.some((i) => i.kind === 'partition') ? await Promise.all(addresses.map(() => StorePartition.start(etcd.url))) : [];
  const coordinators: CoordinatorProcess[] = [];
  let leaderId: string | null = null;
  let ended: { code: number } | null = null;
  let stopping = false;
  let settle!: () => void;
  const done = new Promise<void>((r) => (settle = r));
  const startCoordinator = (i: number): void => {
    const id = `coord-${i + 1}`;
    const child = spawn(
      process.execPath,
      [
        FTRAIN_BIN, 'coordinator',
        '--job-json', jobFile,
        '--listen', addresses[i]!,
        '--store', partitions[i]?.url ?? etcd.url,
        '--store-job', runId,
        '--coordinator-id', id,
        '--leader-lease', String(HA_LEADER_LEASE_MS),
        ...coordinatorDashboardArgs(options.dashboard, i, tokenFile),
        '--log-file', logFile,
        '--log-level', options.logLevel,
        ...(options.reportPath ? ['--report', options.reportPath] : []),
        ...(security.tlsDir !== null ? ['--tls-dir', security.tlsDir] : []),
        ...(security.joinToken === null ? ['--insecure'] : []),
      ],
      { stdio: ['ignore', 'pipe', logFd], env: { ...process.env, ...security.nodeEnv(), FTRAIN_MANAGED: '1' } },
    );
    coordinators[i]?.client.close();
    const c: CoordinatorProcess = { id, address: addresses[i]!, child, client: new (loadProto().ftrain.v1.Coordinator)(addresses[i]!, channelCredentials(), GRPC_CHANNEL_OPTIONS), exited: null };
    coordinators[i] = c;
    // The leader's lines are the run's progress; a standby says only what its role is.
    createInterface({ input: child.stdout! }).on('line', (text) => {
      let line = text;
      if (line.startsWith('LEADING:')) leaderId = id;
      // The coordinators read the dashboard token from the launcher's file; the launcher made it and shows it.
      if (tokenFile && token) line = line.replace(tokenPlaceholder(tokenFile), token);
      if (line.startsWith('LEADING:') || line.startsWith('standby:') || (line.startsWith('  dashboard:') && line.trim() !== 'dashboard: off')) print(`[${id}] ${line.trim()}`);
      else if (leaderId === id && !/^(ftrain coordinator|  nodes join with|  logs:|  dashboard:|  survives|    |  cannot survive)/.test(line)) print(line);
    });
    child.on('exit', (code, signal) => {
      c.exited = { code, signal };
      const wasLeader = leaderId === id;
      if (wasLeader) leaderId = null;
      // A leader that ends on its own ends the run (it finished it, or failed).
      if (signal === null && !ended && wasLeader) {
        ended = { code: code ?? 1 };
        settle();
        return;
      }
      // Killed: started again, as a Deployment would, to stand by.
      if (signal !== null && !ended && !stopping) {
        print(`[launcher] coordinator ${id} was killed (${signal}): starting it again in ${COORDINATOR_RESPAWN_MS / 1000} s`);
        setTimeout(() => {
          if (!ended && !stopping) startCoordinator(i);
        }, COORDINATOR_RESPAWN_MS).unref();
      }
    });
  };
  for (let i = 0; i < HA_COORDINATORS; i++) startCoordinator(i);

  const children = new Map<string, ChildProcess>();
  const dirs: string[] = [];
  for (let i = 0; i < nodeCount; i++) {
    const nodeId = `node-${i}`;
    const dir = join(base, `${runId}-${nodeId}`);
    dirs.push(dir);
    const child = spawn(
      process.execPath,
      [FTRAIN_BIN, 'node', '--coordinator', addresses.join(','), '--node-id', nodeId, '--listen', '127.0.0.1:0', '--log-level', options.logLevel, '--snapshot-dir', dir, ...(options.standby ? [] : ['--no-standby']), ...security.nodeArgs()],
      { stdio: ['pipe', logFd, logFd], env: { ...process.env, ...security.nodeEnv(), FTRAIN_MANAGED: '1' } },
    );
    children.set(nodeId, child);
    child.on('exit', () => children.delete(nodeId));
  }

  // The injections: the leader's completed steps, asked of each coordinator (a standby refuses).
  const pending = [...options.injections].sort((a, b) => a.step - b.step);
  const poll = setInterval(() => {
    const next = pending[0];
    if (!next || stopping) return;
    const leader = coordinators.find((c) => c.id === leaderId && !c.exited);
    if (!leader) return;
    leader.client.Status({}, { deadline: Date.now() + 1000 }, (err, s) => {
      if (err || !s?.run || pending[0] !== next || Number(s.run.completedSteps) < next.step) return;
      if (next.kind === 'kill-in-recovery' && s.run.phase !== 'RUN_PHASE_RECOVERING') return;
      pending.shift();
      const pid = leader.child.pid!;
      if (next.kind === 'etcd-stop') {
        print(`[launcher] injecting etcd stop: SIGSTOP to every etcd member at step ${next.step}, SIGCONT in ${ETCD_STOP_MS / 1000} s`);
        for (const m of etcd.members) m.process.kill('SIGSTOP');
        setTimeout(() => {
          print('[launcher] etcd resumed: SIGCONT to every member');
          for (const m of etcd.members) m.process.kill('SIGCONT');
        }, ETCD_STOP_MS).unref();
        return;
      }
      if (next.kind === 'etcd-kill') {
        const alive = etcd.members.filter((m) => m.exited === null);
        const member = alive[0];
        if (!member) return;
        print(`[launcher] injecting etcd kill: SIGKILL to etcd member ${member.name} at step ${next.step} (${alive.length - 1} of ${etcd.members.length} left)`);
        etcd.kill(member.name);
        return;
      }
      if (next.kind === 'partition') {
        const partition = partitions[coordinators.indexOf(leader)]!;
        print(`[launcher] injecting coordinator partition: the leader ${leader.id} cut off from etcd (its nodes and the other coordinator still reach it) at step ${next.step}, for ${PARTITION_MS / 1000} s`);
        partition.cutNow();
        setTimeout(() => {
          print(`[launcher] partition healed: ${leader.id} reaches etcd again`);
          partition.heal();
        }, PARTITION_MS).unref();
      } else if (next.kind === 'kill' || next.kind === 'kill-in-recovery') {
        const when = next.kind === 'kill' ? `at step ${next.step}` : `during the recovery at step ${s.run.completedSteps}`;
        print(`[launcher] injecting coordinator kill: SIGKILL to the leader ${leader.id} (pid ${pid}) ${when}`);
        leader.child.kill('SIGKILL');
      } else {
        print(`[launcher] injecting coordinator freeze: SIGSTOP to the leader ${leader.id} (pid ${pid}) at step ${next.step}, SIGCONT in ${COORDINATOR_FREEZE_MS / 1000} s`);
        leader.child.kill('SIGSTOP');
        setTimeout(() => leader.child.kill('SIGCONT'), COORDINATOR_FREEZE_MS).unref();
      }
      leaderId = null;
    });
  }, POLL_MS);
  // A killed leader leaves the run to the standby (and is started again); if every coordinator
  // ended on its own, the run is over. A killed etcd member is started again with its data.
  const restarting = new Set<string>();
  const allGone = setInterval(() => {
    if (!ended && coordinators.every((c) => c.exited && c.exited.signal === null)) {
      ended = { code: 1 };
      print('FAILED: every coordinator is gone');
      settle();
    }
    for (const m of etcd.members) {
      if (m.exited === null || restarting.has(m.name) || stopping || ended) continue;
      restarting.add(m.name);
      print(`[launcher] etcd member ${m.name} ${m.exited}: starting it again in ${ETCD_RESPAWN_MS / 1000} s`);
      setTimeout(() => {
        if (stopping || ended) return;
        etcd.restart(m.name).then(
          () => print(`[launcher] etcd member ${m.name} is back`),
          (err: unknown) => print(`[launcher] etcd member ${m.name} could not be started again: ${(err as Error).message}`),
        ).finally(() => restarting.delete(m.name));
      }, ETCD_RESPAWN_MS).unref();
    }
  }, 500);

  // Ctrl-C or SIGTERM to the launcher stops the run: SIGINT to the coordinators (with a store,
  // SIGTERM would make a coordinator leave the run to a standby instead).
  const onSignal = () => () => {
    for (const c of coordinators) if (!c.exited) c.child.kill('SIGINT');
  };
  const onSigint = onSignal();
  const onSigterm = onSignal();
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    await done;
    return (ended as { code: number } | null)?.code ?? 1;
  } finally {
    stopping = true;
    clearInterval(poll);
    clearInterval(allGone);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    for (const c of coordinators) {
      c.client.close();
      if (!c.exited) {
        c.child.kill('SIGCONT');
        c.child.kill('SIGTERM');
      }
    }
    await stopAll([...children.values(), ...coordinators.map((c) => c.child)]);
    for (const m of etcd.members) if (m.exited === null) m.process.kill('SIGCONT');
    await Promise.all(partitions.map((p) => p.close()));
    await etcd.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    rmSync(jobFile, { force: true });
    security.close();
    if (tokenFile) rmSync(tokenFile, { force: true });
    closeSync(logFd);
  }
}

/** Waits for children to exit; SIGTERM after 5 s, SIGKILL after 9 s. */
async function stopAll(children: ChildProcess[]): Promise<void> {
  const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const exits = children.map((c) => new Promise<void>((r) => (running(c) ? c.once('exit', () => r()) : r())));
  const term = setTimeout(() => children.filter(running).forEach((c) => c.kill('SIGTERM')), 5000);
  const kill = setTimeout(() => children.filter(running).forEach((c) => c.kill('SIGKILL')), 9000);
  await Promise.all(exits);
  clearTimeout(term);
  clearTimeout(kill);
}
