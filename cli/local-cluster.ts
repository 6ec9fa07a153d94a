// `ftrain run`: a coordinator in this process and one `ftrain node` child process per stage,
// all on 127.0.0.1. The launcher plays the node agent: it watches its children, reports their
// exits to the coordinator, and makes sure none outlives the run.

import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, existsSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import type { JobOptions } from '../domain/job-options.ts';
import { localZone } from '../domain/zones.ts';
import { NATIVE_BACKEND_PACKAGES, nativeBackendMissing } from '../common/native-backend.ts';
import { createLogger } from '../common/logging.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { survivabilityLines } from '../coordinator/core/survivability.ts';

import { CoordinatorSession, type DashboardSettings } from './coordinator-session.ts';
import { prepareRunSecurity, type RunSecurityFlags } from './run-security.ts';
import { slotCount } from '../domain/replica-slots.ts';

/** How long children get to exit after Stop before they get SIGTERM, and then SIGKILL. */
export const CHILD_EXIT_GRACE_MS = 5000;
export const CHILD_TERM_GRACE_MS = 4000;

export interface LocalClusterOptions {
  readonly job: JobOptions;
  /** Lost nodes to replace with new node processes, as a spot fleet replaces reclaimed instances. */
  readonly respawn?: number;
  /** Nodes keep a warm standby worker (`ftrain node`'s default); false: `--no-standby`. */
  readonly standby?: boolean;
  /** Spread the nodes over this many zones (`--zone z0`, `z1`, ... in turn); 0: none. */
  readonly zones?: number;
  readonly reportPath: string | null;
  readonly logFile: string | null;
  readonly logLevel: string;
  readonly port: number;
  readonly dashboard: DashboardSettings | null;
  /** `--insecure`, `--tls-dir`, the join token: how the run is protected (run-security.ts). */
  readonly security: RunSecurityFlags;
  readonly print?: (line: string) => void;
}

/** `.ftrain/logs/ROLE-STAMP.log`: where a command logs by default, so the console keeps only progress lines. */
export function defaultLogFile(role = 'run'): string {
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return resolve('.ftrain', 'logs', `${role}-${stamp}.log`);
}

