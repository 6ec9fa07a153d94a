// The coordinator's gRPC adapter: decodes RPCs (common/wire/coordinator-wire.ts), feeds them,
// command-stream closures, process exits and clock ticks into the core, answers with the core's
// reply (a refusal carries its typed reason) and carries out the actions it returns.

import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, GRPC_SERVER_OPTIONS, bindServer, deadline, loadProto } from '../common/proto.ts';
import { fetchStageWeights } from '../common/stage-weights.ts';
import {
  decodeFault,
  decodeHalted,
  decodeHeartbeat,
  decodeInjection,
  decodeLeave,
  decodeMemoryReport,
  decodeNodeId,
  decodeProtectionReport,
  decodeReady,
  decodeRegister,
  decodeStatusRequest,
  decodeStepReport,
  encodeStepReply,
  encodeCommand,
  encodeRunStatus,
} from '../common/wire/coordinator-wire.ts';
import { decodeOrRefuse, refusalStatus } from '../common/wire/refusal-wire.ts';
import type { InjectionKind } from '../domain/inject-spec.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { Failure } from '../domain/run-status.ts';
import { weightsDigest } from '../domain/weights-digest.ts';
import { slotOf } from '../domain/replica-slots.ts';
import type { Command as CommandProto } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorHandlers } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { CoordinatorCore } from './core/coordinator-core.ts';
import type { CoordinatorStatus } from './core/coordinator-status.ts';
import type { Action, CoordinatorEvent, Reply } from './core/core-events.ts';

/** How often the adapter feeds a clock tick to the core (lease expiry). */
export const TICK_MS = 200;
/** How long close() waits for connections to end before cutting them. */
export const SHUTDOWN_GRACE_MS = 1000;
/** How long a failed node's snapshot manager gets to answer before the node counts as lost. */
export const SMP_PROBE_DEADLINE_MS = 1000;

export type RunStatus = 'finished' | 'failed' | 'stopped';

export interface RunResult {
  readonly status: RunStatus;
  readonly steps: number;
  readonly weightsDigest: string | null;
  /** With replicas: each replica's weights digest (the same definition), by replica; else empty. */
  readonly replicaDigests?: readonly string[];
  readonly failure: Failure | null;
  readonly reason: string;
}

export interface CoordinatorServerOptions {
  readonly job: JobOptions;
  readonly dataSha256: string;
  /** host:port to listen on; port 0 picks a free port. */
  readonly listen: string;
  readonly logger: Logger;
  readonly now?: () => number;
}

export interface CoordinatorServerEvents {
  action: [Action];
}

export class CoordinatorServer extends EventEmitter<CoordinatorServerEvents> {
  private readonly core: CoordinatorCore;
  port = 0;
  readonly done: Promise<RunResult>;
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly streams = new Map<string, grpc.ServerWritableStream<unknown, CommandProto>>();
  private readonly now: () => number;
  private tickTimer: NodeJS.Timeout | null = null;
  private settle!: (r: RunResult) => void;
  private settled = false;
  private digest: string | null = null;
  private replicaDigests: string[] = [];

  constructor(private readonly options: CoordinatorServerOptions) {
    super();
    this.core = new CoordinatorCore(options.job);
    this.now = options.now ?? Date.now;
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.server.addService(loadProto().ftrain.v1.Coordinator.service, this.handlers());
  }

  async start(): Promise<number> {
    this.port = await bindServer(this.server, this.options.listen);
    let lastTickMs = this.now();
    this.tickTimer = setInterval(() => {
      // A timer that fires late says the process did not run meanwhile (an overloaded machine, a
      // long pause): timers run before the poll phase that reads the heartbeats of that time.
      const now = this.now();
      const lateMs = now - lastTickMs - TICK_MS;
      lastTickMs = now;
      this.feed({ type: 'tick', ...(lateMs > TICK_MS ? { stalledMs: lateMs } : {}) });
    }, TICK_MS);
    this.tickTimer.unref();
    return this.port;
  }

  get job(): JobOptions {
    return this.options.job;
  }

