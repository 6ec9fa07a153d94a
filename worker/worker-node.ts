// A worker node: registers with the coordinator, keeps its lease, takes its stage assignment,
// connects to its pipeline neighbours and trains until told to stop. Pipeline tensors go
// worker-to-worker over Worker.Pipe streams; the coordinator only sees step reports.

import * as grpc from '@grpc/grpc-js';
import { hostname } from 'node:os';
import { once } from 'node:events';
import { Worker as Thread } from 'node:worker_threads';
import { loadCorpus, checkCorpusFits, type Corpus } from '../domain/corpus.ts';
import { ProtocolError, RunEndedError, errorMessage } from '../domain/errors.ts';
import { parseJobJson, type Backend, type JobOptions } from '../domain/job-options.ts';
import { FREEZE_SECONDS, type Injection } from '../domain/inject-spec.ts';
import { EXIT_FENCED } from '../domain/exit-codes.ts';
import { spawn } from 'node:child_process';
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
import { chunkFloat32, joinFloat32, shapeSize } from '../domain/tensor-codec.ts';
import type { Assign__Output } from '../proto/generated/ftrain/v1/Assign.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { PipeChunk, PipeChunk__Output } from '../proto/generated/ftrain/v1/PipeChunk.ts';
import type { WorkerClient, WorkerHandlers } from '../proto/generated/ftrain/v1/Worker.ts';
import { PipeMailbox, type PipeDirection } from './pipe-mailbox.ts';
import { StageTrainer, type PipeIO, type PipeTensor, type StepHooks } from './stage-trainer.ts';
import { tf, useBackend } from './tfjs-backend.ts';
import { checkfreeAverage, counterpartName, type CheckfreeOrder } from '../domain/checkfree.ts';
import { senderOf, swapPartner } from '../domain/pipeline-route.ts';
import { edgeParamSpecs, opOfParam } from './gpt-stage.ts';
import { fetchStageWeights } from '../common/stage-weights.ts';
import { DEFAULT_SLOT_COUNT, SMP_INFO_FILE, SnapshotSlots, readSmpInfo, type SmpInfo, type SnapshotHeader, type SnapshotRecord } from '../domain/snapshot-slots.ts';
import { SnapshotWriter } from './snapshot-writer.ts';
import { exportStageState, importStageState } from './stage-state.ts';
import { DiskCheckpoints, describeCheckpointDir } from './disk-checkpoint.ts';
import { join } from 'node:path';
import type { SnapshotManagerClient } from '../proto/generated/ftrain/v1/SnapshotManager.ts';
import type { ProtectionStatus } from '../domain/erasure-protection.ts';

/** How long a node keeps trying to reach the coordinator before giving up. */
export const REGISTER_TIMEOUT_MS = 60_000;
const REGISTER_RETRY_MS = 500;
/** How long a worker whose step report was refused for a recovery waits for the Halt. */
export const HALT_GRACE_MS = 10_000;
/** How long a worker waits for its snapshot manager to say where it listens. */
export const SMP_INFO_TIMEOUT_MS = 30_000;
/** How long a rebuild from erasure shards may take. */
export const REBUILD_TIMEOUT_MS = 120_000;
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
  /** The snapshot manager's slot directory (tmpfs); null: snapshots off on this node. */
  readonly snapshotDir: string | null;
  readonly logger: Logger;
}

export type NodeExit = { readonly code: number; readonly reason: string };

interface Assignment {
  readonly stage: number;
  readonly job: JobOptions;
  readonly trainer: StageTrainer;
  readonly epoch: number;
  readonly injections: readonly Injection[];
}

/** Thrown into a step that a Halt command abandons. */
class HaltedError extends Error {
  override readonly name = 'HaltedError';
}

/** Figures of the last snapshot, sent with the next step report. */
interface SnapshotFigures {
  step: number;
  stallMs: number;
  copyMs: number;
  bytes: number;
}

type PipeKindName = 'PIPE_KIND_ACTIVATION' | 'PIPE_KIND_GRADIENT' | 'PIPE_KIND_EDGE_COPY';

/** One long-lived Pipe stream to a neighbour, writing with back-pressure; one tensor at a time. */
class PipeSender {
  private readonly call: grpc.ClientWritableStream<PipeChunk>;
  private broken: Error | null = null;

