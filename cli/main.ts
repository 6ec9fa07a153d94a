// The `ftrain` command.

import { Command, Option } from 'commander';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { errorMessage, OptionError, DataError, BackendUnavailableError } from '../domain/errors.ts';
import { RunEndedError } from '../domain/refusal.ts';
import { EXIT_USAGE, FINAL_WORKER_EXITS } from '../domain/exit-codes.ts';
import { DEFAULT_JOB, MAX_SLOTS, compileJobOptions, intOption, parseBackend } from '../domain/job-options.ts';
import { createLogger } from '../common/logging.ts';
import { addDashboardFlags, addJobFlags, dashboardSettings, rawJobOptions, type DashboardFlagValues, type JobFlagValues } from './job-flags.ts';
import { joinHint } from './join-hint.ts';
import { hostOf } from '../domain/host-port.ts';
import { ListenError } from '../common/proto.ts';
import { SUCCESSOR_ENV, standBy, tellAgent } from './agent-channel.ts';
import { LISTEN_FLAG_ENV, joinFailureCode, waitingLines, writeExitNote } from './join-failure.ts';
import { resolveCoordinatorHost } from '../worker/coordinator-address.ts';
import { DEFAULT_SLOT_COUNT } from '../domain/snapshot-slots.ts';
import { survivabilityLines } from '../coordinator/core/survivability.ts';
import { slotCount } from '../domain/replica-slots.ts';
import { parseZone } from '../domain/zones.ts';
import { addCertsCommand } from './certs.ts';
import { JOIN_TOKEN_ENV, addCoordinatorSecurityFlags, addMemberSecurityFlags, coordinatorSecurity, memberSecurity, securityLines, type SecurityFlagValues } from './security-flags.ts';
// Each command loads what it runs when it runs (`await import`): a node agent or a snapshot
// manager does not load tfjs, the coordinator does not load the worker. A cluster starts several
// processes per node on few cores, so what each one loads is start-up time.

function fail(err: unknown): never {
  const known = err instanceof OptionError || err instanceof DataError || err instanceof BackendUnavailableError;
  // A worker under a node agent hands its last line to the agent, which ends the node and says it.
  if (!(known && writeExitNote(errorMessage(err)))) process.stderr.write(`ftrain: ${errorMessage(err)}\n`);
  if (!known && process.env.FTRAIN_DEBUG) process.stderr.write(`${(err as Error).stack ?? ''}\n`);
  process.exit(known ? EXIT_USAGE : 1);
}

function parsePort(field: string, raw: string): number {
  const port = Number(raw);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new OptionError(field, `must be a port from 0 to 65535, got "${raw}"`);
  return port;
}

/** `--coordinator A[,B...]`: each a host:port; returned as the list the node's link takes. */
function checkCoordinators(raw: string): string {
  const list = raw.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (list.length === 0) throw new OptionError('--coordinator', 'must name at least one coordinator as HOST:PORT');
  return list.map((a) => checkHostPort('--coordinator', a)).join(',');
}

function checkHostPort(field: string, raw: string): string {
  const i = raw.lastIndexOf(':');
  if (i <= 0) throw new OptionError(field, `must be HOST:PORT, got "${raw}"`);
  parsePort(field, raw.slice(i + 1));
  return raw;
}