function exitDetail(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

/** On one machine the nodes share this install: check the native backend before starting them. */
function checkNativeBackendInstalled(): void {
  const require = createRequire(import.meta.url);
  for (const name of NATIVE_BACKEND_PACKAGES) {
    try {
      require.resolve(name);
      return;
    } catch {
      // try the next one
    }
  }
  throw nativeBackendMissing();
}

export async function runLocalCluster(options: LocalClusterOptions): Promise<number> {
  const print = options.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  const job = options.job;
  if (job.backend === 'tensorflow') checkNativeBackendInstalled();
  const logFile = resolve(options.logFile ?? defaultLogFile());
  mkdirSync(dirname(logFile), { recursive: true });
  const logger = createLogger({ name: 'coordinator', file: logFile, level: options.logLevel });
  const nodeCount = slotCount(job) + job.spares;
  const nodeName = (index: number) => `node-${index}`;
  const security = await prepareRunSecurity(options.security, Array.from({ length: nodeCount }, (_, i) => nodeName(i)));
  let session: CoordinatorSession;
  let port: number;
  try {
    // The session refuses a corpus or a resume that does not fit before anything starts.
    session = new CoordinatorSession({ job, listen: `127.0.0.1:${options.port}`, reportPath: options.reportPath, logger, print, dashboard: options.dashboard, nodesOnThisMachine: true, joinToken: security.joinToken });
    port = await session.start();
  } catch (err) {
    security.close();
    throw err;
  }
  const spareText = job.spares ? ` + ${job.spares} spare(s)` : '';
  const replicaText = job.replicas > 1 ? ` (${job.replicas} replicas of ${job.stages} stages)` : '';
  print(`ftrain: coordinator on 127.0.0.1:${port}, ${slotCount(job)} nodes${replicaText}${spareText}, backend ${job.backend}, data ${job.data}`);
  for (const line of survivabilityLines(job)) print(line);
  print(`  logs: ${logFile}`);
  print(`  ${security.describe()}`);
  print(session.dashboardLine());

  // Each node's snapshot manager keeps its slots on tmpfs, in a directory of this run's; the node
  // agent removes it when it leaves (the launcher too, in case the agent was killed).
  const runId = `ftrain-run-${process.pid}-${Date.now()}`;
  const snapshotDir = (nodeId: string) => join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), `${runId}-${nodeId}`);
  const logFd = openSync(logFile, 'a');
  const children = new Map<string, ChildProcess>();
  const dirs = new Set<string>();
  let ending = false;
  let nextIndex = 0;
  let respawnsLeft = options.respawn ?? 0;
  const startNode = async (): Promise<string> => {
    const zone = localZone(nextIndex, options.zones ?? 0);
    const nodeId = nodeName(nextIndex++);
    await security.issue(nodeId);
    if (ending) return nodeId;
    dirs.add(snapshotDir(nodeId));
    const child = spawn(
      process.execPath,
      [
        FTRAIN_BIN,
        'node',
        '--coordinator',
        `127.0.0.1:${port}`,
        '--node-id',
        nodeId,
        '--listen',
        '127.0.0.1:0',
        '--log-level',
        options.logLevel,
        '--snapshot-dir',
        snapshotDir(nodeId),
        ...(options.standby === false ? ['--no-standby'] : []),
        ...(zone ? ['--zone', zone] : []),
        ...security.nodeArgs(),
      ],
      { stdio: ['pipe', logFd, logFd], env: { ...process.env, ...security.nodeEnv(), FTRAIN_MANAGED: '1' } },
    );
    children.set(nodeId, child);
    child.on('exit', (code, signal) => {
      children.delete(nodeId);
      logger.info({ nodeId, code, signal }, 'node process exited');
      if (ending) return;
      session.server.processExited(nodeId, exitDetail(code, signal));
      if (respawnsLeft > 0 && (signal !== null || code !== 0)) {
        respawnsLeft -= 1;
        startNode().then(
          (replacement) => print(`  ${nodeId} lost: started ${replacement} in its place (${respawnsLeft} replacement(s) left)`),
          (err: unknown) => logger.error({ err }, 'could not start a replacement node'),
        );
      }
    });
    return nodeId;
  };
  for (let i = 0; i < nodeCount; i++) await startNode();

  /** A node's worker and snapshot manager, as it registered them: killed with its agent if it hangs. */
  const nodePids = (nodeId: string): number[] => {
    const n = session.server.status().nodes.find((x) => x.nodeId === nodeId);
    return n ? [n.pid, n.smpPid].filter((p) => p > 0) : [];
  };
  const onSigint = () => session.interrupt();
  const onSigterm = () => session.server.requestStop('terminated (SIGTERM)', false);
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  try {
    const { result, report } = await session.finish();
    ending = true;
    await stopChildren(children, nodePids);
    for (const line of session.summaryLines(report)) print(line);
    if (result.status === 'failed') print(`  see ${logFile} for the nodes' logs`);
    return result.status === 'failed' ? 1 : 0;
  } finally {
    ending = true;
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
    await stopChildren(children, nodePids);
    await session.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    security.close();
    closeSync(logFd); // kept open until now: a replacement node writes its logs to it too
  }
}

/**
 * Waits for children told to stop. Those still alive after the grace period get SIGTERM (a node
 * agent then has its worker leave), then SIGKILL together with their worker and snapshot manager
 * (a frozen node answers no signal but that one).
 */
async function stopChildren(children: Map<string, ChildProcess>, nodePids: (nodeId: string) => number[]): Promise<void> {
  const alive = [...children.entries()];
  if (alive.length === 0) return;
  const running = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;
  const exits = alive.map(([, c]) => new Promise<void>((r) => (running(c) ? c.once('exit', () => r()) : r())));
  const term = setTimeout(() => alive.filter(([, c]) => running(c)).forEach(([, c]) => c.kill('SIGTERM')), CHILD_EXIT_GRACE_MS);
  const kill = setTimeout(() => {
    for (const [nodeId, c] of alive) {
      if (!running(c)) continue;
      for (const pid of nodePids(nodeId)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      c.kill('SIGKILL');
    }
  }, CHILD_EXIT_GRACE_MS + CHILD_TERM_GRACE_MS);
  await Promise.all(exits);
  clearTimeout(term);
  clearTimeout(kill);
}
