// `ftrain bench coordinator`: a thousand nodes on one coordinator. A real coordinator
// (`ftrain coordinator`, its own process, dashboard on) runs a job of stages x replicas + spares
// nodes; 1-4 load processes (bench/coordinator-load-process.ts) play the nodes over real gRPC on
// 127.0.0.1: register, command streams, heartbeats at the job's interval, a step report per
// node per step in order, ready and halted reports when told. Once every node trains, for
// `durationS` seconds, it measures:
//   - heartbeat and step-report latency as the nodes see them (call to answer), p50/p99;
//   - the coordinator's CPU (share of one core) and resident memory, from /proc/<pid>;
//   - false losses: nodes the coordinator declared lost although they kept beating;
//   - half way through, one node of a middle stage freezes (no heartbeat, no report, its stream
//     left open, as a SIGSTOPped process): the time until the coordinator declares it lost, the
//     time it takes to plan the recovery (a spare takes the slot, copying a live replica's
//     snapshot: replica-copy) and until every node trains again.
// Snapshot managers and erasure coding are not simulated (`--ec off`): the nodes report a
// snapshot of every step (`--snapshot-every 1`) and name a snapshot manager address the
// coordinator never calls here (a lease expiry marks a silent node's manager lost unprobed).
// Prints JSON; progress goes to stderr.

import { JOIN_TOKEN_ENV } from '../common/join-token.ts';
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { COMPILED, runtimeModule } from '../common/package-root.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { decodeRunStatus } from '../common/wire/coordinator-wire.ts';
import { DEFAULT_JOB } from '../domain/job-options.ts';
import { NodeState } from '../domain/run-status.ts';
import type { CommandTimes, LoadConfig, LoadMessage, LoadRequest, LoadSamples } from './coordinator-load-process.ts';
import { sig } from './stats.ts';
import { channelCredentials } from '../common/transport.ts';

export interface CoordinatorBenchOptions {
  readonly nodes: number;
  readonly stages: number;
  /** Spares beyond stages x replicas; replicas = (nodes - spares) / stages, which must be whole. */
  readonly spares: number;
  readonly durationS: number;
  readonly stepMs: number;
  readonly loadProcesses: number;
  /** Keep the coordinator's JSON log here; null: a temporary file, removed. */
  readonly logFile: string | null;
  readonly progress: (line: string) => void;
}

export interface CoordinatorBenchResult {
  readonly config: {
    readonly nodes: number;
    readonly stages: number;
    readonly replicas: number;
    readonly spares: number;
    readonly heartbeatMs: number;
    readonly leaseMs: number;
    readonly stepMs: number;
    readonly stepReportsPerSecond: number;
    readonly durationS: number;
    readonly loadProcesses: number;
    readonly channels: string;
    readonly snapshots: string;
    readonly erasureCoding: string;
    readonly dashboard: string;
    readonly coordinatorBuild: string;
  };
  readonly machine: { readonly cpus: number; readonly cpuModel: string; readonly totalMemoryBytes: number; readonly node: string; readonly loadAverage1mBefore: number; readonly loadAverage1mAfter: number };
  readonly startupMs: number;
  readonly heartbeatP50Ms: number;
  readonly heartbeatP99Ms: number;
  readonly heartbeatMaxMs: number;
  readonly heartbeats: number;
  readonly stepReportP50Ms: number;
  readonly stepReportP99Ms: number;
  readonly stepReports: number;
  readonly stepsCompleted: number;
  readonly falseLosses: number;
  readonly falseLossNodes: readonly string[];
  readonly detectSilentMs: number;
  readonly detectSinceLastHeartbeatMs: number;
  readonly planRecoveryMs: number | null;
  readonly recoveryTier: string | null;
  readonly resumeTrainingMs: number | null;
  readonly recoveredMs: number | null;
  readonly coordinatorCpuPct: number;
  readonly coordinatorRssBytes: number;
  readonly coordinatorRssEndBytes: number;
  readonly loadProcessEventLoopP99Ms: number;
  readonly loadHeartbeatThreadEventLoopP99Ms: number;
  readonly callErrors: Readonly<Record<string, number>>;
  readonly definitions: Readonly<Record<string, string>>;
}

const COORDINATOR_START_TIMEOUT_MS = 60_000;
/** Time to wait for every node to train, beyond a base: registrations and the first assignments. */
const STARTUP_BASE_MS = 60_000;
const STARTUP_PER_NODE_MS = 100;
const SAMPLE_MS = 1000;
const COLLECT_TIMEOUT_MS = 30_000;
const EXIT_GRACE_MS = 5000;
const REGISTER_CONCURRENCY = 16;

