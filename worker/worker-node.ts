// A worker node: registers with the coordinator, keeps its lease, takes its stage assignment,
// connects to its pipeline neighbours and trains until told to stop. Pipeline tensors go
// worker-to-worker over Worker.Pipe streams; the coordinator only sees step reports.

import * as grpc from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { once } from 'node:events';
import { Worker as Thread } from 'node:worker_threads';
import { loadCorpus, checkCorpusFits, type Corpus } from '../common/corpus.ts';
import { ProtocolError, errorMessage } from '../common/errors.ts';
import { parseJobJson, type Backend, type JobOptions } from '../common/job-options.ts';
import type { Logger } from '../common/logging.ts';
import {
  GRPC_CHANNEL_OPTIONS,
  GRPC_SERVER_OPTIONS,
  PROTO_PATH,
  UNARY_DEADLINE_MS,
  bindServer,
  deadline,
  loadProto,
  statusError,
} from '../common/proto.ts';
import { chunkFloat32, joinFloat32, shapeSize } from '../common/tensor-codec.ts';
import type { Assign__Output } from '../proto/generated/ftrain/v1/Assign.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { PipeChunk, PipeChunk__Output } from '../proto/generated/ftrain/v1/PipeChunk.ts';
import type { WorkerClient, WorkerHandlers } from '../proto/generated/ftrain/v1/Worker.ts';
import { PipeMailbox, type PipeDirection } from './pipe-mailbox.ts';
import { StageTrainer, type PipeIO, type PipeTensor } from './stage-trainer.ts';
import { useBackend } from './tfjs-backend.ts';

/** How long a node keeps trying to reach the coordinator before giving up. */
export const REGISTER_TIMEOUT_MS = 60_000;
const REGISTER_RETRY_MS = 500;
/** How long a node waits for its pipeline neighbours to accept connections. */
export const PEER_CONNECT_TIMEOUT_MS = 30_000;

export interface WorkerNodeOptions {
  readonly coordinator: string;
  readonly nodeId: string;
  /** host:port for the Worker service; port 0 picks a free port. */
  readonly listen: string;
  /** Host other nodes use to reach this one; defaults to the listen host. */
  readonly advertiseHost: string | null;
  /** Overrides the job's backend on this node. */
  readonly backend: Backend | null;
  readonly logger: Logger;
}

export type NodeExit = { readonly code: number; readonly reason: string };

interface Assignment {
  readonly stage: number;
  readonly job: JobOptions;
  readonly trainer: StageTrainer;
}

/** One long-lived Pipe stream to a neighbour, writing with back-pressure. */
class PipeSender {
  private readonly call: grpc.ClientWritableStream<PipeChunk>;
  private broken: Error | null = null;

  constructor(
    client: WorkerClient,
    private readonly kind: 'PIPE_KIND_ACTIVATION' | 'PIPE_KIND_GRADIENT',
    private readonly fromStage: number,
    onBroken: (err: Error) => void,
  ) {
    this.call = client.Pipe((err) => {
      if (err) {
        this.broken = err;
        onBroken(err);
      }
    });
    this.call.on('error', (err) => {
      this.broken = err;
      onBroken(err);
    });
  }

  async send(step: number, microBatch: number, tensor: PipeTensor): Promise<void> {
    const chunks = chunkFloat32(tensor.data);
    for (let i = 0; i < chunks.length; i++) {
      if (this.broken) throw this.broken;
      const ok = this.call.write({
        kind: this.kind,
        fromStage: this.fromStage,
        step,
        microBatch,
        shape: i === 0 ? [...tensor.shape] : [],
        chunkIndex: i,
        chunkCount: chunks.length,
        data: chunks[i],
      });
      if (!ok) await once(this.call, 'drain');
    }
  }

  end(): void {
    this.call.end();
  }
}

/** Reassembles chunked tensors arriving on one Pipe stream. */
class PipeAssembler {
  private current: { kind: PipeDirection; step: number; microBatch: number; shape: number[]; chunks: Buffer[]; count: number } | null = null;