  /** The run as it stands (a frozen copy). */
  status(): CoordinatorStatus {
    return this.core.status();
  }

  /** The launcher saw a node's process exit. */
  processExited(nodeId: string, detail: string): void {
    this.feed({ type: 'process-exited', nodeId, detail });
  }

  requestStop(reason: string, graceful: boolean): void {
    this.feed({ type: 'stop-requested', reason, graceful });
  }

  /** A failure is about to be caused on purpose (an injector in this process); false if refused. */
  announceInjection(nodeId: string, stage: number, step: number, kind: InjectionKind): boolean {
    return this.feed({ type: 'injection', nodeId, stage, step, kind }).ok;
  }

  /** Stops serving; command streams are ended. */
  async close(): Promise<void> {
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const s of this.streams.values()) s.end();
    this.streams.clear();
    // A frozen peer never answers a graceful shutdown: give it a moment, then cut it off.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, SHUTDOWN_GRACE_MS);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.server.forceShutdown();
  }

  private feed(event: CoordinatorEvent): Reply {
    const { reply, actions } = this.core.handle(event, this.now());
    for (const a of actions) this.execute(a);
    return reply;
  }

  private execute(action: Action): void {
    const log = this.options.logger;
    switch (action.type) {
      case 'send': {
        const stream = this.streams.get(action.nodeId);
        if (!stream) {
          log.warn({ nodeId: action.nodeId, command: action.command.kind }, 'no command stream for node');
          break;
        }
        stream.write(encodeCommand(action.command, this.options.job, this.options.dataSha256));
        if (action.command.kind === 'stop') {
          stream.end();
          this.streams.delete(action.nodeId);
        }
        break;
      }
      case 'log':
        log[action.level](action.fields ?? {}, action.msg);
        break;
      case 'notice':
        log[action.level]({}, action.msg);
        break;
      case 'training-complete':
        void this.collectWeights();
        break;
      case 'probe-smp':
        this.probeSnapshotManager(action.nodeId, action.address);
        break;
      case 'run-failed':
        this.finishRun({
          status: 'failed',
          steps: this.core.status().completedSteps,
          weightsDigest: null,
          failure: action.failure,
          reason: `node ${action.failure.nodeId}${action.failure.stage === null ? '' : ` (stage ${action.failure.stage})`} failed: ${action.failure.detail}`,
        });
        break;
      case 'run-stopped':
        this.finishRun({ status: 'stopped', steps: this.core.status().completedSteps, weightsDigest: null, failure: null, reason: action.reason });
        break;
      case 'run-finished':
        this.finishRun({ status: 'finished', steps: action.steps, weightsDigest: this.digest, replicaDigests: this.replicaDigests, failure: null, reason: 'training complete' });
        break;
      default:
        break;
    }
    this.emit('action', action);
  }

  /** Asks a failed node's snapshot manager for its status: an answer means only the worker died. */
  private probeSnapshotManager(nodeId: string, address: string): void {
    const client = new (loadProto().ftrain.v1.SnapshotManager)(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    client.Configure({ plan: null, protectedCommitStep: -1 }, { deadline: deadline(SMP_PROBE_DEADLINE_MS) }, (err) => {
      client.close();
      this.feed({ type: 'smp-probed', nodeId, alive: !err, detail: err ? `snapshot manager at ${address}: ${err.details || err.message}` : `snapshot manager at ${address} answered` });
    });
  }

  private finishRun(result: RunResult): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(result);
  }

  /**
   * Reads every stage's weights in stage order and digests them, then finishes the run. With
   * replicas, each replica's stages are digested alike, and the run's digest is replica 0's (the
   * first replica's that trained to the end).
   */
  private async collectWeights(): Promise<void> {
    try {
      const status = this.core.status();
      const job = this.options.job;
      const digests: string[] = [];
      for (let replica = 0; replica < job.replicas; replica++) {
        // A replica out when the run ended (the others trained on without it) holds no final weights: ''.
        if (status.stages[slotOf(job, replica, 0)]!.out) {
          digests.push('');
          continue;
        }
        const all: Float32Array[] = [];
        for (let stage = 0; stage < job.stages; stage++) {
          const slot = status.stages[slotOf(job, replica, stage)]!;
          const node = status.nodes.find((n) => n.nodeId === slot.nodeId)!;
          all.push(...(await fetchStageWeights(node.address, slot.stage)).map((w) => w.values));
        }
        digests.push(weightsDigest(all));
      }
      this.digest = digests.find((d) => d !== '')!;
      this.replicaDigests = job.replicas > 1 ? digests : [];
      this.feed({ type: 'finish' });
    } catch (err) {
      this.options.logger.error({ err }, 'could not read the final weights');
      this.feed({ type: 'stop-requested', reason: `could not read the final weights: ${(err as Error).message}`, graceful: false });
    }
  }

  private handlers(): CoordinatorHandlers {
    /** Decodes a request, feeds the event it makes, and answers with the core's reply. */
    const unary =
      <Req, Res>(toEvent: (request: Req) => CoordinatorEvent, toReply: (reply: Extract<Reply, { ok: true }>) => Res) =>
      (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
        const event = decodeOrRefuse(() => toEvent(call.request), callback);
        if (!event) return;
        const reply = this.feed(event);
        if (reply.ok) callback(null, toReply(reply));
        else callback(refusalStatus(reply.refusal));
      };
    const ack = () => ({});
    const job = this.options.job;
    return {
      Register: unary((r) => ({ type: 'register', ...decodeRegister(r) }), () => ({ leaseMs: job.leaseMs, heartbeatMs: job.heartbeatMs })),
      Heartbeat: unary((r) => ({ type: 'heartbeat', ...decodeHeartbeat(r) }), () => ({ leaseMs: job.leaseMs })),
      Commands: (call) => {
        const request = decodeOrRefuse(() => ({ nodeId: decodeNodeId(call.request, 'CommandsRequest') }), (status) => call.emit('error', status));
        if (!request) return;
        const nodeId = request.nodeId;
        if (this.streams.has(nodeId)) {
          call.emit('error', refusalStatus({ reason: 'duplicate', message: `node ${nodeId} already has a command stream` }));
          return;
        }
        this.streams.set(nodeId, call);
        let closed = false;
        const onClose = () => {
          if (closed) return;
          closed = true;
          if (this.streams.get(nodeId) === call) this.streams.delete(nodeId);
          this.feed({ type: 'commands-closed', nodeId });
        };
        call.on('cancelled', onClose);
        call.on('error', onClose);
        call.on('close', onClose);
        const reply = this.feed({ type: 'commands-opened', nodeId });
        if (!reply.ok) {
          closed = true;
          this.streams.delete(nodeId);
          call.emit('error', refusalStatus(reply.refusal));
          return;
        }
      },
      ReportReady: unary((r) => ({ type: 'ready', ...decodeReady(r) }), ack),
      ReportStep: unary((r) => ({ type: 'step', report: decodeStepReport(r) }), encodeStepReply),
      ReportFault: unary((r) => ({ type: 'fault', ...decodeFault(r) }), ack),
      ReportHalted: unary((r) => ({ type: 'halted', ...decodeHalted(r) }), ack),
      ReportProtection: unary((r) => ({ type: 'protection', ...decodeProtectionReport(r) }), (reply) => ({ protectedCommitStep: reply.protectedCommitStep })),
      ReportMemory: unary((r) => ({ type: 'memory', ...decodeMemoryReport(r) }), (reply) => ({ protectedCommitStep: reply.protectedCommitStep })),
      ReportInjection: unary((r) => ({ type: 'injection', ...decodeInjection(r) }), ack),
      Leave: unary((r) => ({ type: 'leave', ...decodeLeave(r) }), ack),
      Status: (call, callback) => {
        if (!decodeOrRefuse(() => (decodeStatusRequest(call.request), {}), callback)) return;
        const s = this.core.status();
        callback(null, encodeRunStatus(s.nodes, { phase: s.phase, epoch: s.epoch, completedSteps: s.completedSteps, failure: s.failure, failures: s.failures }));
      },
    };
  }
}