const LOAD_PROCESS = fileURLToPath(runtimeModule(new URL('./coordinator-load-process.ts', import.meta.url)));

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits until `ok()` holds, looking every 100 ms; throws `what` after `timeoutMs`. */
async function until(ok: () => boolean, timeoutMs: number, what: () => string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(what());
    await sleep(100);
  }
}

/** CPU ticks (user + system) of a process, from /proc/<pid>/stat. */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : 0;
}

/** Linux USER_HZ: /proc counts CPU time in these. */
const CLOCK_TICKS_PER_S = 100;

interface LoadChild {
  readonly child: ChildProcess;
  readonly nodeIds: readonly string[];
  progress: { registered: number; open: number; training: number; failed: string | null; errors: Readonly<Record<string, number>> };
  samples: LoadSamples | null;
  silenced: { nodeId: string; silentAtMs: number; lastHeartbeatAtMs: number } | null;
}

function startLoadChild(config: LoadConfig, relay: (m: LoadMessage) => void): LoadChild {
  const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
  const child = spawn(process.execPath, [...loader, LOAD_PROCESS], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], env: { ...process.env, [JOIN_TOKEN_ENV]: BENCH_JOIN_TOKEN } });
  const lc: LoadChild = { child, nodeIds: config.nodeIds, progress: { registered: 0, open: 0, training: 0, failed: null, errors: {} }, samples: null, silenced: null };
  child.on('message', (m: LoadMessage) => {
    if (m.type === 'progress') lc.progress = m;
    else if (m.type === 'samples') lc.samples = m.samples;
    else if (m.type === 'silenced') lc.silenced = m;
    relay(m);
  });
  child.send({ type: 'config', config } satisfies LoadRequest);
  return lc;
}

function tell(lc: LoadChild, m: LoadRequest): void {
  if (lc.child.connected) lc.child.send(m);
}

async function stopProcess(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), EXIT_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/** Starts `ftrain coordinator` for the job; resolves with its port. */
/** The join token of the bench's job. */
const BENCH_JOIN_TOKEN = 'coordinator-bench-join-token';

async function startCoordinator(args: string[]): Promise<{ child: ChildProcess; port: number; stderr: () => string }> {
  // The nodes join with the job's token, as real ones do (plaintext: the bench measures the coordinator's loop, as before TLS).
  const child = spawn(process.execPath, [FTRAIN_BIN, 'coordinator', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, [JOIN_TOKEN_ENV]: BENCH_JOIN_TOKEN } });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the coordinator did not listen within ${COORDINATOR_START_TIMEOUT_MS} ms; stderr: ${err}`)), COORDINATOR_START_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ftrain coordinator on [^:\s]+:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the coordinator exited (code ${code}, signal ${signal}) before listening; stderr: ${err}; stdout: ${out.slice(-2000)}`));
    });
  });
  // Its console output is not read further; keep the pipe drained.
  child.stdout!.resume();
  return { child, port, stderr: () => err };
}

/** The coordinator's Status: every node and its state. */
function coordinatorStatus(port: number): Promise<ReturnType<typeof decodeRunStatus>> {
  const client = new (loadProto().ftrain.v1.Coordinator)(`127.0.0.1:${port}`, channelCredentials(), GRPC_CHANNEL_OPTIONS);
  return new Promise((resolve, reject) => {
    client.Status({}, { deadline: deadline(10_000) }, (err, reply) => {
      client.close();
      if (err || !reply) reject(err ?? new Error('no Status reply'));
      else resolve(decodeRunStatus(reply));
    });
  });
}

interface LogLine {
  readonly time: number;
  readonly msg: string;
  readonly nodeId?: string;
  readonly method?: string;
}

function readLog(file: string): LogLine[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  return text.split('\n').flatMap((l) => {
    try {
      return l ? [JSON.parse(l) as LogLine] : [];
    } catch {
      return [];
    }
  });
}

/** Splits `count` node ids into `parts` contiguous runs. */
function partition(ids: readonly string[], parts: number): string[][] {
  return Array.from({ length: parts }, (_, i) => ids.slice(Math.floor((i * ids.length) / parts), Math.floor(((i + 1) * ids.length) / parts)));
}

