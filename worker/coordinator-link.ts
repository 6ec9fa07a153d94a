// The worker's side of the Coordinator service: resolving its address, registration (retried with
// backoff while the coordinator cannot be reached, up to the connect timeout), heartbeats from a
// thread of their own, the command stream, and the reports. Refusals come back as typed
// refusals; what they mean is the core's business. A node that cannot join at all fails with an
// error class per reason (refused, unreachable, unresolved), which the command line turns into
// an exit code its node agent does not restart on.
//
// With several coordinators (`--coordinator A,B`: a leader and standbys), the link follows the
// leader: a standby's NOT_LEADER names it; a command stream that breaks, a NOT_LEADER refusal
// or heartbeats that keep failing make the node re-attach (Register with `reattach`) to whichever
// coordinator leads now, with what it holds, while training goes on. Commands of a term older
// than the newest the node has heard are dropped: a deposed leader changes nothing.

import * as grpc from '@grpc/grpc-js';
import { Worker as Thread } from 'node:worker_threads';
import type { RestoreTrace } from '../domain/node-reports.ts';
import type { Logger } from '../common/logging.ts';
import { packageUrl } from '../common/package-root.ts';
import { GRPC_CHANNEL_OPTIONS, PROTO_PATH, UNARY_DEADLINE_MS, deadline } from '../common/proto.ts';
import { LeaderFollower } from '../common/leader-follower.ts';
import { encodeInjectionKind } from '../common/wire/coordinator-wire.ts';
import { REFUSAL_TRAILER, refusalFromTrailer, refusalOf } from '../common/wire/refusal-wire.ts';
import { Backoff, type BackoffOptions } from '../domain/backoff.ts';
import { bareHost, hostOf } from '../domain/host-port.ts';
import type { InjectionKind } from '../domain/inject-spec.ts';
import { RefusalReason, RefusedError, RunEndedError, refusedError, type Refusal } from '../domain/refusal.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { RegisterRequest } from '../proto/generated/ftrain/v1/RegisterRequest.ts';
import type { RegisterReply__Output } from '../proto/generated/ftrain/v1/RegisterReply.ts';
import type { StepReport } from '../proto/generated/ftrain/v1/StepReport.ts';
import type { StepReply__Output } from '../proto/generated/ftrain/v1/StepReply.ts';
import type { WorkerOptions } from './core/worker-options.ts';
import { CoordinatorUnreachableError, connectFailure, handshakeFailure, heartbeatAddress, seconds, type RegisterWait } from './coordinator-address.ts';
import { tlsIdentity, tlsThreadData } from '../common/transport.ts';

/** The shortest deadline a registration attempt gets, even when the connect timeout is nearly over. */
const MIN_ATTEMPT_MS = 250;

/** ReportReady's deadline (see reportReady). */
const READY_DEADLINE_MS = 30_000;

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;

/** A unary call as a promise; a failed call rejects with its ServiceError. */
function unary<T>(call: (cb: Callback<T>) => unknown): Promise<T | undefined> {
  return new Promise((resolve, reject) => call((err, res) => (err ? reject(err) : resolve(res))));
}

/**
 * With several coordinators, a heartbeat not answered within this many intervals (at least 1 s)
 * has failed: the node then asks the others who leads (askWhoLeads).
 */
const HEARTBEAT_DEADLINE_INTERVALS = 2;

export class CoordinatorLink {
  private readonly leaders: LeaderFollower;
  private heartbeats: Thread | null = null;
  /** The port of the leader's heartbeat desk, as its Register reply said (0: none, its own port). */
  private heartbeatPort = 0;
  private commands: grpc.ClientReadableStream<Command__Output> | null = null;
  /** The registration, for a re-attachment to a new leader. */
  private request: (() => RegisterRequest) | null = null;
  private streamHandlers: { onCommand: (c: Command__Output) => void; onLost: (why: string) => void } | null = null;
  private reattaching: Promise<boolean> | null = null;
  private failedBeats = 0;
  private asking = false;
  /** The newest leader term heard: commands of older terms are dropped. */
  private term = 0;
  /** The last step report a coordinator took: sent again to a new leader (it may not have it). */
  private lastReport: StepReport | null = null;
  private closed = false;

