// The coordinator's gRPC adapter: feeds RPCs, command-stream closures, process exits and
// clock ticks into CoordinatorCore and carries out the actions it returns.

import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logging.ts';
import type { JobOptions } from '../domain/job-options.ts';
import {
  GRPC_CHANNEL_OPTIONS,
  GRPC_SERVER_OPTIONS,
  bindServer,
  deadline,
  loadProto,
  statusError,
} from '../common/proto.ts';
import { weightsDigest } from '../domain/weights-digest.ts';
import { fetchStageWeights } from '../common/stage-weights.ts';
import type { Command as CommandProto } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorHandlers } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { ProtectionStatus } from '../domain/erasure-protection.ts';
import { CoordinatorCore, type Action, type Command, type CoordinatorEvent, type Failure, type Reply } from './coordinator-core.ts';

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

const REPLY_CODES: Record<Exclude<Reply, { ok: true }>['code'], grpc.status> = {
  'already-exists': grpc.status.ALREADY_EXISTS,
  'not-found': grpc.status.NOT_FOUND,
  'invalid-argument': grpc.status.INVALID_ARGUMENT,
  'failed-precondition': grpc.status.FAILED_PRECONDITION,
};

function toProto(command: Command, job: JobOptions, dataSha256: string): CommandProto {
  switch (command.kind) {
    case 'assign':
      return {
        assign: {
          stage: command.stage,
          numStages: command.numStages,
          prevAddress: command.prevAddress,
          nextAddress: command.nextAddress,
          jobJson: JSON.stringify(job),
          dataSha256,
          epoch: command.epoch,
          restoreStep: command.restoreStep,
          injectionsJson: JSON.stringify(command.injections),
          planJson: command.plan ? JSON.stringify(command.plan) : '',
          rebuildJson: command.rebuild ? JSON.stringify(command.rebuild) : '',
          checkfreeJson: command.checkfree ? JSON.stringify(command.checkfree) : '',
        },
      };
    case 'inject':
      return { inject: { kind: command.injection.kind, step: command.injection.step } };
    case 'protect':
      return { protect: { planJson: command.plan ? JSON.stringify(command.plan) : '' } };
    case 'halt':
      return { halt: { epoch: command.epoch, reason: command.reason } };
    case 'start':
      return { start: { fromStep: command.fromStep, toStep: command.toStep, restoreCheckpointStep: command.restoreCheckpointStep, fromScratch: command.fromScratch ?? false } };
    case 'limit':
      return { limit: { toStep: command.toStep, pause: command.pause ?? false } };
    case 'stop':
      return { stop: { reason: command.reason, failed: command.failed } };
  }
}

export class CoordinatorServer extends EventEmitter<CoordinatorServerEvents> {
  readonly core: CoordinatorCore;
  port = 0;
  readonly done: Promise<RunResult>;
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly streams = new Map<string, grpc.ServerWritableStream<unknown, CommandProto>>();
  private readonly now: () => number;
  private tickTimer: NodeJS.Timeout | null = null;
  private settle!: (r: RunResult) => void;
  private settled = false;
  private digest: string | null = null;

  constructor(private readonly options: CoordinatorServerOptions) {
    super();
    this.core = new CoordinatorCore(options.job);
    this.now = options.now ?? Date.now;
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.server.addService(loadProto().ftrain.v1.Coordinator.service, this.handlers());
  }

  async start(): Promise<number> {
    this.port = await bindServer(this.server, this.options.listen);
    this.tickTimer = setInterval(() => this.feed({ type: 'tick' }), TICK_MS);
    this.tickTimer.unref();
    return this.port;
  }

  /** The launcher saw a node's process exit. */
  processExited(nodeId: string, detail: string): void {
    this.feed({ type: 'process-exited', nodeId, detail });
  }

