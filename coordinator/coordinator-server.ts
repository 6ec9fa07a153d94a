// The coordinator's gRPC adapter: decodes RPCs (common/wire/coordinator-wire.ts), feeds them,
// command-stream closures, process exits and clock ticks into the core, answers with the core's
// reply (a refusal carries its typed reason) and carries out the actions it returns.
//
// With a state store (`ha`), several coordinators serve one job and one of them leads
// (coordinator-leadership.ts): a standby refuses every node request with NOT_LEADER, naming the
// leader; a leader answers, and carries out its decisions, once the store holds the state they
// follow from (state-writer.ts).

import * as grpc from '@grpc/grpc-js';
import { EventEmitter } from 'node:events';
import type { Logger } from '../common/logging.ts';
import { GRPC_SERVER_OPTIONS, bindServer, loadProto } from '../common/proto.ts';
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
import { RunPhase, type Failure } from '../domain/run-status.ts';
import type { Command as CommandProto } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorHandlers } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { CoordinatorCore } from './core/coordinator-core.ts';
import type { Refusal } from '../domain/refusal.ts';
import { HeartbeatDesk } from './heartbeat-desk.ts';
import { Admission, actingNode } from './admission.ts';
import { heartbeatsOnCoordinatorPort, takeDeskBeats, type BeatHost, type BeatStreams } from './heartbeat-intake.ts';
import { finalDigests, probeSnapshotManager } from './node-calls.ts';
import { CoordinatorLeadership, type HaOptions, type LeadershipHost, type RoleChange } from './coordinator-leadership.ts';
import type { LeaderInfo } from './store/state-store.ts';
import type { CoordinatorStatus } from './core/coordinator-status.ts';
import type { Action, CoordinatorEvent, Reply } from './core/core-events.ts';

export type { HaOptions } from './coordinator-leadership.ts';

/** How often the adapter feeds a clock tick to the core (lease expiry). */
export const TICK_MS = 200;
/** How long close() waits for connections to end before cutting them. */
export const SHUTDOWN_GRACE_MS = 1000;

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
  /** The heartbeat desk's port (heartbeat-desk.ts), on the host of `listen`; 0 or absent: a free one. */
  readonly heartbeatPort?: number;
  /** Leader and standbys through a state store; absent: this coordinator alone, its state in its process. */
  readonly ha?: HaOptions;
  /** The job's join token, required at Register; null or absent: none (`--insecure`). */
  readonly joinToken?: string | null;
}

export interface CoordinatorServerEvents {
  action: [Action];
  /** This coordinator leads (`term`), or stands by (`leader`: who leads, null when no one does). */
  role: [RoleChange];
  /** The leader's store cannot be reached (why), or answers again (null). */
  store: [string | null];
}

export class CoordinatorServer extends EventEmitter<CoordinatorServerEvents> {
  private core: CoordinatorCore;
  /** With a store: this coordinator's part in the job's leadership. */
  private readonly leadership: CoordinatorLeadership | null;
  private closing = false;
  /** Why this leader cannot reach its store, or null (heartbeat replies then say the leadership is unsure). */
  private storeTrouble: string | null = null;
  port = 0;
  readonly done: Promise<RunResult>;
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  /** Takes the nodes' heartbeats on a thread of its own (started with the server). */
  private desk: HeartbeatDesk | null = null;
  private readonly streams = new Map<string, grpc.ServerWritableStream<unknown, CommandProto>>();
  /** The open Heartbeats streams on this coordinator's own port: ended when it closes. */
  private readonly beating: BeatStreams = new Set();
  /** How heartbeats reach the core and are answered. */
  private readonly beats: BeatHost = {
    now: () => this.now(),
    feed: (event, answer) => this.feedThen(event, answer),
    answer: () => ({ leaseMs: this.core.job.leaseMs, leaderUnsure: this.storeTrouble !== null }),
  };
  private readonly now: () => number;
  /** Who may act as a node: the join token at Register, and with TLS the certificate's name. */
  readonly admission: Admission;
  private tickTimer: NodeJS.Timeout | null = null;
  private settle!: (r: RunResult) => void;
  private settled = false;
  private digest: string | null = null;
  private replicaDigests: string[] = [];

  constructor(private readonly options: CoordinatorServerOptions) {
    super();
    this.core = new CoordinatorCore(options.job);
    this.leadership = options.ha ? new CoordinatorLeadership(options.ha, this.leadershipHost()) : null;
    this.now = options.now ?? Date.now;
    this.admission = new Admission(options.joinToken ?? null, options.logger);
    this.done = new Promise((resolve) => (this.settle = resolve));
    this.server.addService(loadProto().ftrain.v1.Coordinator.service, this.handlers());
  }

