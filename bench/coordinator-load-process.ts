// Child process of `ftrain bench coordinator`: many simulated nodes in one process, each speaking
// the real Coordinator protocol over real gRPC to a real coordinator, as a worker does
// (worker/coordinator-link.ts): Register, the Commands stream, ReportReady on an Assign, step
// reports in order after a Start, ReportHalted on a Halt; and from a thread of the process's own
// (load-heartbeat-thread.mjs), as a worker's heartbeat thread does, a beat on its Heartbeats
// stream to the coordinator's heartbeat desk every heartbeat_ms of the Register reply. Nothing is trained: a
// step report is sent when a step of `stepMs` would have ended, with a snapshot of every step.
//
// Each simulated node has a channel and a TCP connection of its own (a local subchannel pool), as
// a node process would: the coordinator serves one connection per node.
//
// The parent drives it over the IPC channel (LoadRequest) and hears from it (LoadMessage). A
// `limit` a stage 0 gets is sent up, and the parent hands it to every load process, so that the
// whole replica stops at that step (the other stages of a real pipeline follow stage 0's data).
// Exits when the IPC channel closes, so it never outlives the bench.

import { JOIN_TOKEN_ENV } from '../common/join-token.ts';
import * as grpc from '@grpc/grpc-js';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker as Thread } from 'node:worker_threads';
import { packageUrl } from '../common/package-root.ts';
import { heartbeatAddress } from '../worker/coordinator-address.ts';
import { GRPC_CHANNEL_OPTIONS, PROTO_PATH, deadline, loadProto } from '../common/proto.ts';
import { decodeCommand } from '../common/wire/coordinator-wire.ts';
import { refusalOf } from '../common/wire/refusal-wire.ts';
import type { ReceivedCommand } from '../domain/commands.ts';
import { DEFAULT_JOB } from '../domain/job-options.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { channelCredentials } from '../common/transport.ts';

export interface LoadConfig {
  readonly coordinator: string;
  readonly nodeIds: readonly string[];
  /** Wall time of one training step. */
  readonly stepMs: number;
  /** A step's reports come in within this long of each other: node i reports at a fixed offset in [0, spread). */
  readonly reportSpreadMs: number;
  /** Registrations in flight at once from this process. */
  readonly registerConcurrency: number;
}

/** From the parent. */
export type LoadRequest =
  | { readonly type: 'config'; readonly config: LoadConfig }
  /** Samples are kept from now until `measure` off. */
  | { readonly type: 'measure'; readonly on: boolean }
  /** The node freezes: no heartbeat, no report, its stream left open (a SIGSTOPped process). */
  | { readonly type: 'silence'; readonly nodeId: string }
  /** Every node of `replica` starts no step from `toStep` on (until a new Start). */
  | { readonly type: 'replica-limit'; readonly replica: number; readonly toStep: number }
  /** The lowest last step of the nodes that train in every load process (NO_FLOOR: none trains). */
  | { readonly type: 'floor'; readonly step: number }
  | { readonly type: 'collect' }
  | { readonly type: 'exit' };

/** First and last time a command kind of an epoch reached a node here, and how many did. */
export interface CommandTimes {
  readonly kind: string;
  readonly epoch: number;
  firstAtMs: number;
  lastAtMs: number;
  count: number;
}

export interface LoadSamples {
  readonly heartbeatMs: number[];
  readonly stepReportMs: number[];
  /** Calls that failed, by gRPC status or refusal reason. */
  readonly errors: Record<string, number>;
  /** Nodes told they are not registered (FENCED) while they beat: the coordinator had let them go. */
  readonly fenced: string[];
  /** Nodes told to stop. */
  readonly stopped: string[];
  readonly commands: CommandTimes[];
  stepsReported: number;
  /** This process's event-loop delay, p99 over the measured window, ms: what it adds to every step report here. */
  readonly eventLoopP99Ms: number;
  /** Its heartbeat thread's event-loop delay, p99 over the measured window, ms: what it adds to every heartbeat. */
  readonly heartbeatThreadEventLoopP99Ms?: number;
}