  requestStop(reason: string, graceful: boolean): void {
    this.feed({ type: 'stop-requested', reason, graceful });
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
        stream.write(toProto(action.command, this.options.job, this.options.dataSha256));
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
          steps: this.core.completedSteps,
          weightsDigest: null,
          failure: action.failure,
          reason: `node ${action.failure.nodeId}${action.failure.stage === null ? '' : ` (stage ${action.failure.stage})`} failed: ${action.failure.detail}`,
        });
        break;
      case 'run-stopped':
        this.finishRun({ status: 'stopped', steps: this.core.completedSteps, weightsDigest: null, failure: null, reason: action.reason });
        break;
      case 'run-finished':
        this.finishRun({ status: 'finished', steps: action.steps, weightsDigest: this.digest, failure: null, reason: 'training complete' });
        break;
      default:
        break;
    }
    this.emit('action', action);
  }

  /** Asks a failed node's snapshot manager for its status: an answer means only the worker died. */
  private probeSnapshotManager(nodeId: string, address: string): void {
    const client = new (loadProto().ftrain.v1.SnapshotManager)(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    client.Configure({ planJson: '', protectedCommitStep: -1 }, { deadline: deadline(SMP_PROBE_DEADLINE_MS) }, (err) => {
      client.close();
      this.feed({ type: 'smp-probed', nodeId, alive: !err, detail: err ? `snapshot manager at ${address}: ${err.details || err.message}` : `snapshot manager at ${address} answered` });
    });
  }

  private finishRun(result: RunResult): void {
    if (this.settled) return;
    this.settled = true;
    this.settle(result);
  }

  /** Reads every stage's weights in stage order and digests them, then finishes the run. */
  private async collectWeights(): Promise<void> {
    try {
      const all: Float32Array[] = [];
      for (let stage = 0; stage < this.core.stages.length; stage++) {
        const nodeId = this.core.stages[stage]!.nodeId!;
        const node = this.core.nodes.get(nodeId)!;
        all.push(...(await fetchStageWeights(node.address, stage)).map((w) => w.values));
      }
      this.digest = weightsDigest(all);
      this.feed({ type: 'finish' });
    } catch (err) {
      this.options.logger.error({ err }, 'could not read the final weights');
      this.feed({ type: 'stop-requested', reason: `could not read the final weights: ${(err as Error).message}`, graceful: false });
    }
  }

  private handlers(): CoordinatorHandlers {
    const answer = <T>(reply: Reply, value: T, callback: grpc.sendUnaryData<T>) => {
      if (reply.ok) callback(null, value);
      else callback(statusError(REPLY_CODES[reply.code], reply.message));
    };
    return {
      Register: (call, callback) => {
        const r = call.request;
        const reply = this.feed({
          type: 'register',
          nodeId: r.nodeId,
          address: r.address,
          pid: r.pid,
          hostname: r.hostname,
          snapshots: r.snapshotStage >= 0 ? { stage: r.snapshotStage, steps: r.snapshotSteps } : null,
          smpAddress: r.smpAddress,
          smpPid: r.smpPid,
          agentPid: r.agentPid,
        });
        answer(reply, { nodeId: r.nodeId, leaseMs: this.options.job.leaseMs, heartbeatMs: this.options.job.heartbeatMs }, callback);
      },
      Heartbeat: (call, callback) => {
        answer(this.feed({ type: 'heartbeat', nodeId: call.request.nodeId }), { leaseMs: this.options.job.leaseMs }, callback);
      },
      Commands: (call) => {
        const nodeId = call.request.nodeId;
        if (this.streams.has(nodeId)) {
          call.emit('error', statusError(grpc.status.ALREADY_EXISTS, `node ${nodeId} already has a command stream`));
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
          call.emit('error', statusError(REPLY_CODES[reply.code], reply.message));
        }
      },
      ReportReady: (call, callback) => {
        const r = call.request;
        answer(this.feed({ type: 'ready', nodeId: r.nodeId, stage: r.stage, epoch: r.epoch, checkpointSteps: r.checkpointSteps }), {}, callback);
      },
      ReportStep: (call, callback) => {
        const r = call.request;
        const reply = this.feed({
          type: 'step',
          report: {
            nodeId: r.nodeId,
            stage: r.stage,
            step: r.step,
            loss: r.loss,
            gradNorm: r.gradNorm,
            clippedGradNorm: r.clippedGradNorm,
            computeMs: r.computeMs,
            waitMs: r.waitMs,
            stepMs: r.stepMs,
            tokens: r.tokens,
            last: r.last,
            epoch: r.epoch,
            snapshotStep: r.snapshotStep,
            snapshotStallMs: r.snapshotStallMs,
            snapshotCopyMs: r.snapshotCopyMs,
            snapshotBytes: r.snapshotBytes,
            protection: parseProtection(r.protectionJson),
          },
        });
        answer(reply, { protectedCommitStep: this.core.protectedCommitStep }, callback);
      },
      ReportFault: (call, callback) => {
        const r = call.request;
        answer(this.feed({ type: 'fault', nodeId: r.nodeId, stage: r.stage, message: r.message }), {}, callback);
      },
      ReportHalted: (call, callback) => {
        const r = call.request;
        answer(this.feed({ type: 'halted', nodeId: r.nodeId, stage: r.stage, epoch: r.epoch, snapshotSteps: r.snapshotSteps }), {}, callback);
      },
      ReportProtection: (call, callback) => {
        const status = parseProtection(call.request.statusJson);
        if (!status) {
          callback(statusError(grpc.status.INVALID_ARGUMENT, 'status_json is not a protection status'));
          return;
        }
        answer(this.feed({ type: 'protection', nodeId: call.request.nodeId, status }), { protectedCommitStep: this.core.protectedCommitStep }, callback);
      },
      ReportInjection: (call, callback) => {
        const r = call.request;
        answer(this.feed({ type: 'injection', nodeId: r.nodeId, stage: r.stage, step: r.step, kind: r.kind }), {}, callback);
      },
      Leave: (call, callback) => {
        const r = call.request;
        answer(this.feed({ type: 'leave', nodeId: r.nodeId, graceMs: r.graceMs, reason: r.reason }), {}, callback);
      },
      Status: (_call, callback) => {
        const core = this.core;
        callback(null, {
          nodesJson: JSON.stringify(core.nodeList()),
          reportJson: JSON.stringify({ phase: core.phase, epoch: core.epoch, completedSteps: core.completedSteps, failure: core.failure, failures: core.recovered }),
        });
      },
    };
  }
}

/** The protection status a step report carries; malformed JSON counts as none. */
function parseProtection(json: string): ProtectionStatus | null {
  if (!json) return null;
  try {
    const v = JSON.parse(json) as ProtectionStatus;
    return Array.isArray(v.versions) && typeof v.heldBytes === 'number' ? v : null;
  } catch {
    return null;
  }
}