/** A pid from the environment, or 0 when absent or not a pid. */
function positivePid(raw: string | undefined): number {
  const pid = Number(raw);
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

/** A count flag: an integer from 1 up. */
function positiveInt(field: string, raw: string): number {
  return intOption(field, raw, 0, 1, 1_000_000);
}

const program = new Command('ftrain')
  .description('Fault-tolerant pipeline-parallel training over gRPC')
  .version('0.1.0')
  .showHelpAfterError('(run with --help for usage)')
  // Every command made below inherits this: an unknown option or command, a missing or bad
  // argument, or a command given without its subcommand exits with the usage code, as an
  // OptionError does; --help and --version still exit 0.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : EXIT_USAGE));

const runCommand = addDashboardFlags(
  addJobFlags(
    program
      .command('run')
      .description('train on a local cluster: a coordinator and one node process per stage on 127.0.0.1, with a live dashboard')
      .option('--respawn <n>', 'replace up to N lost nodes with new node processes, as a spot fleet replaces reclaimed instances', '0')
      .option('--port <n>', 'coordinator port (0 picks a free one)', '0')
      .option('--no-standby', 'nodes keep no warm standby worker: a crashed worker is restarted cold (`ftrain node --no-standby`)')
      .option('--zones <n>', 'spread the nodes over N failure domains (`ftrain node --zone z0`, z1, ... in turn; 0: none): see --inject zone-kill', '0')
      .option('--ha', "no single point of failure: a local etcd (the `etcd` on PATH) and two coordinators, one leading, the other standing by (a killed one is started again); --inject STEP:coordinator:kill|kill-in-recovery|freeze|partition hits the leader, STEP:etcd:kill|stop the store")
      .option('--etcd-members <n>', 'with --ha: members of the local etcd, 1 or 3 (one of 3 may be lost with no effect)', '1')
      .option('--insecure', 'no TLS and no join token (by default the run makes a CA, a certificate per process and a token in a private directory, removed at the end)')
      .option('--tls-dir <dir>', 'issue the certificates from the CA in DIR (`ftrain certs init`) and keep them there, instead of a CA made for the run: other nodes can then be given certificates of the same CA')
      .option('--join-token-file <file>', `the join token, from a file (or ${'FTRAIN_JOIN_TOKEN'}); default: a random one`),
  ),
);
runCommand.action(async (flags: JobFlagValues & DashboardFlagValues & SecurityFlagValues & { port: string; respawn: string; standby: boolean; zones: string; ha?: boolean; etcdMembers: string }) => {
  try {
    const { splitCoordinatorInjections, runHaCluster } = await import('./ha-cluster.ts');
    const split = splitCoordinatorInjections(flags.inject);
    if (split.coordinator.length > 0 && !flags.ha) throw new OptionError('--inject', 'STEP:coordinator:KIND and STEP:etcd:kill|stop need --ha (a standby coordinator to take over, a local etcd)');
    const job = compileJobOptions(rawJobOptions({ ...flags, inject: split.rest }));
    if (flags.ha) {
      const members = intOption('--etcd-members', flags.etcdMembers, 1, 1, 3);
      if (members !== 1 && members !== 3) throw new OptionError('--etcd-members', `must be 1 or 3, got ${members}`);
      if (Number(flags.respawn ?? 0) > 0 || Number(flags.zones ?? 0) > 0) throw new OptionError('--ha', '--respawn and --zones are not supported with --ha yet');
      const dashboard = dashboardSettings(runCommand, flags);
      const code = await runHaCluster({ job, injections: split.coordinator, etcdMembers: members, standby: flags.standby, reportPath: flags.report ?? null, logFile: flags.logFile ?? null, logLevel: flags.logLevel, dashboard, security: flags });
      process.exit(code);
    }
    const port = parsePort('--port', flags.port);
    const respawn = intOption('--respawn', flags.respawn, 0, 0, 10_000);
    const dashboard = dashboardSettings(runCommand, flags);
    const zones = intOption('--zones', flags.zones, 0, 0, MAX_SLOTS);
    const { runLocalCluster } = await import('./local-cluster.ts');
    const code = await runLocalCluster({ job, respawn, zones, standby: flags.standby, reportPath: flags.report ?? null, logFile: flags.logFile ?? null, logLevel: flags.logLevel, port, dashboard, security: flags });
    process.exit(code);
  } catch (err) {
    fail(err instanceof ListenError ? err.toOptionError('--port') : err);
  }
});

const coordinatorCommand = addDashboardFlags(
  addJobFlags(
    program
      .command('coordinator')
      .description('run the coordinator of a job, with its dashboard; nodes join with `ftrain node --coordinator HOST:PORT`. With --store, start it on two or more machines: one leads, the others stand by and take over when it goes')
      .option('--listen <host:port>', 'address to serve gRPC on', '0.0.0.0:7070')
      .option('--heartbeat-port <n>', "port of the heartbeat desk on the --listen host: the nodes' heartbeats go there and are answered however busy the coordinator is (nodes learn it when they register; open it to them as the --listen port; 0: a free one)", '0')
      .option('--store <url>', "where the coordinator's state lives: 'memory' (this process; the default) or etcd://HOST:PORT[,HOST:PORT...] for a leader and standbys sharing it (then SIGTERM makes a coordinator leave and a standby take the run over; SIGINT on the leader stops the run)", 'memory')
      .option('--store-job <name>', 'the job\'s name in the store: coordinators of one job give the same name', 'default')
      .option('--coordinator-id <id>', 'this coordinator\'s name among the job\'s coordinators (default: HOSTNAME-PID)')
      .option('--advertise <host:port>', 'address nodes reach this coordinator at (default: --listen, with this host\'s name for 0.0.0.0)')
      .option('--leader-lease <ms>', 'a leader that stops renewing its lease (dead, frozen, cut off) loses the leadership this long after; etcd counts whole seconds, at least 2', '3000')
      .option(
        '--dashboard-advertise <url>',
        "with --store: the URL of this coordinator's dashboard, published while it leads; a standby's page links to it (default: http://<--advertise host>:<dashboard port>/ with --dashboard-host 0.0.0.0, else the address the dashboard serves on). The dashboard is the leader's: a standby serves a page naming the leader, /leader answers 200 on the leader and 503 on a standby",
      )
      // `ftrain run --ha`'s own: the job as the launcher compiled it.
      .addOption(new Option('--job-json <file>', 'the compiled job, as JSON').hideHelp()),
  ),
);
addCoordinatorSecurityFlags(coordinatorCommand);
coordinatorCommand.action(async (flags: JobFlagValues & DashboardFlagValues & SecurityFlagValues & { tlsName?: string; listen: string; heartbeatPort: string; store: string; storeJob: string; coordinatorId?: string; advertise?: string; leaderLease: string; dashboardAdvertise?: string; jobJson?: string }) => {
  try {
    const job = flags.jobJson ? (JSON.parse(readFileSync(flags.jobJson, 'utf8')) as ReturnType<typeof compileJobOptions>) : compileJobOptions(rawJobOptions(flags));
    const listen = checkHostPort('--listen', flags.listen);
    const heartbeatPort = intOption('--heartbeat-port', flags.heartbeatPort, 0, 0, 65_535);
    const security = await coordinatorSecurity(flags, flags.store !== 'memory');
    const ha = await haOptions(flags, listen);
    const dashboard = withDashboardAdvertise(dashboardSettings(coordinatorCommand, flags), flags.dashboardAdvertise, ha !== null);
    const { defaultLogFile } = await import('./local-cluster.ts');
    const { CoordinatorSession } = await import('./coordinator-session.ts');
    const logFile = resolve(flags.logFile ?? defaultLogFile('coordinator'));
    const logger = createLogger({ name: 'coordinator', file: logFile, level: flags.logLevel });
    const print = (l: string) => process.stdout.write(`${l}\n`);
    const session = new CoordinatorSession({ job, listen, heartbeatPort, reportPath: flags.report ?? null, logger, print, dashboard, joinToken: security.joinToken, ...(ha ? { ha } : {}) });
    const port = await session.start();
    if (ha) print(`ftrain coordinator ${ha.id} on ${hostOf(listen)}:${port}, state in ${ha.store.description} (job "${flags.storeJob}"): standing for leader`);
    print(`ftrain coordinator on ${hostOf(listen)}:${port}: waiting for ${slotCount(job) + job.spares} nodes`);
    print(`  ${joinHint(hostOf(listen), port, hostname(), { tlsDir: security.tls ? flags.tlsDir! : null, token: security.joinToken !== null })}`);
    for (const line of securityLines(security, flags.tlsDir ?? null)) print(`  ${line}`);
    print(`  heartbeats: port ${session.server.heartbeatPort} (the heartbeat desk; open it to the nodes too)`);
    print(`  logs: ${logFile}`);
    print(session.dashboardLine());
    for (const line of survivabilityLines(job)) print(line);
    // Leaving the job without ending the run: a standby has no run to stop, and a leader writes
    // its last decisions and lets its lease run out, so a standby takes the run over.
    const leave = async (why: string) => {
      if (session.server.leads) print(`${why}: coordinator ${ha!.id} leaves; a standby takes the run over within --leader-lease (Ctrl-C / SIGINT on the leader stops the run)`);
      await session.close();
      await ha?.store.close();
      process.exit(0);
    };
    process.on('SIGINT', () => (ha && !session.server.leads ? void leave('SIGINT') : session.interrupt()));
    // With a store, SIGTERM (a pod deleted or evicted, a machine drained, systemctl stop) moves
    // the run to a standby; without one it stops the run, which has nowhere else to go.
    process.on('SIGTERM', () => (ha ? void leave('SIGTERM') : session.server.requestStop('terminated (SIGTERM)', false)));
    const { result, report } = await session.finish();
    for (const line of session.summaryLines(report)) print(line);
    await session.close();
    await ha?.store.close();
    process.exit(result.status === 'failed' ? 1 : 0);
  } catch (err) {
    fail(err instanceof ListenError ? err.toOptionError(err.address === flags.listen ? '--listen' : '--heartbeat-port') : err);
  }
});

/** `--dashboard-advertise`: an http(s) URL, published with the leadership, so only with --store. */
function withDashboardAdvertise<T extends object>(dashboard: T | null, url: string | undefined, withStore: boolean): (T & { advertise?: string }) | null {
  if (url === undefined) return dashboard;
  if (!withStore) throw new OptionError('--dashboard-advertise', 'is published with the leadership: it needs --store etcd://... (a single coordinator has no standby to link to it)');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new OptionError('--dashboard-advertise', `must be a URL such as http://coord-a:8080/, got "${url}"`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new OptionError('--dashboard-advertise', `must be an http:// or https:// URL, got "${url}"`);
  return dashboard ? { ...dashboard, advertise: parsed.href } : null;
}

/** `--store` and its companions: null for the in-process default (one coordinator). */
async function haOptions(flags: { store: string; storeJob: string; coordinatorId?: string; advertise?: string; leaderLease: string }, listen: string) {
  if (flags.store === 'memory') return null;
  const { EtcdStore, parseEtcdUrl } = await import('../coordinator/store/etcd-store.ts');
  let endpoints: string[];
  try {
    endpoints = parseEtcdUrl(flags.store);
  } catch (err) {
    throw new OptionError('--store', `${errorMessage(err)}, or 'memory'`);
  }
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(flags.storeJob)) throw new OptionError('--store-job', `must be 1 to 64 letters, digits, '.', '_' or '-', got "${flags.storeJob}"`);
  const leaseMs = intOption('--leader-lease', flags.leaderLease, 3000, 2000, 60_000);
  const id = flags.coordinatorId ?? `${hostname()}-${process.pid}`;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new OptionError('--coordinator-id', `must be 1 to 64 letters, digits, '.', '_' or '-', got "${id}"`);
  const advertise = flags.advertise ? checkHostPort('--advertise', flags.advertise) : listen.replace(/^0\.0\.0\.0:/, `${hostname()}:`);
  return { store: new EtcdStore({ endpoints, job: flags.storeJob }), id, advertise, leaseMs };
}

/** Ctrl-C and a closed stdin, for processes that `ftrain run` or `ftrain node` started. */
function watchParent(onParentGone: () => void): boolean {
  if (process.env.FTRAIN_MANAGED !== '1') return false;
  // The parent handles Ctrl-C; a closed stdin means it died.
  process.on('SIGINT', () => {});
  process.stdin.on('close', onParentGone);
  process.stdin.on('end', onParentGone);
  process.stdin.resume();
  return true;
}

function defaultSnapshotDir(nodeId: string): string {
  const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return join(base, `ftrain-${nodeId.replace(/[^A-Za-z0-9_.-]/g, '_')}`);
}

/** Kubernetes' default termination grace period is 30 s; GKE gives spot VMs 30 s of notice. */
const DEFAULT_GRACE_SECONDS = 25;
/** How long a node waits for an unreachable coordinator before it gives up. */
const DEFAULT_CONNECT_TIMEOUT_SECONDS = 60;

interface WorkerFlags extends SecurityFlagValues {
  graceSeconds: string;
  connectTimeout: string;
  coordinator: string;
  nodeId?: string;
  listen: string;
  advertise?: string;
  backend?: string;
  logFile?: string;
  logLevel: string;
  zone?: string;
}

function addWorkerFlags(cmd: Command): Command {
  return addMemberSecurityFlags(cmd)
    .requiredOption('--coordinator <host:port[,host:port...]>', 'address of the coordinator; with a leader and standbys (`ftrain coordinator --store`), each of them: the node follows whichever leads')
    .option('--node-id <id>', 'unique id of this node (default: HOSTNAME-PID)')
    .option('--listen <host:port>', 'address for pipeline traffic (use 0.0.0.0:PORT across machines)', '127.0.0.1:0')
    .option('--advertise <host>', 'host name other nodes use to reach this one (default: the listen host, or this hostname for 0.0.0.0)')
    .addOption(new Option('--backend <name>', "override the job's tfjs backend on this node"))
    .option('--zone <zone>', "this node's failure domain (a cloud zone, an instance type): a stage's replicas go to different zones and its erasure shards are spread so that a whole zone lost costs at most M of them")
    .option('--log-file <file>', 'write JSON logs here (default: stderr)')
    .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
    .option('--grace-seconds <n>', 'on SIGTERM (a spot preemption notice), seconds the node has to hand its stage over before it exits (0: exit at once)', String(DEFAULT_GRACE_SECONDS))
    .option('--connect-timeout <s>', 'seconds to keep trying to reach the coordinator (with backoff) before giving up', String(DEFAULT_CONNECT_TIMEOUT_SECONDS));
}

/** Says one line on stderr and exits with `code`. */
function sayAndExit(prefix: string, code: number, message: string): never {
  process.stderr.write(`${prefix}: ${message}\n`);
  process.exit(code);
}

/**
 * Resolves the coordinator's host before anything starts (retrying a temporary failure for a
 * bounded time, with progress lines); if it does not resolve, gives up with one line.
 */
async function resolveOrGiveUp(coordinator: string, prefix: string, giveUp: (code: number, message: string) => never): Promise<void> {
  try {
    for (const address of coordinator.split(',')) await resolveCoordinatorHost(address, { onWait: waitingLines(prefix, (l) => process.stderr.write(`${l}\n`)).resolveWait });
  } catch (err) {
    const code = joinFailureCode(err);
    if (code === null) throw err;
    giveUp(code, errorMessage(err));
  }
}

addWorkerFlags(
  program
    .command('node')
    .description("run a node that joins a job: its snapshot manager and its worker as two processes, restarting a crashed worker")
    .option('--snapshot-dir <dir>', 'tmpfs directory for the in-memory snapshots (default: /dev/shm/ftrain-NODE_ID)')
    .option('--max-restarts <n>', 'worker restarts before the node gives up', '20')
    .option('--snapshot-manager-port <n>', "port of the node's snapshot manager, on the --listen host (peers send it erasure shards); 0 picks a free one", '0')
    .option('--no-standby', 'keep no warm standby worker (one idle worker process) to take over at once when the worker crashes: restart it cold'),
).action(async (flags: WorkerFlags & { snapshotDir?: string; maxRestarts: string; snapshotManagerPort: string; standby: boolean }) => {
  try {
    const coordinator = checkCoordinators(flags.coordinator);
    const listen = checkHostPort('--listen', flags.listen);
    if (flags.backend !== undefined) parseBackend('--backend', flags.backend);
    const maxRestarts = intOption('--max-restarts', flags.maxRestarts, 0, 0, 1_000_000);
    const graceSeconds = intOption('--grace-seconds', flags.graceSeconds, DEFAULT_GRACE_SECONDS, 0, 3600);
    const connectTimeout = intOption('--connect-timeout', flags.connectTimeout, DEFAULT_CONNECT_TIMEOUT_SECONDS, 1, 3600);
    const security = await memberSecurity(flags, flags.nodeId);
    const nodeId = flags.nodeId ?? security.tls?.name ?? `${hostname()}-${process.pid}`;
    const prefix = `ftrain node ${nodeId}`;
    await resolveOrGiveUp(coordinator, prefix, (code, message) => sayAndExit(prefix, code, message));
    // The worker and the snapshot manager are this node too: the same certificate, and the token
    // in their environment (not on a command line others can read).
    const tlsArgs = flags.tlsDir !== undefined ? ['--tls-dir', flags.tlsDir] : [];
    if (security.joinToken !== '') process.env[JOIN_TOKEN_ENV] = security.joinToken;
    const managed = process.env.FTRAIN_MANAGED === '1';
    const logger = createLogger({ name: 'node', file: flags.logFile ?? null, level: flags.logLevel, pretty: !managed && !flags.logFile && process.stderr.isTTY }).child({ nodeId });
    const workerArgs = ['--coordinator', coordinator, '--node-id', nodeId, '--listen', listen, '--log-level', flags.logLevel, '--grace-seconds', String(graceSeconds), '--connect-timeout', String(connectTimeout), ...tlsArgs];
    if (flags.advertise) workerArgs.push('--advertise', flags.advertise);
    if (flags.backend) workerArgs.push('--backend', flags.backend);
    if (flags.zone !== undefined) workerArgs.push('--zone', parseZone('--zone', flags.zone));
    if (flags.logFile) workerArgs.push('--log-file', flags.logFile);
    const listenHost = hostOf(listen);
    const smpPort = intOption('--snapshot-manager-port', flags.snapshotManagerPort, 0, 0, 65535);
    const smpArgs = ['--listen', `${listenHost}:${smpPort}`, '--coordinator', coordinator, ...(flags.advertise ? ['--advertise', flags.advertise] : []), ...tlsArgs];
    const { NodeSupervisor } = await import('./node-supervisor.ts');
    const supervisor = new NodeSupervisor({ nodeId, workerArgs, smpArgs, snapshotDir: resolve(flags.snapshotDir ?? defaultSnapshotDir(nodeId)), maxRestarts, standby: flags.standby, logLevel: flags.logLevel, logger });
    if (!watchParent(() => supervisor.end(1, 0))) process.on('SIGINT', () => supervisor.end(130));
    process.on('SIGTERM', () => supervisor.depart(graceSeconds * 1000));
    try {
      supervisor.start();
    } catch (err) {
      const code = joinFailureCode(err); // another live agent owns the snapshot directory
      if (code === null) throw err;
      sayAndExit(prefix, code, errorMessage(err));
    }
    const end = await supervisor.done;
    if (end.reason) process.stderr.write(`${prefix}: ${end.reason}\n`);
    process.exit(end.code);
  } catch (err) {
    fail(err);
  }
});

addWorkerFlags(
  program
    .command('worker')
    .description('run only the worker of a node (where something else, e.g. the kubelet, restarts it)')
    .option('--snapshot-dir <dir>', "the snapshot manager's slot directory (omit to run without snapshots)")
    // The node agent's own: a worker started warm that waits for the agent to tell it to take over.
    .addOption(new Option('--standby', "warm up, then wait (not listening, not registered) until the node agent says to take over").hideHelp()),
).action(async (flags: WorkerFlags & { snapshotDir?: string; standby?: boolean }) => {
  try {
    const coordinator = checkCoordinators(flags.coordinator);
    const listen = checkHostPort('--listen', flags.listen);
    const security = await memberSecurity(flags, flags.nodeId);
    const nodeId = flags.nodeId ?? security.tls?.name ?? `${hostname()}-${process.pid}`;
    const backend = flags.backend === undefined ? null : parseBackend('--backend', flags.backend);
    const graceSeconds = intOption('--grace-seconds', flags.graceSeconds, DEFAULT_GRACE_SECONDS, 0, 3600);
    const connectTimeout = intOption('--connect-timeout', flags.connectTimeout, DEFAULT_CONNECT_TIMEOUT_SECONDS, 1, 3600);
    // Under a node agent the lines speak for the node the user started.
    const prefix = `ftrain ${positivePid(process.env.FTRAIN_NODE_AGENT_PID) ? 'node' : 'worker'} ${nodeId}`;
    /** Gives up with one line: to the node agent, which prints it once the node has ended, or here. */
    const giveUp = (code: number, message: string): never => {
      if (writeExitNote(message)) process.exit(code);
      return sayAndExit(prefix, code, message);
    };
    const managed = process.env.FTRAIN_MANAGED === '1';
    const logger = createLogger({ name: 'worker', file: flags.logFile ?? null, level: flags.logLevel, pretty: !managed && !flags.logFile && process.stderr.isTTY }).child({ nodeId });
    // A standby goes on from here, as a worker just started, once its node agent says so.
    if (flags.standby) await standBy(backend ?? DEFAULT_JOB.backend, logger);
    await resolveOrGiveUp(coordinator, prefix, giveUp);
    const { WorkerNode } = await import('../worker/worker-node.ts');
    const { workerInjector } = await import('../chaos/worker-injector.ts');
    const node = new WorkerNode({
      coordinator,
      nodeId,
      listen,
      advertiseHost: flags.advertise ?? null,
      backend,
      snapshotDir: flags.snapshotDir ? resolve(flags.snapshotDir) : null,
      managed,
      agentPid: positivePid(process.env.FTRAIN_NODE_AGENT_PID),
      zone: parseZone('--zone', flags.zone),
      joinToken: security.joinToken,
      logger,
      // `--inject` failures inside the worker, when the job has them; nothing otherwise.
      faults: workerInjector(),
      protocol: { registerTimeoutMs: connectTimeout * 1000 },
      onRegisterWait: waitingLines(prefix, (l) => process.stderr.write(`${l}\n`)).registerWait,
      onTraining: (stage) => tellAgent({ type: 'training', stage }),
      successor: flags.standby === true || process.env[SUCCESSOR_ENV] === '1',
    });
    if (!watchParent(() => node.shutdown(1, 'the parent process exited'))) process.on('SIGINT', () => node.shutdown(130, 'interrupted'));
    process.on('SIGTERM', () => node.depart(graceSeconds * 1000, 'SIGTERM'));
    try {
      await node.start();
      tellAgent({ type: 'registered', address: node.address });
    } catch (err) {
      if (err instanceof RunEndedError) {
        process.stderr.write(`${prefix}: ${err.message}\n`);
        process.exit(0);
      }
      const code = joinFailureCode(err); // refused, or no coordinator: a restart cannot help
      if (code === null) throw err;
      giveUp(code, errorMessage(err));
    }
    const exit = await node.exited;
    if (exit.code !== 0 && FINAL_WORKER_EXITS.has(exit.code)) giveUp(exit.code, exit.reason);
    if (exit.code !== 0) process.stderr.write(`${prefix}: ${exit.reason}\n`);
    process.exit(exit.code);
  } catch (err) {
    fail(err instanceof ListenError ? err.toOptionError('--listen') : err);
  }
});

program
  .command('snapshot-manager')
  .description("run only a node's snapshot manager: owns the tmpfs slot directory and verifies every committed snapshot")
  .requiredOption('--dir <dir>', 'tmpfs directory for the snapshot slots')
  .option('--slots <n>', 'snapshot slots', String(DEFAULT_SLOT_COUNT))
  .option('--node-id <id>', 'the node this manager belongs to', hostname())
  .option('--listen <host:port>', 'address of its SnapshotManager service (peers send erasure shards here; port 0 picks one)', '127.0.0.1:0')
  .option('--coordinator <host:port[,host:port...]>', 'the coordinator (or each of a leader and standbys) to tell when a snapshot is protected (default: only through the worker)')
  .option('--advertise <host>', 'host name other nodes use to reach it (default: the listen host)')
  .option('--keep', 'keep the snapshots when this process exits')
  .option('--tls-dir <dir>', "directory with the job's CA certificate (ca.crt) and this node's certificate and key (NODE_ID.crt, .key), from `ftrain certs`: its connections are then mutual TLS, and it takes shards only from the node its certificate names")
  .option('--log-file <file>', 'write JSON logs here (default: stderr)')
  .option('--log-level <level>', 'trace, debug, info, warn or error', 'info')
  .action(async (flags: { dir: string; slots: string; nodeId: string; listen: string; coordinator?: string; advertise?: string; keep?: boolean; tlsDir?: string; logFile?: string; logLevel: string }) => {
    try {
      await memberSecurity({ tlsDir: flags.tlsDir }, flags.nodeId);
      const slots = intOption('--slots', flags.slots, DEFAULT_SLOT_COUNT, 2, 64);
      const listen = checkHostPort('--listen', flags.listen);
      const logger = createLogger({ name: 'snapshot-manager', file: flags.logFile ?? null, level: flags.logLevel }).child({ nodeId: flags.nodeId });
      const { SnapshotManager } = await import('../snapshot-manager/snapshot-manager.ts');
      const smp = new SnapshotManager(resolve(flags.dir), slots, flags.nodeId, logger);
      await smp.start(listen, flags.advertise ?? null, flags.coordinator ? checkCoordinators(flags.coordinator) : null);
      logger.info({ dir: smp.slots.dir, slots, address: smp.address }, 'snapshot manager ready');
      const stop = (code: number) => {
        smp.close(!flags.keep);
        process.exit(code);
      };
      // Under a node agent, Ctrl-C reaches the whole process group: the launcher stops the run
      // gracefully, and the snapshot manager must outlive that (it goes when its parent does).
      if (!watchParent(() => stop(0))) process.on('SIGINT', () => stop(0));
      process.on('SIGTERM', () => stop(0));
    } catch (err) {
      fail(err instanceof ListenError ? err.toOptionError(process.env[LISTEN_FLAG_ENV] ?? '--listen') : err);
    }
  });

const bench = program.command('bench').description('benchmarks that print JSON');

bench
  .command('pipeline')
  .description('tokens/s and pipeline bubble of local clusters with 1, 2 and 4 stages, per backend (median of --repeat runs)')
  .option('--backends <list>', 'comma-separated backends', 'wasm,cpu')
  .option('--stages <list>', 'comma-separated stage counts (1 is the one-process baseline)', '1,2,4')
  .option('--steps <n>', 'steps per run (the first is warm-up and not timed)', '6')
  .option('--repeat <n>', 'runs per case', '3')
  .option('--blocks <n>', 'transformer blocks of the model, split over the stages', '4')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { backends: string; stages: string; steps: string; repeat: string; blocks: string }) => {
    try {
      const { benchPipeline } = await import('../bench/pipeline-bench.ts');
      const result = await benchPipeline({
        backends: flags.backends.split(',').map((b) => parseBackend('--backends', b)),
        stages: flags.stages.split(',').map((x) => positiveInt('--stages', x)),
        steps: positiveInt('--steps', flags.steps),
        repeat: positiveInt('--repeat', flags.repeat),
        blocks: positiveInt('--blocks', flags.blocks),
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('snapshot')
  .description('in-memory snapshot vs synchronous disk checkpoint vs memcpy of the same bytes, and the step overhead of snapshotting every step (medians of --runs)')
  .option('--state-mb <n>', 'size of the synthetic training state in MiB', '256')
  .option('--runs <n>', 'repetitions; figures are medians', '5')
  .option('--disk-dir <dir>', 'directory on a real disk for the checkpoint baseline', '.ftrain/bench')
  .option('--shm-dir <dir>', 'tmpfs directory for the in-memory snapshot slots', '/dev/shm')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { stateMb: string; runs: string; diskDir: string; shmDir: string }) => {
    try {
      const { runSnapshotBench } = await import('../bench/snapshot-bench.ts');
      const result = await runSnapshotBench({
        stateMb: positiveInt('--state-mb', flags.stateMb),
        runs: positiveInt('--runs', flags.runs),
        diskDir: flags.diskDir,
        shmDir: flags.shmDir,
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('erasure')
  .description('Reed-Solomon encode and rebuild throughput per code, size and kernel (simd, reference) against a memcpy of the same bytes, and encodes through the erasure pool (medians of --runs)')
  .option('--runs <n>', 'repetitions; figures are medians', '5')
  .option('--sizes-mib <list>', 'comma-separated snapshot sizes in MiB', '16,64')
  .option('--codes <list>', 'colon-separated codes k,m (data, parity shards)', '4,2:2,1:6,3')
  .option('--threads <n>', 'threads of the erasure pool measured', '1')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { runs: string; sizesMib: string; codes: string; threads: string }) => {
    try {
      const { runErasureBench } = await import('../bench/erasure-bench.ts');
      const codes = flags.codes.split(':').map((pair) => {
        const [k, m, extra] = pair.split(',');
        if (m === undefined || extra !== undefined) throw new OptionError('--codes', `each code must be k,m, got "${pair}"`);
        const dataShards = intOption('--codes', k, 0, 1, 255);
        const parityShards = intOption('--codes', m, 0, 1, 256 - dataShards);
        return { dataShards, parityShards };
      });
      const result = await runErasureBench({
        runs: intOption('--runs', flags.runs, 0, 1, 1000),
        sizesMib: flags.sizesMib.split(',').map((x) => intOption('--sizes-mib', x, 0, 1, 1024)),
        codes,
        threads: intOption('--threads', flags.threads, 0, 1, 64),
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('scale')
  .description('ftrain at a real stage size, in one run: snapshot stall vs a warm memcpy, overhead under --snapshot-every auto, a node kill and a worker kill traced by phase against floors measured in the same run, peak RAM per node vs the formula (needs about 8x the state per node, 5 nodes: ~11 GiB at 256 MiB)')
  .option('--state-mb <n>', 'MiB of training state (parameters and Adam moments) per stage', '256')
  .option('--nodes <n>', 'pipeline stages', '4')
  .option('--spares <n>', 'spare nodes (one takes the lost stage)', '1')
  .option('--layers-per-stage <n>', 'transformer blocks per stage; the width follows from --state-mb', '2')
  .option('--backend <name>', 'tfjs backend', 'wasm')
  .option('--node-kill <step:stage>', 'the node of STAGE is killed as STEP begins', '4:1')
  .option('--worker-kill <step:stage>', 'the worker of STAGE is killed as STEP begins', '7:2')
  .option('--repeats <n>', 'repetitions of each bandwidth measurement (medians)', '5')
  .option('--log-file <file>', "keep the run's JSON log here (every recovery step with its time)")
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { stateMb: string; nodes: string; spares: string; layersPerStage: string; backend: string; nodeKill: string; workerKill: string; repeats: string; logFile?: string }) => {
    try {
      const stages = intOption('--nodes', flags.nodes, 4, 2, 64);
      const at = (flag: string, v: string) => {
        const m = /^(\d+):(\d+)$/.exec(v.trim());
        if (!m || Number(m[2]) >= stages || Number(m[1]) < 1) throw new OptionError(flag, `must be STEP:STAGE with STEP >= 1 and STAGE below --nodes (${stages}), got "${v}"`);
        return { step: Number(m[1]), stage: Number(m[2]) };
      };
      const nodeKill = at('--node-kill', flags.nodeKill);
      const workerKill = at('--worker-kill', flags.workerKill);
      const { runScaleBench } = await import('../bench/scale-bench.ts');
      const result = await runScaleBench({
        stateMib: intOption('--state-mb', flags.stateMb, 256, 1, 65_536),
        stages,
        spares: intOption('--spares', flags.spares, 1, 1, 16),
        layersPerStage: intOption('--layers-per-stage', flags.layersPerStage, 2, 1, 64),
        backend: parseBackend('--backend', flags.backend),
        nodeKillStage: nodeKill.stage,
        nodeKillStep: nodeKill.step,
        workerKillStage: workerKill.stage,
        workerKillStep: workerKill.step,
        repeats: positiveInt('--repeats', flags.repeats),
        logFile: flags.logFile ? resolve(flags.logFile) : null,
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('recovery')
  .description('a node kill recovered by erasure rebuild vs the same kill recovered from a disk checkpoint every 50 steps: lost seconds side by side (medians of --runs)')
  .option('--runs <n>', 'repetitions; figures are medians', '3')
  .option('--nodes <n>', 'pipeline stages', '4')
  .option('--spares <n>', 'spare nodes (one takes the lost stage)', '1')
  .option('--checkpoint-every <n>', "the disk baseline's checkpoint interval", '50')
  .option('--kill-step <n>', 'the node dies as this step begins (default: half way between two checkpoints)')
  .option('--stage <n>', 'the stage whose node is killed', '1')
  .option('--backend <name>', 'tfjs backend', 'wasm')
  .option('--disk-dir <dir>', 'directory on a real disk for the checkpoints', '.ftrain/bench')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { runs: string; nodes: string; spares: string; checkpointEvery: string; killStep?: string; stage: string; backend: string; diskDir: string }) => {
    try {
      const every = positiveInt('--checkpoint-every', flags.checkpointEvery);
      const nodes = intOption('--nodes', flags.nodes, 4, 2, 64);
      const { runRecoveryBench } = await import('../bench/recovery-bench.ts');
      const result = await runRecoveryBench({
        runs: positiveInt('--runs', flags.runs),
        nodes,
        spares: positiveInt('--spares', flags.spares),
        checkpointEvery: every,
        killStep: flags.killStep === undefined ? every + Math.floor(every / 2) : intOption('--kill-step', flags.killStep, 0, every + 1, 1_000_000),
        stage: intOption('--stage', flags.stage, 1, 0, nodes - 1),
        backend: parseBackend('--backend', flags.backend),
        diskDir: flags.diskDir,
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('ha')
  .description('what a coordinator with a standby costs and buys, as one JSON object: the step time with one coordinator (its state in its process) and with --ha (a local etcd, two coordinators), and --kills runs with the leader SIGKILLed: the time to a new leader and to the next step, and whether the weights are those of the run without failures')
  .option('--stages <n>', 'pipeline stages (one node each)', '4')
  .option('--steps <n>', 'steps of each run (cpu, a small model)', '30')
  .option('--kill-at-step <n>', 'the step at which the leader is killed', '6')
  .option('--kills <n>', 'runs with the leader killed; the figures are medians', '5')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { stages: string; steps: string; killAtStep: string; kills: string }) => {
    try {
      const { runHaBench } = await import('../bench/ha-bench.ts');
      const steps = intOption('--steps', flags.steps, 30, 4, 100_000);
      const result = await runHaBench({
        stages: intOption('--stages', flags.stages, 4, 1, 64),
        steps,
        killAtStep: intOption('--kill-at-step', flags.killAtStep, 6, 1, steps - 2),
        kills: intOption('--kills', flags.kills, 5, 0, 100),
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('tls')
  .description('what mutual TLS costs, plaintext and TLS side by side: the same job with `ftrain run --insecure` and `ftrain run` in turn (median step time and tokens/s, ratios, the same weights required), and PutShard streams to a real snapshot manager over loopback, plaintext vs TLS, against a memcpy of the same bytes (medians); about 3 minutes on 2 cores with the defaults')
  .option('--stages <n>', 'pipeline stages (one node each)', '4')
  .option('--steps <n>', 'steps per run (the first is warm-up and not timed)', '6')
  .option('--repeat <n>', 'runs of each mode, alternated plain, tls, plain, ...; figures are medians', '3')
  .option('--backend <name>', 'tfjs backend (cpu: deterministic)', 'cpu')
  .option('--state-mb <n>', 'MiB of training state per stage (two blocks, the wide preset\'s shape), for TLS at a real stage size (its snapshots\' shards cross TLS too); slow on 2 cores: 16 with --backend wasm ~1 min a run, 64 on cpu ~6 min a run; 0: a small model, steps under a second', '0')
  .option('--shard-mb <list>', 'comma-separated shard sizes in MiB, one shard per PutShard stream', '64,256')
  .option('--transfers <n>', 'timed streams of each size in each mode (and memcpys); figures are medians', '5')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { stages: string; steps: string; repeat: string; backend: string; stateMb: string; shardMb: string; transfers: string }) => {
    try {
      const { runTlsBench } = await import('../bench/tls-bench.ts');
      const result = await runTlsBench({
        stages: intOption('--stages', flags.stages, 4, 2, 64),
        steps: intOption('--steps', flags.steps, 6, 2, 100_000),
        repeat: intOption('--repeat', flags.repeat, 3, 1, 100),
        backend: parseBackend('--backend', flags.backend),
        stateMib: intOption('--state-mb', flags.stateMb, 0, 0, 4096),
        shardMib: flags.shardMb.split(',').map((x) => intOption('--shard-mb', x, 0, 1, 1024)),
        transfers: intOption('--transfers', flags.transfers, 5, 1, 100),
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('replicas')
  .description("what replicas cost and buy, as one JSON object of sections: the ring all-reduce of the replicas' gradients against a raw gRPC stream of the same bytes on loopback and against two at once, one each way (medians of --repeat runs); the snapshot bytes a node holds with 1 and 2 replicas; the time a lost node costs by tier; the step time with the all-reduce overlapped with the backward pass and after it")
  .option('--megabytes <n>', 'MiB of float32 values the all-reduce sums (and each raw stream carries)', '64')
  .option('--replicas <n>', 'replicas in the ring, each a thread with its own gRPC server', '2')
  .option('--repeat <n>', 'timed runs of each measurement, after one untimed; figures are medians', '3')
  .option('--snapshot-bytes-runs <n>', 'runs of the same pipeline with 1 and with 2 replicas for the snapshot bytes a node holds, about 30 s each on 2 cores; 0: leave it out', '1')
  .option('--time-lost-runs <n>', 'runs of each recovery tier (replica copy, erasure rebuild, disk restart) for the time a lost node costs, about 80 s each on 2 cores; 0: leave it out', '3')
  .option('--overlap-runs <n>', 'runs of a 2 x 2 pipeline of wider stages with --overlap-reduce on and off, for the step time each gives; 0: leave it out', '1')
  .option('--disk-dir <dir>', "directory on a real disk for the disk restart's checkpoints", '.ftrain/bench')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { megabytes: string; replicas: string; repeat: string; timeLostRuns: string; snapshotBytesRuns: string; overlapRuns: string; diskDir: string }) => {
    try {
      const { runReplicasBench } = await import('../bench/replicas-bench.ts');
      const result = await runReplicasBench({
        megabytes: intOption('--megabytes', flags.megabytes, 64, 1, 4096),
        replicas: intOption('--replicas', flags.replicas, 2, 2, 16),
        repeat: intOption('--repeat', flags.repeat, 3, 1, 100),
        timeLostRuns: intOption('--time-lost-runs', flags.timeLostRuns, 3, 0, 100),
        snapshotBytesRuns: intOption('--snapshot-bytes-runs', flags.snapshotBytesRuns, 1, 0, 100),
        overlapRuns: intOption('--overlap-runs', flags.overlapRuns, 1, 0, 100),
        diskDir: resolve(flags.diskDir),
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

bench
  .command('coordinator')
  .description('a thousand nodes on one coordinator: a real `ftrain coordinator` process and 1-4 load processes whose simulated nodes speak the real gRPC protocol (register, command stream, heartbeats at the default interval, a step report per node per step); heartbeat and step-report latency, the coordinator\'s CPU and RSS, false losses, and one node frozen half way: its detection, the recovery plan and the resumption. With --simulate: the pure coordinator core, no sockets, driven through a simulated day of spot churn')
  .option('--nodes <n>', 'nodes: --stages x replicas + --spares (default 1000; 10000 with --simulate)')
  .option('--stages <n>', 'pipeline stages of each replica (default: 8; 16 with --simulate)')
  .option('--spares <n>', 'spare nodes beyond the replicas (default: 8; 400 with --simulate)')
  .option('--duration <s>', 'seconds measured once every node trains (the frozen node goes silent half way)', '120')
  .option('--step-ms <ms>', 'wall time of one training step: each node reports a step this often (default: 1000; 60000 with --simulate)')
  .option('--load-processes <n>', 'processes the simulated nodes run in (one gRPC channel per node)', '2')
  .option('--log-file <file>', "keep the coordinator's JSON log here (overwritten: the figures are read from it)")
  .option('--simulate', 'drive the coordinator core alone (no sockets, a simulated clock) instead: spot preemptions with notice, abrupt losses and nodes joining back as spares, with heartbeats and step reports')
  .option('--hours <h>', 'with --simulate: simulated hours', '24')
  .option('--churn-per-hour <pct>', 'with --simulate: percent of the nodes lost per hour (half preempted with notice, half lost abruptly); each comes back as a spare', '2')
  .option('--seed <n>', 'with --simulate: seed of the churn schedule', '1')
  .option('--sim-heartbeat-ms <ms>', 'with --simulate: the simulated job\'s heartbeat interval (lease 5x): a day at 500 ms would be billions of events', '30000')
  .option('--json', 'print only the JSON (progress goes to stderr either way)')
  .action(async (flags: { nodes?: string; stages?: string; spares?: string; duration: string; stepMs?: string; loadProcesses: string; logFile?: string; simulate?: boolean; hours: string; churnPerHour: string; seed: string; simHeartbeatMs: string }) => {
    try {
      const progress = (l: string) => process.stderr.write(`${l}\n`);
      const stages = intOption('--stages', flags.stages, flags.simulate ? 16 : 8, 1, 64);
      const stepMs = intOption('--step-ms', flags.stepMs, flags.simulate ? 60_000 : 1000, 50, 600_000);
      if (flags.simulate) {
        const churn = Number(flags.churnPerHour);
        if (!(churn >= 0 && churn < 100)) throw new OptionError('--churn-per-hour', `must be a percentage from 0 to below 100, got "${flags.churnPerHour}"`);
        const hours = Number(flags.hours);
        if (!(hours > 0 && hours <= 24 * 30)) throw new OptionError('--hours', `must be a number of hours above 0, at most 720, got "${flags.hours}"`);
        const { runCoordinatorSimulation } = await import('../bench/coordinator-sim.ts');
        const result = runCoordinatorSimulation({
          nodes: intOption('--nodes', flags.nodes, 10_000, 2, 20_000),
          stages,
          spares: intOption('--spares', flags.spares, 400, 1, 4096),
          hours,
          churnPerHour: churn / 100,
          stepMs,
          heartbeatMs: intOption('--sim-heartbeat-ms', flags.simHeartbeatMs, 30_000, 50, 60_000),
          seed: intOption('--seed', flags.seed, 1, 0, 0xffff_ffff),
          progress,
        });
        process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
        return;
      }
      const { runCoordinatorBench } = await import('../bench/coordinator-bench.ts');
      const result = await runCoordinatorBench({
        nodes: intOption('--nodes', flags.nodes, 1000, 2, 20_000),
        stages,
        spares: intOption('--spares', flags.spares, 8, 1, 4096),
        durationS: intOption('--duration', flags.duration, 120, 5, 86_400),
        stepMs,
        loadProcesses: intOption('--load-processes', flags.loadProcesses, 2, 1, 4),
        logFile: flags.logFile ? resolve(flags.logFile) : null,
        progress,
      });
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    } catch (err) {
      fail(err);
    }
  });

program
  .command('report')
  .description("print a finished run's report (the JSON a run wrote with --report), or render it as a static dashboard page")
  .argument('<file>', 'the run report (JSON)')
  .option('--html <out>', 'write a self-contained HTML page with the dashboard charts of the run (opens from disk, no network)')
  .action(async (file: string, flags: { html?: string }) => {
    try {
      const { parseRunReport } = await import('../observability/run-report.ts');
      const { reportLines } = await import('./coordinator-session.ts');
      let text: string;
      try {
        text = readFileSync(file, 'utf8');
      } catch (err) {
        throw new DataError(`${file}: cannot read the report: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : errorMessage(err)}`, file);
      }
      const report = parseRunReport(file, text);
      if (flags.html) {
        mkdirSync(dirname(resolve(flags.html)), { recursive: true });
        const { reportDashboardData } = await import('../observability/report-dashboard.ts');
        const { staticDashboardHtml } = await import('../observability/static-dashboard.ts');
        writeFileSync(flags.html, staticDashboardHtml(reportDashboardData(report)));
        process.stdout.write(`wrote ${flags.html}: ${report.steps} steps, ${report.failures.length} failure(s) recovered, status ${report.status}\n`);
        return;
      }
      for (const line of reportLines(report)) process.stdout.write(`${line}\n`);
    } catch (err) {
      fail(err);
    }
  });

addCertsCommand(program, fail);

const experiment = program.command('experiment').description('experiments that train real clusters and write JSON (and plots)');

experiment
  .command('churn')
  .description('the same training under each recovery strategy and hourly node failure rate: loss against wall-clock time, time to a target loss, and a PNG of the curves')
  .option('--rates <list>', 'hourly failure rates in percent, comma-separated', '0,5,10,16')
  .option('--strategies <list>', 'recovery strategies, comma-separated: checkfree, checkfree-plus (needs 4 nodes or more), snapshot, checkpoint, replicas (2 replicas of half the micro-batches each: the same batch on twice the nodes, snapshots and replica copies)', 'checkfree,checkfree-plus,snapshot,checkpoint,replicas')
  .option('--steps <n>', 'steps per run', '200')
  .option('--nodes <n>', 'pipeline stages', '6')
  .option('--seed <n>', 'seed of the model, the batches and the failure schedules', '0')
  .option('--backend <name>', 'tfjs backend', 'wasm')
  .option('--checkpoint-every <n>', 'disk checkpoint interval of the checkpoint strategy (and of the disk tier under CheckFree)', '50')
  .option('--hour-seconds <s>', 'seconds of training that stand for one hour of exposure (3600: real time)', '60')
  .option('--target-loss <x>', "loss to reach (default: the failure-free run's loss at 90% of its steps)")
  .option('--json <file>', 'where the results go', 'churn.json')
  .option('--plot <file>', 'PNG of loss against wall-clock time, one panel per rate')
  .action(async (flags: { rates: string; strategies: string; steps: string; nodes: string; seed: string; backend: string; checkpointEvery: string; hourSeconds: string; targetLoss?: string; json: string; plot?: string }) => {
    try {
      const rates = flags.rates.split(',').map((x) => {
        const v = Number(x.trim());
        if (x.trim() === '' || !Number.isFinite(v) || v < 0 || v >= 100) throw new OptionError('--rates', `each rate is a percentage from 0 to below 100, got "${x}"`);
        return v / 100;
      });
      const { CHURN_STRATEGIES, runChurnExperiment } = await import('../experiment/churn.ts');
      const strategies = flags.strategies.split(',').map((x) => {
        const name = x.trim();
        if (!(CHURN_STRATEGIES as readonly string[]).includes(name)) throw new OptionError('--strategies', `must be among ${CHURN_STRATEGIES.join(', ')}, got "${name}"`);
        return name as (typeof CHURN_STRATEGIES)[number];
      });
      const hourSeconds = Number(flags.hourSeconds);
      if (!(hourSeconds > 0)) throw new OptionError('--hour-seconds', `must be a positive number, got "${flags.hourSeconds}"`);
      const targetLoss = flags.targetLoss === undefined ? null : Number(flags.targetLoss);
      if (targetLoss !== null && !(targetLoss > 0)) throw new OptionError('--target-loss', `must be a positive number, got "${flags.targetLoss}"`);
      const result = await runChurnExperiment({
        rates,
        strategies,
        steps: intOption('--steps', flags.steps, 200, 10, 1_000_000),
        stages: intOption('--nodes', flags.nodes, 6, 3, 64),
        seed: intOption('--seed', flags.seed, 0, 0, 0xffff_ffff),
        backend: parseBackend('--backend', flags.backend),
        checkpointEvery: intOption('--checkpoint-every', flags.checkpointEvery, 50, 1, 1_000_000),
        hourSeconds,
        targetLoss,
        jsonPath: flags.json,
        plotPath: flags.plot ?? null,
        progress: (l) => process.stderr.write(`${l}\n`),
      });
      process.stdout.write(`${JSON.stringify({ targetLoss: result.targetLoss, timeToTargetSeconds: result.timeToTargetSeconds, comparisons: result.comparisons }, null, 2)}\n`);
      process.stdout.write(`results: ${flags.json}${flags.plot ? `, plot: ${flags.plot}` : ''}\n`);
    } catch (err) {
      fail(err);
    }
  });

{
  const { addChaosFlags, compileChaosOptions } = await import('../chaos/chaos-options.ts');
  addChaosFlags(
    program
      .command('chaos')
      .description(
        'hit a training job with failures on a seeded schedule, one at a time (worker, snapshot-manager and node kills, freezes, preemptions), replace lost nodes as a spot fleet would, and report detection, recovery and lost steps by kind; exit 1 unless every event was recovered',
      ),
  ).action(async (flags: import('../chaos/chaos-options.ts').ChaosFlagValues, cmd: Command) => {
    try {
      const explicit = new Set(Object.keys(flags).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
      const options = compileChaosOptions(flags, explicit);
      const { runChaos } = await import('../chaos/chaos-run.ts');
      process.exit(await runChaos(options));
    } catch (err) {
      fail(err);
    }
  });
}

await program.parseAsync(process.argv);