/** To the parent. */
export type LoadMessage =
  | { readonly type: 'progress'; readonly registered: number; readonly open: number; readonly training: number; readonly failed: string | null; readonly errors: Readonly<Record<string, number>> }
  | { readonly type: 'limit'; readonly replica: number; readonly toStep: number }
  /** The lowest last step of the nodes training here (NO_FLOOR: none). */
  | { readonly type: 'floor'; readonly step: number }
  | { readonly type: 'silenced'; readonly nodeId: string; readonly silentAtMs: number; readonly lastHeartbeatAtMs: number }
  | { readonly type: 'samples'; readonly samples: LoadSamples };

/** A registration that fails (the coordinator busy with others) is tried again this often, at most. */
const REGISTER_ATTEMPTS = 20;
const REGISTER_RETRY_MS = 250;
/** How often the parent hears the counts. */
const PROGRESS_MS = 1000;
/** Steps a node may report past the slowest node training (stepFloor), and how soon it looks again. */
const MAX_STEPS_AHEAD = 1;
const AHEAD_RETRY_MS = 20;
/** How often the parent hears this process's step floor, to pass the lowest to every load process. */
const FLOOR_MS = 200;
/** A floor when no node trains (the IPC channel carries JSON, which has no Infinity). */
export const NO_FLOOR = Number.MAX_SAFE_INTEGER;

interface SimNode {
  readonly id: string;
  readonly client: CoordinatorClient;
  stream: grpc.ClientReadableStream<Command__Output> | null;
  registered: boolean;
  open: boolean;
  heartbeatMs: number;
  /** The coordinator's heartbeat desk, as its Register reply said. */
  heartbeatAddress: string;
  stepTimer: NodeJS.Timeout | null;
  /** Slot = replica x stages + stage; -1 before an assignment. */
  slot: number;
  replica: number;
  lastStage: boolean;
  tokens: number;
  epoch: number;
  training: boolean;
  /** Last step reported and accepted; -1 before any. */
  lastStep: number;
  /** The step training started from at the last Start, and when. */
  fromStep: number;
  startAtMs: number;
  toStep: number;
  /** Offset of its reports within a step. */
  readonly offsetMs: number;
  silent: boolean;
  stopped: boolean;
}

const proto = loadProto();
let config: LoadConfig | null = null;
let measuring = false;
const nodes = new Map<string, SimNode>();
const replicaLimits = new Map<number, number>();
/** The lowest step floor of the load processes, as the parent last told; NO_FLOOR before it has. */
let otherFloor = NO_FLOOR;
const samples: LoadSamples = { heartbeatMs: [], stepReportMs: [], errors: {}, fenced: [], stopped: [], commands: [], stepsReported: 0, eventLoopP99Ms: 0 };
const commandTimes = new Map<string, CommandTimes>();
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
/** The heartbeats of every node here (load-heartbeat-thread.mjs). */
const heartbeatThread = new Thread(packageUrl('bench/load-heartbeat-thread.mjs'), { workerData: { protoPath: PROTO_PATH, channelOptions: GRPC_CHANNEL_OPTIONS } });
/** What the heartbeat thread collected, once asked (collect). */
interface ThreadSamples {
  readonly heartbeatMs: number[];
  readonly errors: Record<string, number>;
  readonly fenced: string[];
  readonly eventLoopP99Ms: number;
}
heartbeatThread.on('message', (m: { type: 'silenced'; nodeId: string; lastHeartbeatAtMs: number } | ({ type: 'samples' } & ThreadSamples) | { type: 'exited' }) => {
  if (m.type === 'silenced') {
    const n = nodes.get(m.nodeId);
    // It froze just before the heartbeat that was due next: the first one the coordinator misses.
    if (n) send({ type: 'silenced', nodeId: m.nodeId, silentAtMs: m.lastHeartbeatAtMs + n.heartbeatMs, lastHeartbeatAtMs: m.lastHeartbeatAtMs });
  } else if (m.type === 'samples') {
    for (const [key, count] of Object.entries(m.errors)) samples.errors[key] = (samples.errors[key] ?? 0) + count;
    const fenced = [...samples.fenced, ...m.fenced.filter((id) => !samples.fenced.includes(id))];
    send({ type: 'samples', samples: { ...samples, heartbeatMs: m.heartbeatMs, fenced, commands: [...commandTimes.values()], eventLoopP99Ms: loopDelay.percentile(99) / 1e6, heartbeatThreadEventLoopP99Ms: m.eventLoopP99Ms } });
  } else process.exit(0);
});
let failed: string | null = null;