  /** Returns a finished tensor, or null while more chunks are due. Throws ProtocolError on a bad chunk. */
  add(c: PipeChunk__Output): { kind: PipeDirection; step: number; microBatch: number; tensor: PipeTensor } | null {
    const kind: PipeDirection | null = c.kind === 'PIPE_KIND_ACTIVATION' ? 'activation' : c.kind === 'PIPE_KIND_GRADIENT' ? 'gradient' : null;
    if (!kind) throw new ProtocolError(`pipe chunk has no kind (${String(c.kind)})`);
    if (c.chunkIndex === 0) {
      if (this.current) throw new ProtocolError('a new tensor started before the previous one was complete');
      if (c.chunkCount < 1 || c.shape.length === 0 || c.shape.some((d) => !Number.isInteger(d) || d < 1)) {
        throw new ProtocolError(`pipe chunk has a bad shape [${c.shape.join(',')}] or chunk count ${c.chunkCount}`);
      }
      this.current = { kind, step: c.step, microBatch: c.microBatch, shape: c.shape, chunks: [], count: c.chunkCount };
    }
    const cur = this.current;
    if (!cur || cur.kind !== kind || cur.step !== c.step || cur.microBatch !== c.microBatch || c.chunkIndex !== cur.chunks.length) {
      throw new ProtocolError(`pipe chunk ${c.chunkIndex} of step ${c.step} micro-batch ${c.microBatch} is out of order`);
    }
    cur.chunks.push(c.data);
    if (cur.chunks.length < cur.count) return null;
    this.current = null;
    return { kind, step: cur.step, microBatch: cur.microBatch, tensor: { shape: cur.shape, data: joinFloat32(cur.chunks, cur.shape) } };
  }
}

export class WorkerNode {
  private readonly proto = loadProto();
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly coordinator: CoordinatorClient;
  private readonly mailbox = new PipeMailbox();
  private assignment: Assignment | null = null;
  private toNext: PipeSender | null = null;
  private toPrev: PipeSender | null = null;
  private peerClients: WorkerClient[] = [];
  private heartbeats: Thread | null = null;
  private commands: grpc.ClientReadableStream<Command__Output> | null = null;
  /** Exclusive step limit from Start or Limit; 0 = none. */
  private limit = 0;
  /** Limit with to_step 0: finish the step under way, then start no other. */
  private stopAfterCurrent = false;
  private stopping = false;
  private exitWith!: (e: NodeExit) => void;
  /** Settles when the node should exit, with the exit code and why. */
  readonly exited: Promise<NodeExit>;
  address = '';

  constructor(private readonly options: WorkerNodeOptions) {
    this.coordinator = new this.proto.ftrain.v1.Coordinator(options.coordinator, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.exited = new Promise((resolve) => (this.exitWith = resolve));
    this.server.addService(this.proto.ftrain.v1.Worker.service, this.handlers());
  }

  private get log(): Logger {
    return this.options.logger;
  }

  async start(): Promise<void> {
    const port = await bindServer(this.server, this.options.listen);
    const listenHost = this.options.listen.slice(0, this.options.listen.lastIndexOf(':'));
    const host = this.options.advertiseHost ?? (listenHost === '0.0.0.0' || listenHost === '' ? hostname() : listenHost);
    this.address = `${host}:${port}`;
    this.log.info({ address: this.address }, 'worker service listening');
    const reply = await this.register();
    this.startHeartbeats(reply.heartbeatMs);
    this.openCommands();
  }

  private async register(): Promise<{ heartbeatMs: number }> {
    const started = Date.now();
    let announced = false;
    for (;;) {
      try {
        return await new Promise((resolve, reject) => {
          this.coordinator.Register(
            { nodeId: this.options.nodeId, address: this.address, pid: process.pid, hostname: hostname() },
            { deadline: deadline() },
            (err, res) => (err || !res ? reject(err) : resolve(res)),
          );
        });
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code !== grpc.status.UNAVAILABLE && e.code !== grpc.status.DEADLINE_EXCEEDED) {
          throw new Error(`coordinator ${this.options.coordinator} refused registration: ${e.details ?? e.message}`, { cause: err });
        }
        if (Date.now() - started > REGISTER_TIMEOUT_MS) {
          throw new Error(`could not reach the coordinator at ${this.options.coordinator} for ${REGISTER_TIMEOUT_MS / 1000} s; is it running, and is the address right?`, { cause: err });
        }
        if (!announced) {
          this.log.info({ coordinator: this.options.coordinator }, 'waiting for the coordinator');
          announced = true;
        }
        await new Promise((r) => setTimeout(r, REGISTER_RETRY_MS));
      }
    }
  }

  private startHeartbeats(intervalMs: number): void {
    const thread = new Thread(new URL('./heartbeat-thread.mjs', import.meta.url), {
      workerData: {
        protoPath: PROTO_PATH,
        coordinator: this.options.coordinator,
        nodeId: this.options.nodeId,
        intervalMs,
        deadlineMs: UNARY_DEADLINE_MS,
        channelOptions: GRPC_CHANNEL_OPTIONS,
      },
    });
    thread.on('message', (m: { type: 'failed'; code: grpc.status; details: string }) => {
      if (this.stopping) return;
      if (m.code === grpc.status.NOT_FOUND) {
        // The coordinator has declared this node lost: stop rather than act on a stale role.
        this.shutdown(1, `the coordinator no longer knows this node: ${m.details}`);
      } else {
        this.log.warn({ code: m.code, details: m.details }, 'heartbeat failed');
      }
    });
    thread.on('error', (err) => this.log.error({ err }, 'heartbeat thread failed'));
    thread.unref();
    this.heartbeats = thread;
  }