  async start(): Promise<number> {
    this.port = await bindServer(this.server, this.options.listen);
    const host = this.options.listen.slice(0, this.options.listen.lastIndexOf(':'));
    this.desk = new HeartbeatDesk({
      listen: `${host}:${this.options.heartbeatPort ?? 0}`,
      leaseMs: this.core.job.leaseMs,
      onBeats: (beats) => takeDeskBeats(this.beats, this.desk!, beats),
      onError: (err) => this.options.logger.error({ err: err.message }, 'the heartbeat desk failed: nodes beat on the coordinator port once their stream ends'),
    });
    try {
      await this.desk.start();
    } catch (err) {
      this.server.forceShutdown();
      throw err;
    }
    if (this.leadership) this.desk.lead(false, refusalStatus(this.notLeader()));
    this.leadership?.stand();
    let lastTickMs = this.now();
    this.tickTimer = setInterval(() => {
      this.desk?.pulse();
      if (!this.leads) return;
      // A timer that fires late says the process did not run meanwhile (an overloaded machine, a
      // long pause): timers run before the poll phase that reads the heartbeats of that time.
      const now = this.now();
      // Every beat the desk took so far counts before a lease is found run out.
      this.desk?.drain();
      // Late: the beats of that time wait in the sockets, unless the desk's thread ran meanwhile
      // and took them; it did not run either only when the whole process did not.
      const lateMs = Math.min(now - lastTickMs - TICK_MS, this.desk ? this.desk.stalledMs() : Infinity);
      lastTickMs = now;
      this.feed({ type: 'tick', ...(lateMs > TICK_MS ? { stalledMs: lateMs } : {}) });
    }, TICK_MS);
    this.tickTimer.unref();
    return this.port;
  }

  /** The job: as given, or as the store held it when this coordinator took a run over. */
  get job(): JobOptions {
    return this.core.job;
  }

  /** The heartbeat desk's port (0 before start). */
  get heartbeatPort(): number {
    return this.desk?.port ?? 0;
  }

  /** Whether this coordinator decides: always without a store; with one, while it leads. */
  get leads(): boolean {
    return !this.leadership || this.leadership.leads;
  }

  /** With a store: who leads as far as this coordinator knows (itself included); null without one. */
  get leader(): LeaderInfo | null {
    return this.leadership?.leader ?? null;
  }

  /** The address nodes reach this coordinator at. */
  private get advertised(): string {
    const a = this.options.ha?.advertise ?? this.options.listen;
    return a.replace(/:0$/, `:${this.port}`);
  }

  /** What the leadership does to this coordinator. */
  private leadershipHost(): LeadershipHost {
    return {
      log: this.options.logger,
      advertised: () => this.advertised,
      takeOver: (state) => {
        if (state) this.core = CoordinatorCore.restore(state.job, state, this.now());
        // The run ended under the old leader: nothing is left to decide.
        const s = this.core.status();
        if (s.phase === RunPhase.finished || s.phase === RunPhase.stopped || s.phase === RunPhase.failed) {
          this.finishRun({ status: s.phase, steps: s.completedSteps, weightsDigest: null, failure: s.failure, reason: s.failure ? `node ${s.failure.nodeId} failed: ${s.failure.detail}` : `the run had ${s.phase} under the previous leader` });
        }
      },
      durable: () => this.core.durable(),
      endStreams: () => {
        for (const s of this.streams.values()) s.end();
        this.streams.clear();
      },
      role: (change) => {
        if (change.leading) {
          this.storeTrouble = null;
          this.desk?.unsure(false);
          this.core.storeReachable(true, null);
        }
        this.desk?.lead(change.leading, change.leading ? null : refusalStatus(this.notLeader()));
        this.emit('role', change);
      },
      store: (why, written) => {
        this.storeTrouble = why;
        this.desk?.unsure(why !== null);
        const withdrawn = this.core.storeReachable(why === null, written ?? null);
        if (withdrawn) this.options.logger.warn({ ...withdrawn }, `snapshots every ${withdrawn.every} steps from step ${withdrawn.fromStep}: withdrawn, the store could not hold it; the interval stays as it was until the store answers`);
        this.emit('store', why);
      },
    };
  }