function send(m: LoadMessage): void {
  process.send?.(m);
}

function countError(key: string): void {
  samples.errors[key] = (samples.errors[key] ?? 0) + 1;
}

function errorKey(err: grpc.ServiceError): string {
  const refusal = refusalOf(err);
  return refusal ? `refused:${refusal.reason}` : `status:${grpc.status[err.code] ?? err.code}`;
}

function noteCommand(kind: string, epoch: number, now: number): void {
  const key = `${kind}/${epoch}`;
  const t = commandTimes.get(key);
  if (t) {
    t.lastAtMs = now;
    t.count += 1;
  } else commandTimes.set(key, { kind, epoch, firstAtMs: now, lastAtMs: now, count: 1 });
}

function makeNode(id: string, index: number, c: LoadConfig): SimNode {
  const client = new proto.ftrain.v1.Coordinator(c.coordinator, channelCredentials(), {
    ...GRPC_CHANNEL_OPTIONS,
    // A connection of its own, as a node process has: not one shared by every client here.
    'grpc.use_local_subchannel_pool': 1,
  }) as unknown as CoordinatorClient;
  return {
    id,
    client,
    stream: null,
    registered: false,
    open: false,
    heartbeatMs: 0,
    heartbeatAddress: c.coordinator,
    stepTimer: null,
    slot: -1,
    replica: -1,
    lastStage: false,
    tokens: 0,
    epoch: 0,
    training: false,
    lastStep: -1,
    fromStep: 0,
    startAtMs: 0,
    toStep: 0,
    offsetMs: ((index * 7919) % 1000) / 1000 * c.reportSpreadMs,
    silent: false,
    stopped: false,
  };
}

function register(n: SimNode, attempt = 1): Promise<void> {
  return new Promise((resolve) => {
    n.client.Register(
      { nodeId: n.id, address: `127.0.0.1:${20000 + Number(n.id.replace(/\D/g, '')) % 40000}`, pid: process.pid, hostname: 'bench', snapshotStage: -1, snapshotSteps: [], smpAddress: `127.0.0.1:9`, smpPid: 0, agentPid: 0, zone: '', joinToken: process.env[JOIN_TOKEN_ENV] ?? '' },
      { deadline: deadline() },
      (err, reply) => {
        // An earlier attempt that timed out on this side may have landed: the node is registered.
        const landed = attempt > 1 && err !== null && refusalOf(err)?.reason === 'duplicate';
        if ((err || !reply) && !landed) {
          countError(err ? errorKey(err) : 'no reply');
          if (attempt >= REGISTER_ATTEMPTS) {
            failed = `node ${n.id} could not register: ${err?.message ?? 'no reply'}`;
            resolve();
            return;
          }
          setTimeout(() => void register(n, attempt + 1).then(resolve), REGISTER_RETRY_MS);
          return;
        }
        n.registered = true;
        n.heartbeatMs = reply ? Number(reply.heartbeatMs) : DEFAULT_JOB.heartbeatMs;
        n.heartbeatAddress = heartbeatAddress(config!.coordinator, reply?.heartbeatPort ?? 0);
        openCommands(n);
        resolve();
      },
    );
  });
}

function openCommands(n: SimNode): void {
  const stream = n.client.Commands({ nodeId: n.id });
  n.stream = stream;
  n.open = true;
  stream.on('data', (c: Command__Output) => onCommand(n, c));
  stream.on('error', () => {
    n.open = false;
  });
  stream.on('end', () => {
    n.open = false;
  });
  heartbeatThread.postMessage({ type: 'start', nodeId: n.id, address: n.heartbeatAddress, heartbeatMs: n.heartbeatMs });
}