  private openCommands(): void {
    const stream = this.coordinator.Commands({ nodeId: this.options.nodeId });
    this.commands = stream;
    stream.on('data', (c: Command__Output) => void this.onCommand(c));
    const lost = (why: string) => {
      if (this.stopping) return;
      this.shutdown(1, `lost the coordinator: ${why}`);
    };
    stream.on('error', (err: grpc.ServiceError) => lost(err.details || err.message));
    stream.on('end', () => lost('it closed the command stream'));
  }

  private async onCommand(c: Command__Output): Promise<void> {
    try {
      switch (c.kind) {
        case 'assign':
          await this.onAssign(c.assign!);
          break;
        case 'start':
          this.limit = c.start!.toStep;
          void this.train(c.start!.fromStep);
          break;
        case 'limit':
          if (c.limit!.toStep === 0) this.stopAfterCurrent = true;
          else this.limit = c.limit!.toStep;
          this.log.info({ toStep: c.limit!.toStep }, 'step limit changed');
          break;
        case 'stop':
          this.shutdown(0, `coordinator: ${c.stop!.reason}`);
          break;
        default:
          this.log.warn({ command: c }, 'ignored a command of unknown kind');
      }
    } catch (err) {
      await this.fault(err);
    }
  }

  private async onAssign(a: Assign__Output): Promise<void> {
    if (this.assignment) throw new ProtocolError(`already assigned stage ${this.assignment.stage}; refusing a second assignment (stage ${a.stage})`);
    const job0 = parseJobJson(a.jobJson);
    const job: JobOptions = this.options.backend ? { ...job0, backend: this.options.backend } : job0;
    const stage = a.stage;
    this.log.info({ stage, of: a.numStages, backend: job.backend }, 'assigned stage');
    await useBackend(job.backend);
    let corpus: Corpus | null = null;
    if (stage === 0 || stage === job.stages - 1) {
      corpus = loadCorpus(job.data);
      checkCorpusFits(corpus, job.model.seqLen);
      if (a.dataSha256 && corpus.sha256 !== a.dataSha256) {
        throw new Error(`training text ${job.data} on this node differs from the coordinator's (sha256 ${corpus.sha256.slice(0, 12)} vs ${a.dataSha256.slice(0, 12)}); give every node the same file`);
      }
    }
    const trainer = new StageTrainer(job, stage, corpus);
    this.assignment = { stage, job, trainer };
    const onBroken = (err: Error) => {
      if (this.stopping) return;
      this.mailbox.fail(new Error(`pipeline peer connection broke: ${err.message}`));
    };
    if (a.nextAddress) this.toNext = new PipeSender(await this.connectPeer(a.nextAddress), 'PIPE_KIND_ACTIVATION', stage, onBroken);
    if (a.prevAddress) this.toPrev = new PipeSender(await this.connectPeer(a.prevAddress), 'PIPE_KIND_GRADIENT', stage, onBroken);
    await new Promise<void>((resolve, reject) =>
      this.coordinator.ReportReady({ nodeId: this.options.nodeId, stage }, { deadline: deadline() }, (err) => (err ? reject(err) : resolve())),
    );
    this.log.info({ stage, params: trainer.model.variables.reduce((n, v) => n + v.size, 0) }, 'ready');
  }