  constructor(
    address: string,
    private readonly nodeId: string,
    private readonly protocol: Pick<WorkerOptions, 'registerTimeoutMs' | 'registerBackoff'>,
    private readonly log: Logger,
  ) {
    this.leaders = new LeaderFollower(address);
  }

  /** The coordinator this node talks to now (the leader, as far as it knows). */
  get address(): string {
    return this.leaders.address;
  }

  private get client(): CoordinatorClient {
    return this.leaders.client;
  }

  /**
   * Registers, retrying with backoff while the coordinator cannot be reached, for at most
   * registerTimeoutMs (`onWait` hears of each failed attempt). Throws RunEndedError when the run
   * has ended; the refusal's error class (a RefusedError) when the coordinator refuses, or a
   * RefusedError of reason `unknown` when what answers is not an ftrain coordinator;
   * CoordinatorUnreachableError when the time is up.
   */
  async register(request: () => RegisterRequest, onWait?: (w: RegisterWait) => void): Promise<{ heartbeatMs: number }> {
    this.request = request;
    const timeoutMs = this.protocol.registerTimeoutMs;
    const started = Date.now();
    const backoff = new Backoff(this.protocol.registerBackoff);
    for (let attempt = 1; ; attempt++) {
      const leftMs = timeoutMs - (Date.now() - started);
      try {
        const attemptMs = Math.max(MIN_ATTEMPT_MS, Math.min(UNARY_DEADLINE_MS, leftMs));
        const reply = await unary<RegisterReply__Output>((cb) => this.client.Register(request(), { deadline: deadline(attemptMs) }, cb));
        this.term = Math.max(this.term, Number(reply!.term ?? 0));
        this.heartbeatPort = reply!.heartbeatPort ?? 0;
        return { heartbeatMs: reply!.heartbeatMs };
      } catch (err) {
        const e = err as grpc.ServiceError;
        const at = this.address;
        const refusal = refusalOf(e);
        // A standby names the leader: ask it at once. No leader yet, or a coordinator that cannot
        // be reached: the next of the list, after the backoff below.
        this.leaders.observe(e);
        const noLeader = refusal?.reason === RefusalReason.notLeader;
        if (noLeader && refusal.leaderAddress) continue;
        if (refusal?.reason === RefusalReason.runEnded) throw new RunEndedError({ ...refusal, message: `not joining: ${refusal.message}` }, 'Register', e);
        if (refusal && !noLeader) throw refusedError({ ...refusal, message: `refused by the coordinator at ${at}: ${refusal.message}` }, 'Register', e);
        const handshake = noLeader ? null : handshakeFailure(e, at, tlsIdentity() !== null);
        if (handshake !== null) throw new RefusedError({ reason: RefusalReason.notMember, message: `not joining: ${handshake}` }, 'Register', { cause: err });
        const failure = noLeader ? 'no coordinator leads yet' : connectFailure(e);
        if (failure === null) {
          const message = `what answers at ${at} is not an ftrain coordinator (${grpc.status[e.code] ?? e.code}: ${e.details || e.message}); check the address in --coordinator`;
          throw new RefusedError({ reason: RefusalReason.unknown, message }, 'Register', { cause: err });
        }
        const waitedMs = Date.now() - started;
        if (waitedMs >= timeoutMs) throw new CoordinatorUnreachableError(this.leaders.all.join(','), timeoutMs, failure, { cause: err });
        const retryInMs = Math.min(backoff.next(), timeoutMs - waitedMs);
        if (attempt === 1) this.log.info({ coordinator: this.address }, 'waiting for the coordinator');
        onWait?.({ address: this.address, attempt, failure, waitedMs, timeoutMs, retryInMs });
        await new Promise((r) => setTimeout(r, retryInMs));
      }
    }
  }