function onCommand(n: SimNode, raw: Command__Output): void {
  if (n.silent) return;
  let c: ReceivedCommand;
  try {
    c = decodeCommand(raw);
  } catch (err) {
    failed = `node ${n.id}: a command did not decode: ${(err as Error).message}`;
    return;
  }
  const now = Date.now();
  switch (c.kind) {
    case 'assign': {
      noteCommand('assign', c.epoch, now);
      stopStepping(n);
      n.training = false;
      n.epoch = c.epoch;
      n.replica = c.replica;
      n.slot = c.replica * c.numStages + c.stage;
      n.lastStage = c.stage === c.numStages - 1;
      n.tokens = c.job.microBatches * c.job.microBatchSize * c.job.model.seqLen * (1 + (c.guestReplicas?.length ?? 0));
      if (c.restoreStep >= 0) n.lastStep = c.restoreStep - 1;
      n.client.ReportReady({ nodeId: n.id, stage: n.slot, epoch: n.epoch, checkpointSteps: [] }, { deadline: deadline() }, (err) => {
        if (err) countError(`ready:${errorKey(err)}`);
      });
      return;
    }
    case 'start':
      noteCommand('start', n.epoch, now);
      replicaLimits.delete(n.replica);
      n.training = true;
      n.fromStep = c.fromStep;
      n.lastStep = c.fromStep - 1;
      n.startAtMs = now;
      n.toStep = c.toStep;
      scheduleStep(n);
      return;
    case 'halt':
      noteCommand('halt', c.epoch, now);
      stopStepping(n);
      n.training = false;
      n.epoch = c.epoch;
      n.client.ReportHalted(
        // The snapshots of the last steps it completed (one of every step: --snapshot-every 1), and its tensors' step.
        { nodeId: n.id, stage: n.slot, epoch: c.epoch, snapshotSteps: [n.lastStep - 1, n.lastStep, n.lastStep + 1].filter((s) => s >= 0), memoryStep: n.lastStep + 1 },
        { deadline: deadline() },
        (err) => {
          if (err) countError(`halted:${errorKey(err)}`);
        },
      );
      return;
    case 'limit':
      noteCommand(c.pause ? 'limit-pause' : 'limit', n.epoch, now);
      replicaLimits.set(n.replica, c.toStep);
      send({ type: 'limit', replica: n.replica, toStep: c.toStep });
      return;
    case 'stop':
      noteCommand('stop', n.epoch, now);
      n.stopped = true;
      heartbeatThread.postMessage({ type: 'stop', nodeId: n.id });
      n.training = false;
      stopStepping(n);
      samples.stopped.push(n.id);
      return;
    case 'protect':
      return;
  }
}

function stopStepping(n: SimNode): void {
  if (n.stepTimer) clearTimeout(n.stepTimer);
  n.stepTimer = null;
}

/**
 * The lowest last step of the nodes that train here, and of those of the other load processes
 * as the parent last told (`floor`). Nodes of a real job cannot drift apart: a stage trains a
 * step once its predecessor has sent it, and every replica of a stage waits for the others in
 * the step's all-reduce. Simulated nodes keep their own schedules, and one whose report was
 * answered late would fall behind the others step after step; a recovery's halted reports then
 * hold no step in common. So a node reports no step more than MAX_STEPS_AHEAD past this floor.
 */
function stepFloor(): number {
  return Math.min(otherFloor, localFloor());
}

/** The lowest last step of the nodes that train here; NO_FLOOR when none does. */
function localFloor(): number {
  let floor = NO_FLOOR;
  for (const n of nodes.values()) if (n.training && !n.silent && !n.stopped && n.lastStep < floor) floor = n.lastStep;
  return floor;
}

/** The next step's report, when that step would end: steps of `stepMs` from the Start on. */
function scheduleStep(n: SimNode): void {
  const c = config!;
  const step = n.lastStep + 1;
  const atMs = n.startAtMs + (step - n.fromStep + 1) * c.stepMs - c.reportSpreadMs + n.offsetMs;
  n.stepTimer = setTimeout(() => reportStep(n, step), Math.max(0, atMs - Date.now()));
}