export async function runCoordinatorBench(o: CoordinatorBenchOptions): Promise<CoordinatorBenchResult> {
  const replicas = (o.nodes - o.spares) / o.stages;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`${o.nodes} nodes less ${o.spares} spares is not a whole number of ${o.stages}-stage replicas`);
  const loadAverage1mBefore = loadavg()[0]!;
  const dir = mkdtempSync(join(tmpdir(), 'ftrain-bench-coordinator-'));
  const logFile = o.logFile ?? join(dir, 'coordinator.log');
  // The figures are read from this run's log alone: a log file given again starts empty.
  writeFileSync(logFile, '');
  const { heartbeatMs, leaseMs } = DEFAULT_JOB;
  const children: LoadChild[] = [];
  let coordinator: ChildProcess | null = null;
  try {
    const args = ['--listen', '127.0.0.1:0', '--nodes', String(o.stages), '--replicas', String(replicas), '--spares', String(o.spares), '--snapshot-every', '1', '--ec', 'off', '--check-every', '0', '--dashboard-port', '0', '--log-file', logFile];
    o.progress(`bench coordinator: ftrain coordinator ${args.join(' ')}`);
    const started = await startCoordinator(args);
    coordinator = started.child;
    const pid = coordinator.pid!;
    const { port } = started;
    const ids = Array.from({ length: o.nodes }, (_, i) => `n${i}`);
    const t0 = Date.now();
    const floors = new Map<number, number>();
    const relay = (m: LoadMessage, from: number) => {
      // A stage 0's pause holds its whole replica, wherever its other nodes run.
      if (m.type === 'limit') for (const c of children) tell(c, { type: 'replica-limit', replica: m.replica, toStep: m.toStep });
      // The slowest node anywhere holds every node back (coordinator-load-process.ts, stepFloor).
      if (m.type === 'floor') {
        floors.set(from, m.step);
        const step = Math.min(...floors.values());
        for (const c of children) tell(c, { type: 'floor', step });
      }
    };
    partition(ids, o.loadProcesses).forEach((nodeIds, i) => {
      children.push(startLoadChild({ coordinator: `127.0.0.1:${port}`, nodeIds, stepMs: o.stepMs, reportSpreadMs: o.stepMs / 4, registerConcurrency: REGISTER_CONCURRENCY }, (m) => relay(m, i)));
    });
    const sum = (f: (c: LoadChild) => number) => children.reduce((a, c) => a + f(c), 0);
    const failedChild = () => children.find((c) => c.progress.failed !== null || c.child.exitCode !== null);
    o.progress(`bench coordinator: ${o.nodes} nodes (${o.stages} stages x ${replicas} replicas + ${o.spares} spares) from ${o.loadProcesses} load process(es) on coordinator pid ${pid}, port ${port}`);
    let lastSaid = 0;
    await until(
      () => {
        const bad = failedChild();
        if (bad) throw new Error(`a load process failed: ${bad.progress.failed ?? `exited with code ${bad.child.exitCode}`}`);
        if (coordinator!.exitCode !== null) throw new Error(`the coordinator exited (code ${coordinator!.exitCode}): ${started.stderr()}`);
        if (Date.now() - lastSaid > 5000) {
          lastSaid = Date.now();
          o.progress(`bench coordinator: ${sum((c) => c.progress.registered)} registered, ${sum((c) => c.progress.open)} streams open, ${sum((c) => c.progress.training)} training${children.some((c) => Object.keys(c.progress.errors).length > 0) ? `; call errors ${children.map((c) => JSON.stringify(c.progress.errors)).join(' ')}` : ''}`);
        }
        return sum((c) => c.progress.training) === o.nodes - o.spares;
      },
      STARTUP_BASE_MS + STARTUP_PER_NODE_MS * o.nodes,
      () => `not every stage trained in time: ${sum((c) => c.progress.registered)} registered, ${sum((c) => c.progress.open)} streams open, ${sum((c) => c.progress.training)} training of ${o.nodes - o.spares}`,
    );
    const startupMs = Date.now() - t0;
    o.progress(`bench coordinator: every stage trains after ${(startupMs / 1000).toFixed(1)} s; measuring for ${o.durationS} s`);

    // The measured window.
    for (const c of children) tell(c, { type: 'measure', on: true });
    const cpu0 = cpuTicks(pid);
    const w0 = Date.now();
    let peakRss = rssBytes(pid);
    // A node of a middle stage of the middle replica (not a spare), frozen half way through.
    const victimSlot = Math.floor(replicas / 2) * o.stages + Math.min(1, o.stages - 1);
    const status0 = await coordinatorStatus(port);
    const victim = status0.nodes.find((n) => n.stage === victimSlot)!.nodeId;
    const owner = children.find((c) => c.nodeIds.includes(victim))!;
    const silenceAt = w0 + (o.durationS * 1000) / 2;
    const end = w0 + o.durationS * 1000;
    let silenced = false;
    while (Date.now() < end) {
      await sleep(Math.min(SAMPLE_MS, Math.max(0, end - Date.now())));
      if (coordinator.exitCode !== null) throw new Error(`the coordinator exited (code ${coordinator.exitCode}): ${started.stderr()}`);
      peakRss = Math.max(peakRss, rssBytes(pid));
      if (!silenced && Date.now() >= silenceAt) {
        silenced = true;
        o.progress(`bench coordinator: node ${victim} (slot ${victimSlot}) freezes: no heartbeat, no report, its stream left open`);
        tell(owner, { type: 'silence', nodeId: victim });
      }
      const s = Math.round((Date.now() - w0) / 1000);
      if (s % 10 === 0) o.progress(`bench coordinator: ${s} s, coordinator RSS ${(rssBytes(pid) / 2 ** 20).toFixed(0)} MiB, ${sum((c) => c.progress.training)} training`);
    }
    const cpu1 = cpuTicks(pid);
    const w1 = Date.now();
    const rssEnd = rssBytes(pid);
    peakRss = Math.max(peakRss, rssEnd);
    for (const c of children) tell(c, { type: 'measure', on: false });
    const status = await coordinatorStatus(port);
    for (const c of children) tell(c, { type: 'collect' });
    await until(() => children.every((c) => c.samples !== null), COLLECT_TIMEOUT_MS, () => 'a load process did not hand its samples over');
    const all = children.map((c) => c.samples!);
    const heartbeat = all.flatMap((s) => s.heartbeatMs).sort((a, b) => a - b);
    const step = all.flatMap((s) => s.stepReportMs).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const s of all) for (const [k, v] of Object.entries(s.errors)) errors[k] = (errors[k] ?? 0) + v;
    const falseLossNodes = status.nodes.filter((n) => n.state === NodeState.lost && n.nodeId !== victim).map((n) => n.nodeId);

    // The frozen node: when it went silent, when the coordinator said so (its log), and the recovery.
    const silent = owner.silenced;
    const log = readLog(logFile);
    const failedLine = log.find((l) => l.msg === 'node failed' && l.nodeId === victim);
    const planLine = failedLine ? log.find((l) => l.time >= failedLine.time && l.msg.startsWith('recovery by ')) : undefined;
    const commands = all.flatMap((s) => s.commands);
    const merged = (kind: string) => {
      const xs = commands.filter((c: CommandTimes) => c.kind === kind && c.epoch > 0);
      return xs.length === 0 ? null : { first: Math.min(...xs.map((x) => x.firstAtMs)), last: Math.max(...xs.map((x) => x.lastAtMs)), count: xs.reduce((a, x) => a + x.count, 0) };
    };
    const halts = merged('halt');
    // Detected: the coordinator's log line; without it, the first Halt a node got (sent in the same turn).
    const detectedAt = failedLine?.time ?? halts?.first ?? Number.NaN;
    // The recovery's first epoch: its assignments are the plan carried out, its starts the resumption.
    const recoveryEpoch = Math.min(...commands.filter((c) => c.kind === 'assign' && c.epoch > 0).map((c) => c.epoch));
    const ofEpoch = (kind: string) => {
      const xs = commands.filter((c) => c.kind === kind && c.epoch === recoveryEpoch);
      return xs.length === 0 ? null : { first: Math.min(...xs.map((x) => x.firstAtMs)), last: Math.max(...xs.map((x) => x.lastAtMs)) };
    };
    const assigns = ofEpoch('assign');
    const starts = ofEpoch('start');
    const recoveredLine = failedLine ? log.find((l) => l.time >= failedLine.time && l.msg === 'recovered' && l.nodeId === victim) : undefined;
    const stepsCompleted = status.run.completedSteps;
    o.progress(`bench coordinator: heartbeat p50 ${percentile(heartbeat, 50).toFixed(2)} ms, p99 ${percentile(heartbeat, 99).toFixed(2)} ms; step report p99 ${percentile(step, 99).toFixed(2)} ms; ${falseLossNodes.length} false loss(es); silent node detected after ${silent ? detectedAt - silent.silentAtMs : NaN} ms`);
    const wallS = (w1 - w0) / 1000;
    return {
      config: {
        nodes: o.nodes,
        stages: o.stages,
        replicas,
        spares: o.spares,
        heartbeatMs,
        leaseMs,
        stepMs: o.stepMs,
        stepReportsPerSecond: sig(((o.nodes - o.spares) * 1000) / o.stepMs),
        durationS: o.durationS,
        loadProcesses: o.loadProcesses,
        channels: 'one gRPC channel and TCP connection per simulated node (a local subchannel pool each), as separate node processes would have',
        snapshots: 'on, every step (--snapshot-every 1), as the nodes report them; no snapshot manager runs (the address the nodes give is never called here)',
        erasureCoding: 'off (--ec off): no shard plans, no protection reports',
        dashboard: 'on (--dashboard-port 0), nobody watching',
        coordinatorBuild: COMPILED ? 'compiled' : 'bin/ftrain.js: compiled if build/ is fresh, else the sources through tsx',
      },
      machine: { cpus: availableParallelism(), cpuModel: cpus()[0]?.model ?? 'unknown', totalMemoryBytes: totalmem(), node: process.version, loadAverage1mBefore: sig(loadAverage1mBefore), loadAverage1mAfter: sig(loadavg()[0]!) },
      startupMs,
      heartbeatP50Ms: sig(percentile(heartbeat, 50)),
      heartbeatP99Ms: sig(percentile(heartbeat, 99)),
      heartbeatMaxMs: sig(heartbeat.at(-1) ?? Number.NaN),
      heartbeats: heartbeat.length,
      stepReportP50Ms: sig(percentile(step, 50)),
      stepReportP99Ms: sig(percentile(step, 99)),
      stepReports: step.length,
      stepsCompleted,
      falseLosses: falseLossNodes.length,
      falseLossNodes,
      detectSilentMs: silent ? Math.round(detectedAt - silent.silentAtMs) : Number.NaN,
      detectSinceLastHeartbeatMs: silent ? Math.round(detectedAt - silent.lastHeartbeatAtMs) : Number.NaN,
      planRecoveryMs: assigns ? assigns.first - detectedAt : null,
      resumeTrainingMs: starts ? starts.last - detectedAt : null,
      recoveredMs: recoveredLine ? recoveredLine.time - detectedAt : null,
      recoveryTier: recoveredLine?.method ?? (planLine ? /^recovery by (\S+)/.exec(planLine.msg)![1]! : null),
      coordinatorCpuPct: sig(((cpu1 - cpu0) / CLOCK_TICKS_PER_S / wallS) * 100),
      coordinatorRssBytes: peakRss,
      coordinatorRssEndBytes: rssEnd,
      loadProcessEventLoopP99Ms: sig(Math.max(...all.map((s) => s.eventLoopP99Ms))),
      loadHeartbeatThreadEventLoopP99Ms: sig(Math.max(...all.map((s) => s.heartbeatThreadEventLoopP99Ms ?? Number.NaN))),
      callErrors: errors,
      definitions: {
        heartbeatP50Ms: "a heartbeat's time as the simulated node sees it (a beat written on its Heartbeats stream to the coordinator's heartbeat desk, to its answer), every heartbeat of every node in the measured window; it includes the delay of the load process's heartbeat thread (loadHeartbeatThreadEventLoopP99Ms)",
        heartbeatP99Ms: 'as heartbeatP50Ms, the 99th percentile',
        stepReportP99Ms: "ReportStep RPC time as the node sees it, every report in the window (refused ones too: a recovery refuses reports under way); it includes the load process's event-loop delay (loadProcessEventLoopP99Ms)",
        falseLosses: "nodes the coordinator's Status calls lost at the end of the window, other than the one frozen on purpose",
        detectSilentMs: "from the heartbeat the frozen node missed first (its last heartbeat + heartbeatMs) to the coordinator's 'node failed' log line for it; the lease runs from the last heartbeat the coordinator heard, so this is at most leaseMs - heartbeatMs + one 200 ms tick + the last heartbeat's delivery",
        detectSinceLastHeartbeatMs: "from the frozen node's last heartbeat sent to the 'node failed' line: leaseMs plus at most one tick",
        planRecoveryMs: "from the 'node failed' line to the first Assign of the recovery's epoch a node got: every survivor halted and said what it holds, the policy chose, and its orders went out",
        resumeTrainingMs: "from the 'node failed' line until the last node got its Start of the recovery's first epoch (under --on-replica-loss keep, the default, the other replicas train on while the spare's replica waits to join)",
        recoveredMs: "from the 'node failed' line to the coordinator's 'recovered' line: the replica of the spare that took the slot has joined at a step boundary, by recoveryTier",
        coordinatorCpuPct: "the coordinator process's CPU time (user + system, /proc/<pid>/stat) over the measured window's wall time, in percent of one core",
        coordinatorRssBytes: 'the highest VmRSS of the coordinator process sampled every second in the window',
      },
    };
  } finally {
    for (const c of children) tell(c, { type: 'exit' });
    await Promise.all(children.map((c) => stopProcess(c.child, 'SIGTERM')));
    if (coordinator) await stopProcess(coordinator, 'SIGTERM');
    if (o.logFile === null) rmSync(dir, { recursive: true, force: true });
  }
}