  /** Heartbeats every `intervalMs` from a thread: tfjs blocks this one for seconds per micro-batch. */
  startHeartbeats(intervalMs: number, onRefused: (refusal: Refusal) => void): void {
    const thread = new Thread(packageUrl('worker/heartbeat-thread.mjs'), {
      workerData: {
        protoPath: PROTO_PATH,
        coordinator: heartbeatAddress(this.address, this.heartbeatPort),
        nodeId: this.nodeId,
        intervalMs,
        // With one coordinator nothing else can be done: a slow answer is waited for.
        deadlineMs: this.leaders.several ? Math.min(UNARY_DEADLINE_MS, Math.max(1000, HEARTBEAT_DEADLINE_INTERVALS * intervalMs)) : UNARY_DEADLINE_MS,
        channelOptions: GRPC_CHANNEL_OPTIONS,
        refusalTrailer: REFUSAL_TRAILER,
        tls: tlsThreadData(),
      },
    });
    thread.on('message', (m: { type: 'taken' } | { type: 'beat' } | { type: 'unsure' } | { type: 'failed'; code: grpc.status; details: string; refusal: Uint8Array | null; address: string }) => {
      if (m.type === 'unsure') {
        // Its leader cannot reach the store: cut off from it, another may have been elected.
        if (this.leaders.several) void this.askWhoLeads(`the coordinator at ${this.address} leads without reaching its store`);
        return;
      }
      if (m.type === 'taken') {
        this.log.info({ intervalMs }, 'first heartbeat taken: the lease runs');
        return;
      }
      if (m.type === 'beat') {
        this.failedBeats = 0;
        return;
      }
      // A failure of the beats to a coordinator this node has left since (it re-attached to
      // another leader meanwhile): that one no longer speaks for the node, not even to fence it.
      if (m.address !== heartbeatAddress(this.address, this.heartbeatPort)) {
        this.log.info({ from: m.address, code: m.code, details: m.details }, 'a heartbeat failure from a coordinator this node has left: ignored');
        return;
      }
      const refusal = m.refusal ? refusalFromTrailer(m.refusal, m.details) : null;
      if (refusal?.reason === RefusalReason.notLeader) {
        // The coordinator beaten to no longer leads: find the one that does.
        void this.reattach(`the coordinator at ${this.address} no longer leads`);
        return;
      }
      if (refusal) onRefused(refusal);
      else {
        this.log.warn({ code: m.code, details: m.details }, 'heartbeat failed');
        // A leader that does not answer (frozen, cut off) while another may lead: ask the others.
        this.failedBeats += 1;
        if (this.leaders.several) void this.askWhoLeads(`${this.failedBeats} heartbeat(s) to ${this.address} failed (${m.details})`);
      }
    });
    thread.on('error', (err) => this.log.error({ err }, 'heartbeat thread failed'));
    thread.unref();
    this.heartbeats = thread;
  }

  /**
   * The leader this node beats to does not answer: asks the other coordinators who leads, and
   * re-attaches when one of them leads or names another leader. While they name this one (it is
   * only slow) or cannot be reached either, the node stays: leaving a live leader would end its
   * command stream, which that leader takes for the node's loss.
   */
  private async askWhoLeads(why: string): Promise<void> {
    if (this.asking || this.reattaching || this.closed) return;
    this.asking = true;
    try {
      const current = this.address;
      const leader = await this.leaders.anotherLeader(current, this.nodeId);
      if (!leader || this.address !== current || this.reattaching) return;
      this.leaders.follow(leader);
      void this.reattach(`${why}; the coordinator at ${leader} leads`);
    } finally {
      this.asking = false;
    }
  }