  /** The refusal a standby answers node requests with. */
  private notLeader(): Refusal {
    return this.leadership!.notLeader();
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

  /** Stops serving; command streams are ended. A leader lets its lease run out (a standby takes over then). */
  async close(): Promise<void> {
    this.closing = true;
    await this.leadership?.close();
    if (this.tickTimer) clearInterval(this.tickTimer);
    for (const s of this.streams.values()) s.end();
    this.streams.clear();
    for (const s of this.beating) s.end();
    this.beating.clear();
    await this.desk?.close();
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
    let answer: Reply | null = null;
    this.feedThen(event, (r) => (answer = r));
    // Without a store, the answer is there at once; with one it may wait for the write: the
    // callers that cannot wait (process exits, ticks, the launcher) need no answer.
    return answer ?? { ok: true, protectedCommitStep: -1, snapshotInterval: null };
  }

  /**
   * Feeds an event; `answer` gets the reply. A leader with a store answers, and carries out the
   * actions (but logs), only once the store holds the state after the event: a reply or a
   * command never tells of a decision a new leader would not know. A leader fenced meanwhile
   * answers NOT_LEADER and carries out nothing.
   */
  private feedThen(event: CoordinatorEvent, answer: (reply: Reply) => void): void {
    if (!this.leads) return answer({ ok: false, refusal: this.notLeader() });
    const { reply, actions } = this.core.handle(event, this.now());
    const writer = this.leadership?.writer;
    // Heartbeats and memory reports change nothing the store keeps (leases and memory figures are
    // not durable): answered at once, without a write, however many nodes beat.
    if (!writer || event.type === 'heartbeat' || event.type === 'memory') {
      for (const a of actions) this.execute(a);
      return answer(reply);
    }
    // Decisions wait for the store: commands, and the end of the run. What only tells of the run
    // (logs, progress, the ledger) goes at once: it changes nothing a new leader would act on.
    const decides = (a: Action) => a.type === 'send' || a.type === 'training-complete' || a.type === 'run-failed' || a.type === 'run-stopped' || a.type === 'run-finished' || a.type === 'probe-smp';
    const later = actions.filter(decides);
    for (const a of actions) if (!decides(a)) this.execute(a);
    writer.afterEvent(
      () => {
        for (const a of later) this.execute(a);
      },
      // Released before the store holds the event's state (it cannot be reached), a reply tells of
      // the interval the store holds: a change decided since was withdrawn (CoordinatorCore.storeReachable).
      () => answer(reply.ok && writer.storeUnreachable ? { ...reply, snapshotInterval: this.core.announcedInterval } : reply),
      () => answer({ ok: false, refusal: this.notLeader() }),
      !reply.ok,
    );
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
        stream.write({ ...encodeCommand(action.command, this.core.job, this.options.dataSha256), term: this.leadership?.term ?? 0 });
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
    probeSnapshotManager(address, (alive, detail) => this.feed({ type: 'smp-probed', nodeId, alive, detail }));
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
      const { digest, replicaDigests } = await finalDigests(this.core.status(), this.core.job);
      this.digest = digest;
      this.replicaDigests = replicaDigests;
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
        const outsider = event.type === 'register' ? this.admission.register(call, event.nodeId, (call.request as { joinToken?: string }).joinToken ?? '') : this.admission.acting(call, actingNode(event));
        if (outsider) return callback(refusalStatus(outsider));
        this.feedThen(event, (reply) => (reply.ok ? callback(null, toReply(reply)) : callback(refusalStatus(reply.refusal))));
      };
    const ack = () => ({});
    return {
      Register: unary((r) => ({ type: 'register', ...decodeRegister(r) }), () => ({ leaseMs: this.core.job.leaseMs, heartbeatMs: this.core.job.heartbeatMs, term: this.leadership?.term ?? 0, heartbeatPort: this.desk?.port ?? 0 })),
      Heartbeat: unary((r) => ({ type: 'heartbeat', ...decodeHeartbeat(r) }), () => this.beats.answer()),
      Heartbeats: heartbeatsOnCoordinatorPort(this.beats, this.beating),
      Commands: (call) => {
        const request = decodeOrRefuse(() => ({ nodeId: decodeNodeId(call.request, 'CommandsRequest') }), (status) => call.emit('error', status));
        if (!request) return;
        const nodeId = request.nodeId;
        const outsider = this.admission.acting(call, nodeId);
        if (outsider) {
          call.emit('error', refusalStatus(outsider));
          return;
        }
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
          // This coordinator ending its own streams (closing, or no longer leading) loses no node.
          if (this.closing || !this.leads) return;
          this.feed({ type: 'commands-closed', nodeId });
        };
        call.on('cancelled', onClose);
        call.on('error', onClose);
        call.on('close', onClose);
        this.feedThen({ type: 'commands-opened', nodeId }, (reply) => {
          if (reply.ok) return;
          closed = true;
          if (this.streams.get(nodeId) === call) this.streams.delete(nodeId);
          call.emit('error', refusalStatus(reply.refusal));
        });
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
        if (!this.leads) return callback(refusalStatus(this.notLeader()));
        const s = this.core.status();
        callback(null, { ...encodeRunStatus(s.nodes, { phase: s.phase, epoch: s.epoch, completedSteps: s.completedSteps, failure: s.failure, failures: s.failures }), term: this.leadership?.term ?? 0 });
      },
    };
  }
}