  constructor(
    client: WorkerClient,
    private readonly fromStage: number,
    private readonly epoch: number,
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

  async send(kind: PipeKindName, step: number, microBatch: number, hop: number, tensor: PipeTensor): Promise<void> {
    const chunks = chunkFloat32(tensor.data);
    for (let i = 0; i < chunks.length; i++) {
      if (this.broken) throw this.broken;
      const ok = this.call.write({
        kind,
        fromStage: this.fromStage,
        epoch: this.epoch,
        step,
        microBatch,
        hop,
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

type ChunkKind = PipeDirection | 'edge-copy';

/** Reassembles chunked tensors arriving on one Pipe stream. */
class PipeAssembler {
  private current: { kind: ChunkKind; step: number; microBatch: number; hop: number; shape: number[]; chunks: Buffer[]; count: number } | null = null;

  /** Returns a finished tensor, or null while more chunks are due. Throws ProtocolError on a bad chunk. */
  add(c: PipeChunk__Output): { kind: ChunkKind; step: number; microBatch: number; hop: number; tensor: PipeTensor } | null {
    const kind: ChunkKind | null =
      c.kind === 'PIPE_KIND_ACTIVATION' ? 'activation' : c.kind === 'PIPE_KIND_GRADIENT' ? 'gradient' : c.kind === 'PIPE_KIND_EDGE_COPY' ? 'edge-copy' : null;
    if (!kind) throw new ProtocolError(`pipe chunk has no kind (${String(c.kind)})`);
    if (c.chunkIndex === 0) {
      if (this.current) throw new ProtocolError('a new tensor started before the previous one was complete');
      if (c.chunkCount < 1 || c.shape.length === 0 || c.shape.some((d) => !Number.isInteger(d) || d < 1)) {
        throw new ProtocolError(`pipe chunk has a bad shape [${c.shape.join(',')}] or chunk count ${c.chunkCount}`);
      }
      this.current = { kind, step: c.step, microBatch: c.microBatch, hop: c.hop, shape: c.shape, chunks: [], count: c.chunkCount };
    }
    const cur = this.current;
    if (!cur || cur.kind !== kind || cur.step !== c.step || cur.microBatch !== c.microBatch || cur.hop !== c.hop || c.chunkIndex !== cur.chunks.length) {
      throw new ProtocolError(`pipe chunk ${c.chunkIndex} of step ${c.step} micro-batch ${c.microBatch} hop ${c.hop} is out of order`);
    }
    cur.chunks.push(c.data);
    if (cur.chunks.length < cur.count) return null;
    this.current = null;
    return { kind, step: cur.step, microBatch: cur.microBatch, hop: cur.hop, tensor: { shape: cur.shape, data: joinFloat32(cur.chunks, cur.shape) } };
  }
}

export class WorkerNode {
  private readonly proto = loadProto();
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly coordinator: CoordinatorClient;
  private mailbox = new PipeMailbox();
  private readonly slots: SnapshotSlots | null;
  private writer: SnapshotWriter | null = null;
  /** The snapshot being written, awaited before the next optimizer update. */
  private pendingSnapshot: Promise<void> | null = null;
  private lastSnapshot: SnapshotFigures = { step: -1, stallMs: 0, copyMs: 0, bytes: 0 };
  private training: Promise<void> | null = null;
  private checkpoints: DiskCheckpoints | null = null;
  /** The node's snapshot manager, when it runs one (`ftrain node`). */
  private smp: { info: SmpInfo; client: SnapshotManagerClient } | null = null;
  /** Newest step every stage holds locally and erasure-coded; its slot is kept. */
  private protectedCommitStep = -1;
  /** The snapshot manager's last word on protection, sent with the next step report. */
  private protection: ProtectionStatus | null = null;
  private assignment: Assignment | null = null;
  /**
   * CheckFree+: the newest copy of the embedding (on stage 1) or of the head (on the stage before
   * the last) that the edge stage sends after each update; a lost edge stage takes it back.
   */
  private edgeCopy: { stage: number; step: number; data: Float32Array } | null = null;
  private toNext: PipeSender | null = null;
  private toPrev: PipeSender | null = null;
  private peerClients: WorkerClient[] = [];
  private heartbeats: Thread | null = null;
  private commands: grpc.ClientReadableStream<Command__Output> | null = null;
  /** Set when a step report was refused because a recovery began: the Halt should follow. */
  private haltDue: NodeJS.Timeout | null = null;
  /** Exclusive step limit from Start or Limit; 0 = none. */
  private limit = 0;
  /** Limit with to_step 0: finish the step under way, then start no other. */
  private stopAfterCurrent = false;
  /** The limit is a pause (a stage is about to move), not the end of the run. */
  private paused = false;
  /** Set once a preemption notice (SIGTERM) has been passed on to the coordinator. */
  private departing = false;
  private stopping = false;
  private exitWith!: (e: NodeExit) => void;
  /** Settles when the node should exit, with the exit code and why. */
  readonly exited: Promise<NodeExit>;
  address = '';

  constructor(private readonly options: WorkerNodeOptions) {
    this.coordinator = new this.proto.ftrain.v1.Coordinator(options.coordinator, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.exited = new Promise((resolve) => (this.exitWith = resolve));
    this.server.addService(this.proto.ftrain.v1.Worker.service, this.handlers());
    this.slots = options.snapshotDir ? new SnapshotSlots(options.snapshotDir, DEFAULT_SLOT_COUNT) : null;
  }

  /** Committed snapshots the slot directory holds: the stage they belong to and their steps. */
  private heldSnapshots(): { stage: number; steps: number[] } | null {
    const records = this.slots?.records() ?? [];
    if (records.length === 0) return null;
    const stage = records.at(-1)!.header.stage;
    return { stage, steps: records.filter((r) => r.header.stage === stage).map((r) => r.step) };
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
    if (this.slots) await this.findSnapshotManager();
    const reply = await this.register();
    this.startHeartbeats(reply.heartbeatMs);
    this.openCommands();
  }

  /** Reads where the node's snapshot manager listens from its slot directory (it writes smp.json on start). */
  private async findSnapshotManager(): Promise<void> {
    const dir = this.slots!.dir;
    const started = Date.now();
    let info = readSmpInfo(dir);
    while (!info) {
      if (process.env.FTRAIN_MANAGED !== '1') return; // a bare `ftrain worker --snapshot-dir`: local snapshots only
      if (Date.now() - started > SMP_INFO_TIMEOUT_MS) throw new Error(`the snapshot manager did not start: no ${join(dir, SMP_INFO_FILE)} after ${SMP_INFO_TIMEOUT_MS / 1000} s`);
      await new Promise((r) => setTimeout(r, 50));
      info = readSmpInfo(dir);
    }
    const client = new this.proto.ftrain.v1.SnapshotManager(info.address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.smp = { info, client };
    this.log.info({ smp: info.address }, 'snapshot manager found');
  }

  /** Hands the snapshot manager a protection plan and/or the protected commit step; keeps its status. */
  private configureSmp(planJson: string, protectedCommitStep: number): Promise<void> {
    const smp = this.smp;
    if (!smp) return Promise.resolve();
    return new Promise((resolve, reject) =>
      smp.client.Configure({ planJson, protectedCommitStep }, { deadline: deadline() }, (err, res) => {
        if (err || !res) return reject(new Error(`snapshot manager refused its configuration: ${err?.details ?? 'no reply'}`));
        this.protection = JSON.parse(res.statusJson) as ProtectionStatus;
        resolve();
      }),
    );
  }

  private async rebuildFromShards(orderJson: string, step: number): Promise<void> {
    const smp = this.smp;
    if (!smp) throw new Error(`told to rebuild step ${step} from erasure shards, but this node runs no snapshot manager`);
    const t0 = performance.now();
    const reply = await new Promise<{ bytes: number; usedShards: number[]; corruptShards: number[] }>((resolve, reject) =>
      smp.client.Rebuild({ orderJson }, { deadline: deadline(REBUILD_TIMEOUT_MS) }, (err, res) => (err || !res ? reject(new Error(err?.details ?? 'no reply')) : resolve(res))),
    );
    this.log.info({ step, bytes: reply.bytes, used: reply.usedShards, corrupt: reply.corruptShards, ms: performance.now() - t0 }, 'snapshot rebuilt by the snapshot manager');
  }

  private async register(): Promise<{ heartbeatMs: number }> {
    const started = Date.now();
    let announced = false;
    for (;;) {
      try {
        return await new Promise((resolve, reject) => {
          const held = this.heldSnapshots();
          this.coordinator.Register(
            {
              nodeId: this.options.nodeId,
              address: this.address,
              pid: process.pid,
              hostname: hostname(),
              snapshotStage: held?.stage ?? -1,
              snapshotSteps: held?.steps ?? [],
              smpAddress: this.smp?.info.address ?? '',
              smpPid: this.smp?.info.pid ?? 0,
              agentPid: agentPid() ?? 0,
            },
            { deadline: deadline() },
            (err, res) => (err || !res ? reject(err) : resolve(res)),
          );
        });
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (e.code === grpc.status.FAILED_PRECONDITION) throw new RunEndedError(`not joining: ${e.details}`);
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
        this.shutdown(EXIT_FENCED, `fenced: the coordinator no longer knows this node (${m.details})`);
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
          this.stopAfterCurrent = false;
          this.paused = false;
          if (c.start!.fromScratch && this.assignment) {
            this.assignment.trainer.reset();
            this.log.warn({ stage: this.assignment.stage }, 'back to the initial weights: the run starts again from step 0');
          }
          if (c.start!.restoreCheckpointStep >= 0) this.loadCheckpoint(c.start!.restoreCheckpointStep);
          // After CheckFree the stages go on from one step whatever each had finished.
          if (this.assignment) this.assignment.trainer.completedSteps = c.start!.fromStep;
          this.training = this.train(c.start!.fromStep);
          break;
        case 'halt':
          await this.onHalt(c.halt!.epoch, c.halt!.reason);
          break;
        case 'inject':
          if (c.inject!.kind === 'node-kill') this.nodeKill(c.inject!.step);
          else if (c.inject!.kind === 'freeze') this.freeze(c.inject!.step);
          else if (c.inject!.kind === 'preempt') this.preempt(c.inject!.step);
          else this.log.warn({ kind: c.inject!.kind }, 'ignored an injection of unknown kind');
          break;
        case 'protect':
          await this.configureSmp(c.protect!.planJson, this.protectedCommitStep);
          break;
        case 'limit':
          if (c.limit!.toStep === 0) this.stopAfterCurrent = true;
          else this.limit = c.limit!.toStep;
          this.paused = c.limit!.pause;
          this.log.info({ toStep: c.limit!.toStep, pause: c.limit!.pause }, c.limit!.pause ? 'pausing at a step boundary' : 'step limit changed');
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
    this.clearHaltDue();
    const prev = this.assignment;
    if (prev && a.epoch <= prev.epoch) {
      throw new ProtocolError(`already assigned stage ${prev.stage} in epoch ${prev.epoch}; refusing an assignment for epoch ${a.epoch}`);
    }
    const job0 = parseJobJson(a.jobJson);
    const job: JobOptions = this.options.backend ? { ...job0, backend: this.options.backend } : job0;
    const stage = a.stage;
    this.log.info({ stage, of: a.numStages, backend: job.backend, epoch: a.epoch, restoreStep: a.restoreStep }, 'assigned stage');
    const checkfree = a.checkfreeJson ? (JSON.parse(a.checkfreeJson) as CheckfreeOrder) : null;
    let trainer: StageTrainer;
    if (prev && prev.stage === stage && !checkfree) {
      trainer = prev.trainer;
    } else {
      prev?.trainer.dispose();
      await useBackend(job.backend);
      let corpus: Corpus | null = null;
      if (stage === 0 || stage === job.stages - 1) {
        corpus = loadCorpus(job.data);
        checkCorpusFits(corpus, job.model.seqLen);
        if (a.dataSha256 && corpus.sha256 !== a.dataSha256) {
          throw new Error(`training text ${job.data} on this node differs from the coordinator's (sha256 ${corpus.sha256.slice(0, 12)} vs ${a.dataSha256.slice(0, 12)}); give every node the same file`);
        }
      }
      trainer = new StageTrainer(job, stage, corpus);
    }
    if (a.planJson) await this.configureSmp(a.planJson, -1);
    if (a.rebuildJson) await this.rebuildFromShards(a.rebuildJson, a.restoreStep);
    if (a.restoreStep >= 0) this.restore(trainer, a.restoreStep);
    else this.slots?.destroy(); // a fresh start: snapshots of an earlier run must never be restored
    if (checkfree) await this.rebuildByCheckfree(trainer, job, checkfree);
    if (this.slots && job.snapshotEvery > 0 && !this.writer) this.writer = new SnapshotWriter(this.slots.dir, this.slots.slotCount);
    const injections = (JSON.parse(a.injectionsJson || '[]') as Injection[]).filter((i) => i.stage === stage);
    this.assignment = { stage, job, trainer, epoch: a.epoch, injections };
    if (job.checkpointDir && this.checkpoints?.stage !== stage) {
      describeCheckpointDir(job.checkpointDir);
      this.checkpoints = new DiskCheckpoints(job.checkpointDir, stage);
    }
    this.resetPipes();
    // This epoch's mailbox: a connection of an earlier epoch that breaks late must not fail it.
    const mailbox = this.mailbox;
    const onBroken = (err: Error) => {
      if (this.stopping || this.mailbox !== mailbox) return;
      // Not a fault of this node: the coordinator learns of the peer's death and recovers.
      this.log.warn({ err: err.message }, 'pipeline peer connection broke');
      mailbox.fail(new HaltedError(`pipeline peer connection broke: ${err.message}`));
    };
    if (a.nextAddress) this.toNext = new PipeSender(await this.connectPeer(a.nextAddress), stage, a.epoch, onBroken);
    if (a.prevAddress) this.toPrev = new PipeSender(await this.connectPeer(a.prevAddress), stage, a.epoch, onBroken);
    if (this.edgeCopy && this.edgeCopy.stage !== edgeCopySource(stage, job)) this.edgeCopy = null;
    await new Promise<void>((resolve, reject) =>
      this.coordinator.ReportReady(
        { nodeId: this.options.nodeId, stage, epoch: a.epoch, checkpointSteps: this.checkpoints?.steps() ?? [] },
        { deadline: deadline() },
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    this.log.info({ stage, epoch: a.epoch, params: trainer.model.variables.reduce((n, v) => n + v.size, 0) }, 'ready');
  }

  /** Loads the stage's committed snapshot of `step`; later snapshots belong to an abandoned timeline. */
  private restore(trainer: StageTrainer, step: number): void {
    if (!this.slots) throw new Error(`told to restore step ${step}, but this node keeps no snapshots`);
    const record: SnapshotRecord | null = this.slots.find(step);
    if (!record) throw new Error(`no committed snapshot of step ${step} in ${this.slots.dir}`);
    const started = performance.now();
    importStageState(trainer, record.header, this.slots.read(record));
    this.slots.dropAfter(step);
    this.lastSnapshot = { step, stallMs: 0, copyMs: 0, bytes: record.bytes };
    this.log.info({ step, bytes: record.bytes, ms: performance.now() - started }, 'restored snapshot');
  }

  /**
   * CheckFree: the stage's blocks become the weighted mean of its neighbours' or, under CheckFree+,
   * a copy of its swap partner's, and an edge stage takes back its embedding or head from the copy
   * its partner keeps. Adam starts fresh.
   */
  private async rebuildByCheckfree(trainer: StageTrainer, job: JobOptions, order: CheckfreeOrder): Promise<void> {
    const started = performance.now();
    const L = job.model.layersPerStage;
    const byName = (ws: { name: string; values: Float32Array }[]) => new Map(ws.map((w) => [w.name, w.values]));
    const values: Float32Array[] = [];
    if (order.kind === 'average') {
      const [prev, next] = (await Promise.all([fetchStageWeights(order.prev.address, order.prev.stage), fetchStageWeights(order.next.address, order.next.stage)])).map(byName);
      for (const name of trainer.model.names) {
        const p = prev!.get(counterpartName(name, trainer.stage, order.prev.stage, L) ?? '');
        const n = next!.get(counterpartName(name, trainer.stage, order.next.stage, L) ?? '');
        if (!p || !n) throw new Error(`CheckFree: ${name} of stage ${trainer.stage} has no counterpart on stage ${!p ? order.prev.stage : order.next.stage}`);
        values.push(checkfreeAverage(order.weights, n, p));
      }
    } else {
      const edge = trainer.model.isFirst || trainer.model.isLast;
      const [blocks, copy] = await Promise.all([
        fetchStageWeights(order.from.address, order.from.stage).then(byName),
        edge ? fetchStageWeights(order.from.address, trainer.stage, true).then(byName) : Promise.resolve(new Map<string, Float32Array>()),
      ]);
      for (const name of trainer.model.names) {
        const found = opOfParam(name) === 'blocks' ? blocks.get(counterpartName(name, trainer.stage, order.from.stage, L) ?? '') : copy.get(name);
        if (!found) throw new Error(`CheckFree+: ${name} of stage ${trainer.stage} has no copy on stage ${order.from.stage}`);
        values.push(found);
      }
    }
    trainer.model.variables.forEach((v, i) => {
      if (values[i]!.length !== v.size) throw new Error(`CheckFree: ${trainer.model.names[i]} has ${values[i]!.length} values, not ${v.size}`);
      v.assign(tf.tensor(values[i]!, v.shape, 'float32'));
    });
    trainer.learningRateScale = order.learningRateScale;
    const from = order.kind === 'average' ? { prev: order.prev.stage, next: order.next.stage, a: order.weights.a, b: order.weights.b } : { copiedFrom: order.from.stage };
    this.log.warn(
      { stage: trainer.stage, ...from, lrScale: order.learningRateScale, ms: performance.now() - started },
      order.kind === 'average' ? "stage rebuilt by CheckFree from its neighbours' weights (fresh optimizer state)" : "stage rebuilt by CheckFree+ from its swap partner's weights (fresh optimizer state)",
    );
  }

  private loadCheckpoint(step: number): void {
    const a = this.assignment;
    if (!a || !this.checkpoints) throw new ProtocolError(`told to load disk checkpoint ${step}, but no checkpoint directory is set`);
    const started = performance.now();
    const { header, data } = this.checkpoints.read(step);
    importStageState(a.trainer, header, data);
    this.log.info({ step, bytes: data.length, ms: performance.now() - started, dir: this.checkpoints.dir }, 'resumed from disk checkpoint');
  }

  /** Drops the pipe streams and tensors of the previous epoch. */
  private resetPipes(): void {
    this.toNext?.end();
    this.toPrev?.end();
    this.toNext = null;
    this.toPrev = null;
    for (const c of this.peerClients) c.close();
    this.peerClients = [];
    this.mailbox.fail(new HaltedError('a new epoch began'));
    this.mailbox = new PipeMailbox();
  }

  /** A refused step report announced a recovery: fault only if no Halt or Assign follows. */
  private expectHalt(why: string): void {
    if (this.haltDue) return;
    this.haltDue = setTimeout(() => void this.fault(new ProtocolError(`the coordinator refused a step report (${why}) and sent no Halt`)), HALT_GRACE_MS);
    this.haltDue.unref();
  }

  private clearHaltDue(): void {
    if (this.haltDue) clearTimeout(this.haltDue);
    this.haltDue = null;
  }

  private async onHalt(epoch: number, reason: string): Promise<void> {
    this.clearHaltDue();
    const a = this.assignment;
    if (!a) throw new ProtocolError('told to halt before any stage was assigned');
    this.log.warn({ epoch, reason }, 'halting');
    this.mailbox.fail(new HaltedError(`halted: ${reason}`));
    await this.training?.catch(() => undefined);
    await this.pendingSnapshot?.catch(() => undefined);
    const held = this.heldSnapshots();
    const steps = held && held.stage === a.stage ? held.steps : [];
    await new Promise<void>((resolve, reject) =>
      this.coordinator.ReportHalted({ nodeId: this.options.nodeId, stage: a.stage, epoch, snapshotSteps: steps }, { deadline: deadline() }, (err) =>
        err ? reject(err) : resolve(),
      ),
    );
  }

  private async connectPeer(address: string): Promise<WorkerClient> {
    const client = new this.proto.ftrain.v1.Worker(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.peerClients.push(client);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline(PEER_CONNECT_TIMEOUT_MS), (err) => (err ? reject(new Error(`pipeline peer ${address} unreachable: ${err.message}`)) : resolve())),
    );
    return client;
  }

  private io(stage: number): PipeIO {
    const to = (toStage: number): PipeSender => {
      const sender = toStage === stage + 1 ? this.toNext : toStage === stage - 1 ? this.toPrev : null;
      if (!sender) throw new ProtocolError(`stage ${stage} has no pipe to stage ${toStage}`);
      return sender;
    };
    return {
      recvActivation: (step, mb, hop) => this.mailbox.take('activation', step, mb, hop),
      recvGradient: (step, mb, hop) => this.mailbox.take('gradient', step, mb, hop),
      sendActivation: (toStage, step, mb, hop, t) => to(toStage).send('PIPE_KIND_ACTIVATION', step, mb, hop, t),
      sendGradient: (toStage, step, mb, hop, t) => to(toStage).send('PIPE_KIND_GRADIENT', step, mb, hop, t),
    };
  }

  /** CheckFree+: an edge stage sends its embedding or head to its partner, which keeps the copy. */
  private async sendEdgeCopy(a: Assignment): Promise<void> {
    const { job, trainer, stage } = a;
    if (job.recovery !== 'checkfree-plus' || (stage !== 0 && stage !== job.stages - 1)) return;
    const op = stage === 0 ? 'embed' : 'head';
    const parts = trainer.model.varIndices([op]).map((i) => trainer.model.variables[i]!.dataSync() as Float32Array);
    const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      data.set(p, at);
      at += p.length;
    }
    const sender = stage === 0 ? this.toNext : this.toPrev;
    await sender!.send('PIPE_KIND_EDGE_COPY', trainer.completedSteps, 0, 0, { shape: [data.length], data });
  }

  private async train(fromStep: number): Promise<void> {
    const a = this.assignment;
    if (!a) return this.fault(new ProtocolError('told to start before any stage was assigned'));
    const io = this.io(a.stage);
    const hooks: StepHooks = {
      midStep: (step) => this.injectMidStep(a, step),
      beforeUpdate: async () => {
        if (!this.pendingSnapshot) return;
        const t0 = performance.now();
        await this.pendingSnapshot;
        this.lastSnapshot.stallMs += performance.now() - t0;
      },
    };
    try {
      await this.sendEdgeCopy(a);
      for (let step = fromStep; !this.stopping; step++) {
        if (this.limit !== 0 && step >= this.limit) break;
        const s = await a.trainer.runStep(step, io, hooks);
        if (this.stopping || this.assignment !== a) break;
        await this.sendEdgeCopy(a);
        const snap = this.lastSnapshot;
        const last = this.stopAfterCurrent || (!this.paused && this.limit !== 0 && step + 1 >= this.limit);
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
              epoch: a.epoch,
              snapshotStep: snap.step,
              snapshotStallMs: snap.stallMs,
              snapshotCopyMs: snap.copyMs,
              snapshotBytes: snap.bytes,
              protectionJson: this.protection ? JSON.stringify(this.protection) : '',
            },
            { deadline: deadline() },
            (err, reply) => {
              if (err?.code === grpc.status.NOT_FOUND) {
                this.shutdown(EXIT_FENCED, `fenced: the coordinator no longer knows this node (${err.details})`);
                return reject(new HaltedError('fenced'));
              }
              if (err?.code === grpc.status.FAILED_PRECONDITION && /no training is under way|run is in epoch/.test(err.details)) {
                // A recovery began while this step finished: the Halt that says so is on its way.
                this.expectHalt(err.details);
                return reject(new HaltedError(`step report refused: ${err.details}`));
              }
              if (err) return reject(err);
              if (reply && reply.protectedCommitStep > this.protectedCommitStep) this.protectedCommitStep = reply.protectedCommitStep;
              resolve();
            },
          ),
        );
        // Not awaited: the status it brings back goes with the next report.
        this.configureSmp('', this.protectedCommitStep).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'snapshot manager status failed'));
        this.log.debug({ step, loss: s.loss, gradNorm: s.gradNorm, stepMs: s.stepMs }, 'step done');
        const checkpointDue = this.checkpoints !== null && a.job.checkpointEvery > 0 && (step + 1) % a.job.checkpointEvery === 0;
        const snapshotDue = this.writer !== null && a.job.snapshotEvery > 0 && (step + 1) % a.job.snapshotEvery === 0;
        if (checkpointDue || snapshotDue) {
          // One copy out of tfjs serves both tiers.
          const exportStarted = performance.now();
          const state = exportStageState(a.trainer, s.gradNorm);
          const exportMs = performance.now() - exportStarted;
          if (checkpointDue) {
            // The baseline: a synchronous, durable write on the training loop.
            const ms = this.checkpoints!.write(state.header, new Uint8Array(state.buffer));
            this.log.debug({ step: state.header.step, ms }, 'disk checkpoint written');
          }
          if (snapshotDue) this.snapshot(a, state, exportMs);
        }
        if (last) break;
      }
    } catch (err) {
      if (this.stopping || err instanceof HaltedError) {
        this.log.info({ reason: errorMessage(err) }, 'training loop ended');
        return;
      }
      await this.fault(err);
    }
  }

  /**
   * Starts the lazy snapshot of the state after the step just completed. The caller copied it
   * out of tfjs (the weights are between updates; `exportMs` counts toward the stall); the
   * buffer is transferred to the writer thread, which writes the slot while the next step
   * computes, and the next update waits for its commit.
   */
  private snapshot(a: Assignment, state: { header: SnapshotHeader; buffer: ArrayBuffer }, exportMs: number): void {
    const t0 = performance.now();
    const { buffer } = state;
    const header: SnapshotHeader = { ...state.header, epoch: a.epoch };
    const held = this.slots!.records().map((r) => r.step);
    // Kept: the newest snapshot, the one before it (the global commit step is one of the two
    // when snapshots stay local), and the protected commit step (erasure-coded by every stage).
    const protectedSteps = [...held.slice(-2), this.protectedCommitStep];
    const dieBeforeCommit = a.injections.some((i) => i.kind === 'worker-kill-mid-snapshot' && i.step === header.step);
    const figures: SnapshotFigures = { step: this.lastSnapshot.step, stallMs: 0, copyMs: 0, bytes: buffer.byteLength };
    const started = performance.now();
    const write = (async () => {
      if (dieBeforeCommit) await this.reportInjection(a, header.step, 'worker-kill-mid-snapshot');
      const { record } = await this.writer!.write(header, [buffer], protectedSteps, { dieBeforeCommit }).committed;
      figures.step = record.step;
      figures.copyMs = performance.now() - started;
      this.lastSnapshot = figures;
    })().catch((err: unknown) => {
      // Training goes on; the stage's committed step (and so the global one) stays behind, which
      // the progress output and the report show.
      this.log.error({ err: errorMessage(err), step: header.step }, 'snapshot failed');
    });
    figures.stallMs = exportMs + performance.now() - t0;
    const pending: Promise<void> = write.finally(() => {
      if (this.pendingSnapshot === pending) this.pendingSnapshot = null;
    });
    this.pendingSnapshot = pending;
  }

  private async injectMidStep(a: Assignment, step: number): Promise<void> {
    if (!a.injections.some((i) => i.kind === 'worker-kill' && i.step === step)) return;
    await this.reportInjection(a, step, 'worker-kill');
    process.kill(process.pid, 'SIGKILL');
  }

  /** node-kill, sent by the coordinator: the whole machine goes, with the snapshots in its RAM. */
  private nodeKill(step: number): void {
    this.log.warn({ step, kind: 'node-kill' }, 'injecting a failure: killing this node (worker, snapshot manager, node agent)');
    for (const pid of [this.smp?.info.pid, agentPid()]) {
      if (!pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    process.kill(process.pid, 'SIGKILL');
  }

  /**
   * freeze, sent by the coordinator: SIGSTOP to the snapshot manager, the node agent and this
   * worker, as a machine that hangs without closing its connections. A detached shell wakes
   * them after FREEZE_SECONDS, by when the coordinator has declared the node lost.
   */
  private freeze(step: number): void {
    const pids = [this.smp?.info.pid, agentPid(), process.pid].filter((p): p is number => p !== undefined && p > 0);
    this.log.warn({ step, kind: 'freeze', pids, seconds: FREEZE_SECONDS }, 'injecting a failure: freezing this node');
    spawn('/bin/sh', ['-c', `sleep ${FREEZE_SECONDS}; kill -CONT ${pids.join(' ')} 2>/dev/null`], { detached: true, stdio: 'ignore' }).unref();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGSTOP');
      } catch {
        // already gone
      }
    }
  }

  /** preempt, sent by the coordinator: SIGTERM to the node agent (or to this worker without one), as a spot preemption notice. */
  private preempt(step: number): void {
    const target = agentPid() ?? process.pid;
    this.log.warn({ step, kind: 'preempt', pid: target }, 'injecting a failure: preemption notice (SIGTERM)');
    process.kill(target, 'SIGTERM');
  }

  /**
   * A preemption notice (SIGTERM): ask the coordinator to move this node's stage, keep training
   * until it says stop (it pauses at a step boundary and waits for this stage's newest snapshot to
   * be erasure-coded on other nodes), and exit when the grace period is over in any case.
   */
  depart(graceMs: number, reason: string): void {
    if (this.stopping || this.departing) return;
    if (graceMs <= 0 || !this.address) {
      this.shutdown(143, `terminated (${reason})`);
      return;
    }
    this.departing = true;
    this.log.warn({ graceMs, reason }, 'leaving: asking the coordinator to move this stage');
    setTimeout(() => this.shutdown(143, `grace period of ${graceMs / 1000} s over (${reason})`), graceMs).unref();
    this.coordinator.Leave({ nodeId: this.options.nodeId, graceMs, reason }, { deadline: deadline() }, (err) => {
      if (err) this.shutdown(143, `terminated (${reason}); the coordinator did not take the notice: ${err.details || err.message}`);
    });
  }

  private reportInjection(a: Assignment, step: number, kind: string): Promise<void> {
    this.log.warn({ step, kind }, 'injecting a failure');
    return new Promise<void>((resolve) =>
      this.coordinator.ReportInjection({ nodeId: this.options.nodeId, stage: a.stage, step, kind }, { deadline: deadline() }, () => resolve()),
    );
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
            if (chunk.epoch !== a.epoch) throw new ProtocolError(`pipe chunk of epoch ${chunk.epoch}; this node is in epoch ${a.epoch}`);
            if (chunk.kind === 'PIPE_KIND_EDGE_COPY') {
              const from = edgeCopySource(a.stage, a.job);
              if (from === null || chunk.fromStage !== from) {
                throw new ProtocolError(`stage ${a.stage} keeps no copy of stage ${chunk.fromStage}'s ${chunk.fromStage === 0 ? 'embedding' : 'head'}`);
              }
              const done = assembler.add(chunk);
              if (done) {
                const want = edgeCopySize(from, a.job);
                if (done.tensor.data.length !== want) throw new ProtocolError(`copy of stage ${from}'s parameters has ${done.tensor.data.length} values, not ${want}`);
                this.edgeCopy = { stage: from, step: done.step, data: done.tensor.data };
              }
              return;
            }
            if (chunk.microBatch < 0 || chunk.microBatch >= a.job.microBatches) {
              throw new ProtocolError(`micro-batch ${chunk.microBatch} is out of range 0..${a.job.microBatches - 1}`);
            }
            const route = a.trainer.routes[chunk.microBatch]!;
            if (chunk.hop < 0 || chunk.hop >= route.length || route[chunk.hop]!.stage !== a.stage) {
              throw new ProtocolError(`hop ${chunk.hop} of micro-batch ${chunk.microBatch} is not stage ${a.stage}'s`);
            }
            const expectedFrom = senderOf(route, chunk.hop, chunk.kind === 'PIPE_KIND_ACTIVATION' ? 'activation' : 'gradient');
            if (expectedFrom === null) {
              throw new ProtocolError(`stage ${a.stage} takes no ${chunk.kind} for hop ${chunk.hop} of micro-batch ${chunk.microBatch} (its route ${chunk.kind === 'PIPE_KIND_ACTIVATION' ? 'starts' : 'ends'} there), not from stage ${chunk.fromStage}`);
            }
            if (chunk.fromStage !== expectedFrom) {
              throw new ProtocolError(`stage ${a.stage} takes ${chunk.kind} for hop ${chunk.hop} of micro-batch ${chunk.microBatch} only from stage ${expectedFrom}, not from stage ${chunk.fromStage}`);
            }
            if (chunk.step < a.trainer.completedSteps) {
              throw new ProtocolError(`stale ${chunk.kind} for step ${chunk.step}; stage ${a.stage} has completed ${a.trainer.completedSteps} steps`);
            }
            const done = assembler.add(chunk);
            if (done) {
              const want = a.trainer.model.activationShape(a.job.microBatchSize);
              if (shapeSize(done.tensor.shape) !== shapeSize(want) || done.tensor.shape.length !== want.length) {
                throw new ProtocolError(`${done.kind} shape [${done.tensor.shape.join(',')}] does not match [${want.join(',')}]`);
              }
              this.mailbox.put(done.kind as PipeDirection, done.step, done.microBatch, done.hop, done.tensor);
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
        if (call.request.edgeCopy) {
          const copy = this.edgeCopy;
          if (!copy || copy.stage !== call.request.stage) {
            call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, `this node (stage ${a.stage}) holds no copy of stage ${call.request.stage}'s ${call.request.stage === 0 ? 'embedding' : 'head'}`));
            return;
          }
          void (async () => {
            let at = 0;
            for (const spec of edgeParamSpecs({ stage: copy.stage, numStages: a.job.stages }, a.job.model, copy.stage === 0 ? 'embed' : 'head')) {
              const size = spec.shape.reduce((x, y) => x * y, 1);
              const chunks = chunkFloat32(copy.data.subarray(at, at + size));
              at += size;
              for (let c = 0; c < chunks.length; c++) {
                const ok = call.write({ name: spec.name, shape: spec.shape, chunkIndex: c, chunkCount: chunks.length, data: chunks[c], step: copy.step });
                if (!ok) await once(call, 'drain');
              }
            }
            call.end();
          })().catch((err) => call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err))));
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
    this.clearHaltDue();
    this.mailbox.fail(new HaltedError('node is shutting down'));
    void this.writer?.close();
    this.heartbeats?.postMessage('stop');
    this.toNext?.end();
    this.toPrev?.end();
    this.commands?.cancel();
    for (const c of this.peerClients) c.close();
    this.coordinator.close();
    this.smp?.client.close();
    this.server.forceShutdown();
    this.log[code === 0 ? 'info' : 'error']({ code }, reason);
    this.exitWith({ code, reason });
  }
}

/** CheckFree+: the edge stage whose embedding or head `stage` keeps a copy of, or null. */
function edgeCopySource(stage: number, job: JobOptions): number | null {
  if (job.recovery !== 'checkfree-plus') return null;
  const partner = swapPartner(job.stages, stage);
  return partner === 0 || partner === job.stages - 1 ? partner : null;
}

/** Values in the copy of an edge stage's embedding or head. */
function edgeCopySize(edge: number, job: JobOptions): number {
  return edgeParamSpecs({ stage: edge, numStages: job.stages }, job.model, edge === 0 ? 'embed' : 'head').reduce((n, s) => n + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** The node agent (`ftrain node`) this worker runs under, if any. */
function agentPid(): number | undefined {
  const pid = Number(process.env.FTRAIN_NODE_AGENT_PID);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}