  private async connectPeer(address: string): Promise<WorkerClient> {
    const client = new this.proto.ftrain.v1.Worker(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.peerClients.push(client);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline(PEER_CONNECT_TIMEOUT_MS), (err) => (err ? reject(new Error(`pipeline peer ${address} unreachable: ${err.message}`)) : resolve())),
    );
    return client;
  }

  private io(): PipeIO {
    return {
      recvActivation: (step, mb) => this.mailbox.take('activation', step, mb),
      recvGradient: (step, mb) => this.mailbox.take('gradient', step, mb),
      sendActivation: (step, mb, t) => this.toNext!.send(step, mb, t),
      sendGradient: (step, mb, t) => this.toPrev!.send(step, mb, t),
    };
  }

  private async train(fromStep: number): Promise<void> {
    const a = this.assignment;
    if (!a) return this.fault(new ProtocolError('told to start before any stage was assigned'));
    const io = this.io();
    try {
      for (let step = fromStep; !this.stopping; step++) {
        if (this.limit !== 0 && step >= this.limit) break;
        const s = await a.trainer.runStep(step, io);
        if (this.stopping) break;
        const last = this.stopAfterCurrent || (this.limit !== 0 && step + 1 >= this.limit);
        await new Promise<void>((resolve, reject) =>
          this.coordinator.ReportStep(
            {
              nodeId: this.options.nodeId,
              stage: a.stage,
              step,
              loss: s.loss ?? 0,
              gradNorm: s.gradNorm,
              clippedGradNorm: s.clippedGradNorm,
              computeMs: s.computeMs,
              waitMs: s.waitMs,
              stepMs: s.stepMs,
              tokens: s.tokens,
              last,
            },
            { deadline: deadline() },
            (err) => (err ? reject(err) : resolve()),
          ),
        );
        this.log.debug({ step, loss: s.loss, gradNorm: s.gradNorm, stepMs: s.stepMs }, 'step done');
        if (last) break;
      }
    } catch (err) {
      if (!this.stopping) await this.fault(err);
    }
  }

  private async fault(err: unknown): Promise<void> {
    const message = errorMessage(err);
    this.log.error({ err }, 'worker fault');
    const stage = this.assignment?.stage ?? -1;
    await new Promise<void>((resolve) =>
      this.coordinator.ReportFault({ nodeId: this.options.nodeId, stage, message }, { deadline: deadline() }, () => resolve()),
    );
    // The coordinator answers with Stop; exit anyway if it does not.
    setTimeout(() => this.shutdown(1, message), 3000).unref();
  }

  private handlers(): WorkerHandlers {
    return {
      Pipe: (call, callback) => {
        const assembler = new PipeAssembler();
        let failed = false;
        call.on('data', (chunk: PipeChunk__Output) => {
          if (failed) return;
          try {
            const a = this.assignment;
            if (!a) throw new ProtocolError('this node has no stage yet');
            const expectedFrom = chunk.kind === 'PIPE_KIND_ACTIVATION' ? a.stage - 1 : a.stage + 1;
            if (chunk.fromStage !== expectedFrom || expectedFrom < 0 || expectedFrom >= a.job.stages) {
              throw new ProtocolError(`stage ${a.stage} takes ${chunk.kind} only from stage ${expectedFrom}, not from stage ${chunk.fromStage}`);
            }
            if (chunk.step < a.trainer.completedSteps) {
              throw new ProtocolError(`stale ${chunk.kind} for step ${chunk.step}; stage ${a.stage} has completed ${a.trainer.completedSteps} steps`);
            }
            if (chunk.microBatch < 0 || chunk.microBatch >= a.job.microBatches) {
              throw new ProtocolError(`micro-batch ${chunk.microBatch} is out of range 0..${a.job.microBatches - 1}`);
            }
            const done = assembler.add(chunk);
            if (done) {
              const want = a.trainer.model.activationShape(a.job.microBatchSize);
              if (shapeSize(done.tensor.shape) !== shapeSize(want) || done.tensor.shape.length !== want.length) {
                throw new ProtocolError(`${done.kind} shape [${done.tensor.shape.join(',')}] does not match [${want.join(',')}]`);
              }
              this.mailbox.put(done.kind, done.step, done.microBatch, done.tensor);
            }
          } catch (err) {
            failed = true;
            this.log.warn({ err: errorMessage(err) }, 'rejected a pipe stream');
            callback(statusError(err instanceof ProtocolError ? grpc.status.INVALID_ARGUMENT : grpc.status.INTERNAL, errorMessage(err)));
          }
        });
        call.on('end', () => {
          if (!failed) callback(null, {});
        });
        call.on('error', () => {
          failed = true;
        });
      },
      FetchWeights: (call) => {
        const a = this.assignment;
        if (!a) {
          call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, 'this node has no stage yet'));
          return;
        }
        if (call.request.stage !== a.stage) {
          call.emit('error', statusError(grpc.status.INVALID_ARGUMENT, `this node holds stage ${a.stage}, not stage ${call.request.stage}`));
          return;
        }
        void (async () => {
          const weights = a.trainer.model.readWeights();
          const step = a.trainer.completedSteps;
          for (let i = 0; i < weights.length; i++) {
            const chunks = chunkFloat32(weights[i]!);
            const v = a.trainer.model.variables[i]!;
            for (let c = 0; c < chunks.length; c++) {
              const ok = call.write({ name: a.trainer.model.names[i]!, shape: v.shape, chunkIndex: c, chunkCount: chunks.length, data: chunks[c], step });
              if (!ok) await once(call, 'drain');
            }
          }
          call.end();
        })().catch((err) => call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err))));
      },
    };
  }

  /** Stops training, closes every connection and settles `exited`. */
  shutdown(code: number, reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    this.mailbox.fail(new Error('node is shutting down'));
    this.heartbeats?.postMessage('stop');
    this.toNext?.end();
    this.toPrev?.end();
    this.commands?.cancel();
    for (const c of this.peerClients) c.close();
    this.coordinator.close();
    this.server.forceShutdown();
    this.log[code === 0 ? 'info' : 'error']({ code }, reason);
    this.exitWith({ code, reason });
  }
}
