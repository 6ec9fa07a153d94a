// The worker's side of the Coordinator service: registration (retried with backoff while the
// coordinator cannot be reached), heartbeats from a thread of their own, the command stream, and
// the reports. Refusals come back as typed refusals; what they mean is the core's business.

import * as grpc from '@grpc/grpc-js';
import { Worker as Thread } from 'node:worker_threads';
import type { Logger } from '../common/logging.ts';
import { packageUrl } from '../common/package-root.ts';
import { GRPC_CHANNEL_OPTIONS, PROTO_PATH, UNARY_DEADLINE_MS, deadline, loadProto } from '../common/proto.ts';
import { encodeInjectionKind } from '../common/wire/coordinator-wire.ts';
import { REFUSAL_TRAILER, refusalFromTrailer, refusalOf } from '../common/wire/refusal-wire.ts';
import { Backoff } from '../domain/backoff.ts';
import type { InjectionKind } from '../domain/inject-spec.ts';
import { RefusalReason, RunEndedError, type Refusal } from '../domain/refusal.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { RegisterRequest } from '../proto/generated/ftrain/v1/RegisterRequest.ts';
import type { RegisterReply__Output } from '../proto/generated/ftrain/v1/RegisterReply.ts';
import type { StepReport } from '../proto/generated/ftrain/v1/StepReport.ts';
import type { StepReply__Output } from '../proto/generated/ftrain/v1/StepReply.ts';
import type { WorkerOptions } from './core/worker-options.ts';

type Callback<T> = (err: grpc.ServiceError | null, res?: T) => void;

/** A unary call as a promise; a failed call rejects with its ServiceError. */
function unary<T>(call: (cb: Callback<T>) => unknown): Promise<T | undefined> {
  return new Promise((resolve, reject) => call((err, res) => (err ? reject(err) : resolve(res))));
}

export class CoordinatorLink {
  private readonly client: CoordinatorClient;
  private heartbeats: Thread | null = null;
  private commands: grpc.ClientReadableStream<Command__Output> | null = null;

  constructor(
    readonly address: string,
    private readonly nodeId: string,
    private readonly protocol: Pick<WorkerOptions, 'registerTimeoutMs' | 'registerBackoff'>,
    private readonly log: Logger,
  ) {
    this.client = new (loadProto().ftrain.v1.Coordinator)(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
  }

  /**
   * Registers, retrying while the coordinator cannot be reached (up to registerTimeoutMs). A run
   * that has ended throws RunEndedError; any other refusal, an Error that says so.
   */
  async register(request: () => RegisterRequest): Promise<{ heartbeatMs: number }> {
    const started = Date.now();
    const backoff = new Backoff(this.protocol.registerBackoff);
    let announced = false;
    for (;;) {
      try {
        const reply = await unary<RegisterReply__Output>((cb) => this.client.Register(request(), { deadline: deadline() }, cb));
        return { heartbeatMs: reply!.heartbeatMs };
      } catch (err) {
        const e = err as grpc.ServiceError;
        const refusal = refusalOf(e);
        if (refusal?.reason === RefusalReason.runEnded) throw new RunEndedError({ ...refusal, message: `not joining: ${refusal.message}` }, 'Register', e);
        if (e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED) {
          throw new Error(`coordinator ${this.address} refused registration: ${e.details ?? e.message}`, { cause: err });
        }
        if (Date.now() - started > this.protocol.registerTimeoutMs) {
          throw new Error(`could not reach the coordinator at ${this.address} for ${this.protocol.registerTimeoutMs / 1000} s; is it running, and is the address right?`, { cause: err });
        }
        if (!announced) {
          this.log.info({ coordinator: this.address }, 'waiting for the coordinator');
          announced = true;
        }
        await new Promise((r) => setTimeout(r, backoff.next()));
      }
    }
  }

  /** Heartbeats every `intervalMs` from a thread: tfjs blocks this one for seconds per micro-batch. */
  startHeartbeats(intervalMs: number, onRefused: (refusal: Refusal) => void): void {
    const thread = new Thread(packageUrl('worker/heartbeat-thread.mjs'), {
      workerData: {
        protoPath: PROTO_PATH,
        coordinator: this.address,
        nodeId: this.nodeId,
        intervalMs,
        deadlineMs: UNARY_DEADLINE_MS,
        channelOptions: GRPC_CHANNEL_OPTIONS,
        refusalTrailer: REFUSAL_TRAILER,
      },
    });
    thread.on('message', (m: { type: 'failed'; code: grpc.status; details: string; refusal: Uint8Array | null }) => {
      const refusal = m.refusal ? refusalFromTrailer(m.refusal, m.details) : null;
      if (refusal) onRefused(refusal);
      else this.log.warn({ code: m.code, details: m.details }, 'heartbeat failed');
    });
    thread.on('error', (err) => this.log.error({ err }, 'heartbeat thread failed'));
    thread.unref();
    this.heartbeats = thread;
  }

  /** Opens this node's command stream; `onLost` when it ends or fails. */
  openCommands(onCommand: (c: Command__Output) => void, onLost: (why: string) => void): void {
    const stream = this.client.Commands({ nodeId: this.nodeId });
    this.commands = stream;
    stream.on('data', onCommand);
    stream.on('error', (err: grpc.ServiceError) => onLost(err.details || err.message));
    stream.on('end', () => onLost('it closed the command stream'));
  }

  reportReady(stage: number, epoch: number, checkpointSteps: number[]): Promise<unknown> {
    return unary((cb) => this.client.ReportReady({ nodeId: this.nodeId, stage, epoch, checkpointSteps }, { deadline: deadline() }, cb));
  }

  reportHalted(stage: number, epoch: number, snapshotSteps: number[]): Promise<unknown> {
    return unary((cb) => this.client.ReportHalted({ nodeId: this.nodeId, stage, epoch, snapshotSteps }, { deadline: deadline() }, cb));
  }

  reportStep(report: Omit<StepReport, 'nodeId'>): Promise<StepReply__Output | undefined> {
    return unary<StepReply__Output>((cb) => this.client.ReportStep({ ...report, nodeId: this.nodeId }, { deadline: deadline() }, cb));
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
    this.heartbeats?.postMessage('stop');
    this.commands?.cancel();
    this.client.close();
  }
}