  /**
   * Opens this node's command stream; `onLost` when it ends or fails and, with several
   * coordinators, no coordinator takes the node back (see reattach).
   */
  openCommands(onCommand: (c: Command__Output) => void, onLost: (why: string) => void): void {
    this.streamHandlers = { onCommand, onLost };
    const stream = this.client.Commands({ nodeId: this.nodeId });
    this.commands = stream;
    const lost = (why: string) => {
      if (this.commands !== stream || this.closed) return;
      if (this.leaders.several) void this.reattach(`the command stream from ${this.address} broke: ${why}`);
      else onLost(why);
    };
    stream.on('data', (c: Command__Output) => {
      const term = Number(c.term ?? 0);
      if (term < this.term) {
        this.log.warn({ term, newest: this.term, command: c.kind }, 'a command of an older leader refused: a deposed coordinator changes nothing');
        return;
      }
      this.term = term;
      onCommand(c);
    });
    stream.on('error', (err: grpc.ServiceError) => lost(err.details || err.message));
    stream.on('end', () => lost('it closed the command stream'));
  }

  /**
   * Attaches this node to whichever coordinator leads now, in its place: Register with
   * `reattach` (each coordinator of the list in turn, the leader a standby names first), then the
   * heartbeats and the command stream go there. One attempt at a time; resolves false, after
   * telling `onLost`, when no coordinator takes the node back within the connect timeout or one
   * refuses it (it no longer knows the node, or another holds its id).
   */
  reattach(why: string): Promise<boolean> {
    if (this.closed || !this.request || !this.streamHandlers) return Promise.resolve(false);
    this.reattaching ??= this.attachAgain(why).finally(() => (this.reattaching = null));
    return this.reattaching;
  }

  private async attachAgain(why: string): Promise<boolean> {
    const handlers = this.streamHandlers!;
    const old = this.commands;
    this.commands = null;
    old?.cancel();
    this.log.warn({ coordinator: this.address, why }, 'looking for the leader to re-attach to');
    const started = Date.now();
    const timeoutMs = this.protocol.registerTimeoutMs;
    const backoff = new Backoff(this.protocol.registerBackoff);
    for (;;) {
      if (this.closed) return false;
      const at = this.address;
      try {
        const reply = await unary<RegisterReply__Output>((cb) => this.client.Register({ ...this.request!(), reattach: true }, { deadline: deadline() }, cb));
        this.term = Math.max(this.term, Number(reply!.term ?? 0));
        this.failedBeats = 0;
        this.heartbeatPort = reply!.heartbeatPort ?? 0;
        this.heartbeats?.postMessage({ type: 'coordinator', address: heartbeatAddress(at, this.heartbeatPort) });
        this.log.warn({ coordinator: at, term: this.term, afterMs: Date.now() - started }, 're-attached to the leader');
        this.openCommands(handlers.onCommand, handlers.onLost);
        // The new leader may lack this node's last steps (the old one took them while its store
        // could not be reached, or at the very end): the last report catches its slot up, before
        // any later report goes out. Taken again, it changes nothing.
        const last = this.lastReport;
        if (last) {
          await unary((cb) => this.client.ReportStep(last, { deadline: deadline() }, cb)).catch((err: unknown) =>
            this.log.info({ step: last.step, err: (err as grpc.ServiceError).details ?? String(err) }, 'the last step report, sent again to the new leader, was not taken'),
          );
        }
        return true;
      } catch (err) {
        const e = err as grpc.ServiceError;
        const refusal = refusalOf(e);
        this.leaders.observe(e);
        if (refusal && refusal.reason !== RefusalReason.notLeader) {
          handlers.onLost(`the coordinator at ${at} did not take this node back: ${refusal.message} (${why})`);
          return false;
        }
        if (refusal?.reason === RefusalReason.notLeader && refusal.leaderAddress) continue;
        if (!refusal && e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED) this.leaders.next();
        if (Date.now() - started >= timeoutMs) {
          handlers.onLost(`no coordinator of ${this.leaders.all.join(', ')} took this node back within ${seconds(timeoutMs)} s (${why})`);
          return false;
        }
        await new Promise((r) => setTimeout(r, Math.min(backoff.next(), 1000)));
      }
    }
  }