function reportStep(n: SimNode, step: number): void {
  n.stepTimer = null;
  if (!n.training || n.silent || n.stopped) return;
  if (n.toStep > 0 && step >= n.toStep) return;
  const limit = replicaLimits.get(n.replica);
  if (limit !== undefined && step >= limit) {
    // Paused at a step boundary: look again a step later (a Halt or a new Start ends the wait).
    n.stepTimer = setTimeout(() => reportStep(n, step), config!.stepMs);
    return;
  }
  if (step > stepFloor() + MAX_STEPS_AHEAD) {
    // Ahead of a node still on an earlier step: a real one would wait for it (see stepFloor).
    n.stepTimer = setTimeout(() => reportStep(n, step), AHEAD_RETRY_MS);
    return;
  }
  const c = config!;
  const t0 = performance.now();
  const epoch = n.epoch;
  n.client.ReportStep(
    {
      nodeId: n.id,
      stage: n.slot,
      step,
      loss: n.lastStage ? 2.5 : 0,
      gradNorm: 1,
      clippedGradNorm: 1,
      computeMs: c.stepMs * 0.8,
      waitMs: c.stepMs * 0.1,
      stepMs: c.stepMs,
      tokens: n.tokens,
      last: false,
      epoch,
      // The snapshot of the state before this step (taken while it ran), as a worker reports it.
      snapshotStep: step,
      snapshotStallMs: 1,
      snapshotCopyMs: 5,
      snapshotBytes: 1 << 20,
      allReduceMs: 10,
    },
    { deadline: deadline() },
    (err) => {
      if (measuring) samples.stepReportMs.push(performance.now() - t0);
      if (err) {
        // Refused (a recovery began, another epoch): the command that follows says what next.
        countError(`step:${errorKey(err)}`);
        return;
      }
      samples.stepsReported += 1;
      if (n.epoch !== epoch || !n.training) return;
      n.lastStep = step;
      scheduleStep(n);
    },
  );
}

async function start(c: LoadConfig): Promise<void> {
  config = c;
  c.nodeIds.forEach((id, i) => nodes.set(id, makeNode(id, i, c)));
  const progress = setInterval(() => {
    const all = [...nodes.values()];
    send({ type: 'progress', registered: all.filter((n) => n.registered).length, open: all.filter((n) => n.open).length, training: all.filter((n) => n.training).length, failed, errors: samples.errors });
  }, PROGRESS_MS);
  progress.unref();
  const floor = setInterval(() => send({ type: 'floor', step: localFloor() }), FLOOR_MS);
  floor.unref();
  const queue = [...nodes.values()];
  await Promise.all(
    Array.from({ length: Math.min(c.registerConcurrency, queue.length) }, async () => {
      for (let n = queue.shift(); n; n = queue.shift()) await register(n);
    }),
  );
}

function silence(nodeId: string): void {
  const n = nodes.get(nodeId);
  if (!n) return;
  n.silent = true;
  stopStepping(n);
  heartbeatThread.postMessage({ type: 'silence', nodeId });
}

function exit(): void {
  for (const n of nodes.values()) {
    stopStepping(n);
    n.stream?.cancel();
    n.client.close();
  }
  heartbeatThread.postMessage({ type: 'exit' });
  // The thread says when it closed its channels; it may not, if it is stuck.
  setTimeout(() => process.exit(0), 1000).unref();
}

process.on('message', (m: LoadRequest) => {
  switch (m.type) {
    case 'config':
      void start(m.config);
      return;
    case 'measure':
      measuring = m.on;
      heartbeatThread.postMessage({ type: 'measure', on: m.on });
      if (m.on) loopDelay.enable();
      else loopDelay.disable();
      return;
    case 'silence':
      silence(m.nodeId);
      return;
    case 'replica-limit':
      replicaLimits.set(m.replica, m.toStep);
      return;
    case 'floor':
      otherFloor = m.step;
      return;
    case 'collect':
      // The thread's samples join these when it answers.
      heartbeatThread.postMessage({ type: 'collect' });
      return;
    case 'exit':
      exit();
  }
});
process.on('disconnect', exit);