  /**
   * A unary report to the leader. With several coordinators, one that fails because the
   * coordinator does not lead or cannot be reached is sent again once the node has re-attached.
   */
  private async toLeader<T>(call: (client: CoordinatorClient) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const at = this.address;
      try {
        return await call(this.client);
      } catch (err) {
        const e = err as grpc.ServiceError;
        const refusal = refusalOf(e);
        const leaderGone = refusal?.reason === RefusalReason.notLeader || (!refusal && (e.code === grpc.status.UNAVAILABLE || e.code === grpc.status.DEADLINE_EXCEEDED));
        if (!this.leaders.several || !leaderGone || attempt >= 2 || this.closed) throw err;
        // Sent to a coordinator this node has left since (it re-attached meanwhile): sent again
        // to the one it is attached to now, which must not be left.
        if (this.address !== at && !this.reattaching) continue;
        if (this.reattaching) {
          if (!(await this.reattaching)) throw err;
          continue;
        }
        // Not answered in time: leave only for another leader (this one may be slow, or holding
        // a refusal back while its store cannot be reached; leaving a live leader breaks the
        // command stream it counts on). Else the report is sent to it again.
        if (e.code === grpc.status.DEADLINE_EXCEEDED && !refusal) {
          const other = await this.leaders.anotherLeader(at, this.nodeId);
          if (!other || this.address !== at) continue;
          this.leaders.follow(other);
        }
        if (!(await this.reattach(`a report to ${at} failed: ${e.details || e.message}`))) throw err;
      }
    }
  }

  /**
   * The last stage's ReportReady is answered after the coordinator has started every stage, and
   * the reply can then wait behind all of them taking their first step on the same cores (8
   * replica workers and their snapshot managers on 2 cores took over 5 s): a timeout here would
   * end the run, so this call waits longer than the others. A coordinator that is gone is found
   * by the command stream breaking.
   */
  reportReady(stage: number, epoch: number, checkpointSteps: number[], trace: RestoreTrace | null = null): Promise<unknown> {
    return this.toLeader((c) => unary((cb) => c.ReportReady({ nodeId: this.nodeId, stage, epoch, checkpointSteps, ...(trace ? { trace } : {}) }, { deadline: deadline(READY_DEADLINE_MS) }, cb)));
  }

  reportHalted(stage: number, epoch: number, snapshotSteps: number[], memoryStep: number): Promise<unknown> {
    return this.toLeader((c) => unary((cb) => c.ReportHalted({ nodeId: this.nodeId, stage, epoch, snapshotSteps, memoryStep }, { deadline: deadline() }, cb)));
  }

  async reportStep(report: Omit<StepReport, 'nodeId'>): Promise<StepReply__Output | undefined> {
    const request: StepReport = { ...report, nodeId: this.nodeId };
    const reply = await this.toLeader((c) => unary<StepReply__Output>((cb) => c.ReportStep(request, { deadline: deadline() }, cb)));
    this.lastReport = request;
    return reply;
  }

  /** Not awaited by anyone: the coordinator answers a fault with Stop. */
  reportFault(stage: number, message: string): void {
    this.client.ReportFault({ nodeId: this.nodeId, stage, message }, { deadline: deadline() }, () => undefined);
  }

  /** The coordinator took the notice (true), or the reason it did not. */
  leave(graceMs: number, reason: string): Promise<true | string> {
    return new Promise((resolve) => this.client.Leave({ nodeId: this.nodeId, graceMs, reason }, { deadline: deadline() }, (err) => resolve(err ? err.details || err.message : true)));
  }

  /** Announces an injected failure; true when it was taken (the first time). */
  announce(stage: number, step: number, kind: InjectionKind): Promise<boolean> {
    return new Promise((resolve) => this.client.ReportInjection({ nodeId: this.nodeId, stage, step, kind: encodeInjectionKind(kind) }, { deadline: deadline() }, (err) => resolve(!err)));
  }

  close(): void {
    this.closed = true;
    this.heartbeats?.postMessage('stop');
    this.commands?.cancel();
    this.leaders.close();
  }
}
