// A worker node's adapter: it registers with the coordinator, keeps its lease (from a thread),
// reads its command stream, and carries out what the worker's core (core/worker-core.ts)
// decides: apply an assignment, train, halt, report. Pipeline tensors go worker-to-worker over
// Worker.Pipe streams; the coordinator only sees step reports.

import * as grpc from '@grpc/grpc-js';
import { hostname } from 'node:os';
import type { RestoreTrace } from '../domain/node-reports.ts';
import type { Logger } from '../common/logging.ts';
import { GRPC_SERVER_OPTIONS, bindServer, loadProto } from '../common/proto.ts';
import { decodeCommand, decodeStepReply } from '../common/wire/coordinator-wire.ts';
import { refusalOf, refusalStatus } from '../common/wire/refusal-wire.ts';
import { peerName, tlsIdentity, type AuthenticatedCall } from '../common/transport.ts';
import { RefusalReason } from '../domain/refusal.ts';
import type { Ack } from '../proto/generated/ftrain/v1/Ack.ts';
import { encodeStatus } from '../common/wire/snapshot-manager-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';
import type { ReceivedAssign } from '../domain/commands.ts';
import { ProtocolError, errorMessage } from '../domain/errors.ts';
import type { Backend, JobOptions } from '../domain/job-options.ts';
import { DEFAULT_SLOT_COUNT } from '../domain/snapshot-slots.ts';
import type { Command__Output } from '../proto/generated/ftrain/v1/Command.ts';
import type { WorkerHandlers } from '../proto/generated/ftrain/v1/Worker.ts';
import { compileWorkerOptions, type WorkerOptions } from './core/worker-options.ts';
import { WorkerCore, type WorkerAction, type WorkerInput } from './core/worker-core.ts';
import { DiskCheckpoints, describeCheckpointDir } from './disk-checkpoint.ts';
import { edgeCopyOf, edgeCopySize, edgeCopySource, rebuildByCheckfree } from './edge-copy.ts';
import { NO_FAULTS, type FaultPoint, type WorkerFaults } from './fault-port.ts';
import { HaltedError, PipelineLinks } from './pipeline-links.ts';
import { receivePipeChunks, type PipeTarget } from './pipe-receiver.ts';
import { PipeBrokenError } from './pipe-sender.ts';
import { CoordinatorLink } from './coordinator-link.ts';
import type { RegisterWait } from './coordinator-address.ts';
import { SnapshotLink } from './snapshot-link.ts';
import { RestoreClock, buildStage, fetchSnapshot, readySnapshots, restoreAssigned } from './stage-assignment.ts';
import { HaltPoints, memoryStep } from './halt-points.ts';
import { ReplicaRing } from './replica-ring.ts';
import { replicaWorkOf } from './replica-work.ts';
import { StageAhead } from './stage-ahead.ts';
import { StageSnapshots } from './stage-snapshots.ts';
import { exportStageState } from './stage-state.ts';
import type { StageTrainer } from './stage-trainer.ts';
import { tf } from './tfjs-backend.ts';
import { serveWeights, type EdgeCopy } from './weights-service.ts';
import { serveState } from './state-service.ts';
import { hostOf } from '../domain/host-port.ts';
import { slotOf } from '../domain/replica-slots.ts';

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
  /** Started by a node agent (`ftrain node`), whose snapshot manager publishes smp.json. */
  readonly managed: boolean;
  /** The node agent's pid (0: none), sent at registration for tools. */
  readonly agentPid: number;
  /** The node's failure domain (`--zone`), sent at registration; '' or absent: none. */
  readonly zone?: string;
  /** The job's join token, sent at registration; '' or absent: none. */
  readonly joinToken?: string;
  readonly logger: Logger;
  /** Timeouts and retry delays; defaults where absent. */
  readonly protocol?: Partial<WorkerOptions>;
  /** Where failures are caused on purpose; none by default. */
  readonly faults?: WorkerFaults;
  /** Hears of each failed registration attempt while the coordinator cannot be reached (a progress line). */
  readonly onRegisterWait?: (w: RegisterWait) => void;
  /** Hears when the node starts (or resumes) training a stage: its node agent may then warm a standby. */
  readonly onTraining?: (stage: number) => void;
  /**
   * This worker replaces one of its node that died: as it starts, it builds the stage its
   * predecessor held and restores that stage's newest snapshot, while the coordinator halts the
   * other stages; its assignment then finds the stage ready (or drops it
   * when told otherwise).
   */
  readonly successor?: boolean;
}

export type NodeExit = { readonly code: number; readonly reason: string };

/** The stage this node holds (`stage` within its replica; the coordinator knows it by `slot`). */
interface Held extends PipeTarget {
  readonly slot: number;
  readonly checkpoints: DiskCheckpoints | null;
  /** This stage writes the disk checkpoints of its replicas (replica-work.ts). */
  readonly writesCheckpoints: boolean;
  /** The nodes whose pipeline and all-reduce streams it takes in this epoch (with TLS); null: any member. */
  readonly peers: ReadonlySet<string> | null;
}

export class WorkerNode {
  private readonly proto = loadProto();
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly coordinator: CoordinatorLink;
  private readonly protocol: WorkerOptions;
  private readonly faults: WorkerFaults;
  private readonly core: WorkerCore;
  private readonly snapshots: StageSnapshots | null;
  private smp: SnapshotLink | null = null;
  private held: Held | null = null;
  /** Where the last assignment's time went, sent with the ready report. */
  private lastTrace: RestoreTrace | null = null;
  private readonly links: PipelineLinks;
  /** With replicas: the all-reduce ring of this stage's replicas. */
  private readonly ring: ReplicaRing;
  private training: Promise<void> | null = null;
  /** Where the training loop hears a Halt. */
  private readonly haltPoints: HaltPoints;
  /** A successor's stage, built ahead of its first assignment. */
  private readonly ahead: StageAhead;
  /** CheckFree+: the newest copy of the embedding or head of the edge stage this one partners. */
  private edgeCopy: EdgeCopy | null = null;
  private ticker: NodeJS.Timeout | null = null;
  private stopping = false;
  private exitWith!: (e: NodeExit) => void;
  /** Settles when the node should exit, with the exit code and why. */
  readonly exited: Promise<NodeExit>;
  address = '';

  constructor(private readonly options: WorkerNodeOptions) {
    this.protocol = compileWorkerOptions(options.protocol);
    this.faults = options.faults ?? NO_FAULTS;
    this.core = new WorkerCore(this.protocol);
    this.coordinator = new CoordinatorLink(options.coordinator, options.nodeId, this.protocol, options.logger);
    this.exited = new Promise((resolve) => (this.exitWith = resolve));
    this.server.addService(this.proto.ftrain.v1.Worker.service, this.handlers());
    this.links = new PipelineLinks(options.logger, this.protocol.peerConnectTimeoutMs);
    this.ring = new ReplicaRing(options.logger, this.protocol.peerConnectTimeoutMs);
    this.ahead = new StageAhead(options.logger);
    this.snapshots = options.snapshotDir ? new StageSnapshots(options.snapshotDir, DEFAULT_SLOT_COUNT, this.faults, options.logger) : null;
    this.haltPoints = new HaltPoints(this.links, this.snapshots);
  }

  private get log(): Logger {
    return this.options.logger;
  }

  async start(): Promise<void> {
    // A successor starts on its predecessor's stage at once: the state loads on the thread pool
    // while this thread listens, registers and answers the coordinator.
    if (this.options.successor && this.snapshots) this.ahead.start(this.snapshots);
    const port = await bindServer(this.server, this.options.listen);
    const listenHost = hostOf(this.options.listen);
    const host = this.options.advertiseHost ?? (listenHost === '0.0.0.0' || listenHost === '' ? hostname() : listenHost);
    this.address = `${host}:${port}`;
    this.log.info({ address: this.address }, 'worker service listening');
    if (this.snapshots) {
      this.smp = await SnapshotLink.find(this.snapshots.slots.dir, this.options.managed, this.protocol.smpInfoTimeoutMs);
      if (this.smp) this.log.info({ smp: this.smp.info.address }, 'snapshot manager found');
      // A successor is a recovery under way on this node.
      if (this.options.successor) this.smp?.holdProtection(true);
    }
    const reply = await this.coordinator.register(() => {
      const held = this.snapshots?.held() ?? null;
      return {
        nodeId: this.options.nodeId,
        address: this.address,
        pid: process.pid,
        hostname: hostname(),
        snapshotStage: held?.stage ?? -1,
        snapshotSteps: held?.steps ?? [],
        smpAddress: this.smp?.info.address ?? '',
        smpPid: this.smp?.info.pid ?? 0,
        agentPid: this.options.agentPid,
        zone: this.options.zone ?? '',
        joinToken: this.options.joinToken ?? '',
      };
    }, this.options.onRegisterWait);
    this.feed({ type: 'registered' });
    this.coordinator.startHeartbeats(reply.heartbeatMs, (refusal) => this.feed({ type: 'heartbeat-refused', refusal }));
    this.coordinator.openCommands(
      (c) => this.onCommand(c),
      (why) => this.feed({ type: 'commands-lost', why }),
    );
    this.ticker = setInterval(() => this.feed({ type: 'tick' }), this.protocol.tickMs);
    this.ticker.unref();
  }

  /** A preemption notice (SIGTERM): hand the stage over within `graceMs`, then exit. */
  depart(graceMs: number, reason: string): void {
    this.feed({ type: 'terminate', graceMs, reason });
  }

  /** Stops at once (the parent went away, Ctrl-C). */
  shutdown(code: number, reason: string): void {
    this.feed({ type: 'shutdown', code, reason });
  }

  private feed(input: WorkerInput): void {
    for (const action of this.core.handle(input, Date.now())) this.execute(action);
  }

  private fault(err: unknown): void {
    if (this.stopping) return;
    this.feed({ type: 'fault', message: errorMessage(err) });
  }

  /** Carries out one action of the core; the long ones run on and feed their outcome back. */
  private execute(a: WorkerAction): void {
    switch (a.type) {
      case 'apply-assign':
        this.applyAssign(a.assign).then(
          () => this.feed({ type: 'assign-applied', epoch: a.assign.epoch }),
          (err: unknown) => this.fault(err),
        );
        return;
      case 'report-ready':
        this.coordinator.reportReady(a.stage, a.epoch, this.held?.checkpoints?.steps() ?? [], this.lastTrace).then(
          () => this.log.info({ stage: a.stage, epoch: a.epoch, params: this.held!.trainer.model.variables.reduce((n, v) => n + v.size, 0) }, 'ready'),
          (err: unknown) => this.refusedOrFault('ReportReady', err),
        );
        return;
      case 'start-training':
        try {
          this.startTraining(a.fromStep, a.restoreCheckpointStep, a.fromScratch);
          this.smp?.holdProtection(false);
          this.options.onTraining?.(this.held!.slot);
        } catch (err) {
          this.fault(err);
        }
        return;
      case 'halt-training':
        this.haltPoints.halt(a.reason, a.resumeAtMost);
        this.ring.halt(new HaltedError(`halted: ${a.reason}`));
        this.smp?.holdProtection(true);
        void (async () => {
          await this.training?.catch(() => undefined);
          await this.snapshots?.settle();
          this.haltPoints.repair(this.held?.trainer);
          this.feed({ type: 'halted' });
        })().catch((err: unknown) => this.fault(err));
        return;
      case 'report-halted': {
        const held = this.snapshots?.held();
        const steps = held && held.stage === a.stage ? held.steps : [];
        // Refused, it goes to the core: a new leader refuses the old leader's epoch and halts anew.
        this.coordinator.reportHalted(a.stage, a.epoch, steps, memoryStep(this.held, a.stage)).catch((err: unknown) => this.refusedOrFault('ReportHalted', err));
        return;
      }
      case 'configure-smp':
        this.smp?.configure(a.plan, a.protectedCommitStep).catch((err: unknown) => this.fault(new Error(`Configure to the snapshot manager: ${errorMessage(err)}`)));
        return;
      case 'leave':
        void this.coordinator.leave(a.graceMs, a.reason).then((taken) => {
          if (taken !== true) this.feed({ type: 'leave-refused', why: taken });
        });
        return;
      case 'report-fault':
        this.coordinator.reportFault(a.stage, a.message);
        return;
      case 'log':
        this.log[a.level](a.fields ?? {}, a.msg);
        return;
      case 'exit':
        this.close(a.code, a.reason);
        return;
    }
  }

  /** A report the coordinator refused goes to the core; any other failure is a fault, named by its call. */
  private refusedOrFault(rpc: string, err: unknown): void {
    const refusal = refusalOf(err as grpc.ServiceError);
    if (refusal) this.feed({ type: 'report-refused', rpc, refusal });
    else this.fault(new Error(`${rpc} to the coordinator: ${errorMessage(err)}`));
  }

  private onCommand(c: Command__Output): void {
    let command;
    try {
      command = decodeCommand(c);
    } catch (err) {
      this.fault(err);
      return;
    }
    this.feed({ type: 'command', command });
  }

  /** Builds (or keeps) the stage, restores or rebuilds its state, and connects to its neighbours. */
  private async applyAssign(a: ReceivedAssign): Promise<void> {
    const prev = this.held;
    const job: JobOptions = this.options.backend ? { ...a.job, backend: this.options.backend } : a.job;
    const stage = a.stage;
    const slot = slotOf(job, a.replica, stage);
    const checkfree = a.checkfree ?? null;
    let trainer: StageTrainer;
    const clock = new RestoreClock();
    const { trace } = clock;
    const lap = () => clock.lap();
    if (a.plan) await this.smp?.configure(a.plan, -1);
    lap();
    // Waiting for a build ahead still under way counts as building.
    const prebuilt = await this.ahead.take(a, job);
    trace.buildMs = lap();
    if (prev && prev.slot === slot && !checkfree) {
      trainer = prev.trainer;
    } else if (prebuilt && !prev) {
      trainer = prebuilt;
    } else {
      prev?.trainer.dispose();
      prebuilt?.dispose();
      trainer = await buildStage(job, slot, a.dataSha256 || null, a.restoreStep >= 0 && !checkfree ? 'zeros' : 'initial');
      trace.buildMs += lap();
    }
    this.snapshots?.rememberAssignment({ stage: slot, job, dataSha256: a.dataSha256 || null });
    // The rebuild (in the snapshot manager's process) after the build, not beside it: on two
    // cores the build's compute slowed the shards' transfer more than it saved.
    await fetchSnapshot(this.smp, a, clock, this.protocol.rebuildTimeoutMs, this.log);
    await restoreAssigned(this.snapshots, trainer, trainer === prev?.trainer, a, clock, this.protocol.rebuildTimeoutMs);
    if (checkfree) {
      this.snapshots?.forgetInMemory();
      const figures = await rebuildByCheckfree(trainer, checkfree);
      this.log.warn(figures, checkfree.kind === 'average' ? "stage rebuilt by CheckFree from its neighbours' weights (fresh optimizer state)" : "stage rebuilt by CheckFree+ from its swap partner's weights (fresh optimizer state)");
    }
    lap();
    readySnapshots(this.snapshots, trainer, a, job);
    trace.prepareMs = lap();
    let checkpoints = prev?.checkpoints ?? null;
    if (job.checkpointDir && checkpoints?.stage !== stage) {
      describeCheckpointDir(job.checkpointDir, job, a.dataSha256 || null);
      checkpoints = new DiskCheckpoints(job.checkpointDir, stage);
    }
    const source = edgeCopySource(stage, job);
    const { work, place, writesCheckpoints } = replicaWorkOf(a, job.replicas);
    const peers = a.peerNodeIds ? new Set([this.options.nodeId, ...a.peerNodeIds]) : null;
    this.held = { stage, slot, epoch: a.epoch, job, trainer, work, writesCheckpoints, checkpoints, edgeCopySource: source, edgeCopySize: source === null ? 0 : edgeCopySize(source, job), peers };
    await this.links.connect(stage, a.epoch, a.prevAddress, a.nextAddress);
    if (place) await this.ring.connect(place);
    trace.connectMs = lap();
    this.lastTrace = trace;
    if (this.edgeCopy && this.edgeCopy.stage !== source) this.edgeCopy = null;
  }

  private startTraining(fromStep: number, restoreCheckpointStep: number, fromScratch: boolean): void {
    const h = this.held;
    if (!h) throw new ProtocolError('told to start before any stage was assigned');
    // The stage's tensors change here other than by a step: they no longer hold a snapshot as it is.
    if (fromScratch || restoreCheckpointStep >= 0 || h.trainer.completedSteps !== fromStep) this.snapshots?.forgetInMemory();
    if (fromScratch) {
      h.trainer.reset();
      this.log.warn({ stage: h.stage }, 'back to the initial weights: the run starts again from step 0');
    }
    if (restoreCheckpointStep >= 0) {
      if (!h.checkpoints) throw new ProtocolError(`told to load disk checkpoint ${restoreCheckpointStep}, but no checkpoint directory is set`);
      const { bytes, ms } = h.checkpoints.restore(h.trainer, restoreCheckpointStep);
      this.log.info({ step: restoreCheckpointStep, bytes, ms, dir: h.checkpoints.dir }, 'resumed from disk checkpoint');
    }
    // After CheckFree the stages go on from one step whatever each had finished.
    h.trainer.completedSteps = fromStep;
    this.training = this.train(h, fromStep);
  }

  /** CheckFree+: an edge stage sends its embedding or head to its partner, which keeps the copy. */
  private async sendEdgeCopy(h: Held): Promise<void> {
    const data = edgeCopyOf(h.trainer);
    if (data) await this.links.sendEdgeCopy(h.stage, h.trainer.completedSteps, data);
  }

  /** Where the fault port is called: the stage, the step, and how to announce a failure. */
  private faultPoint(h: Held, step: number): FaultPoint {
    return {
      stage: h.stage,
      replica: h.trainer.replica,
      step,
      job: h.job,
      announce: (kind) => this.coordinator.announce(h.slot, step, kind),
      corruptWeights: () => h.trainer.flipFirstWeight(),
    };
  }

  private async train(h: Held, fromStep: number): Promise<void> {
    const io = this.links.io(h.stage);
    const snapshots = this.snapshots;
    try {
      await this.sendEdgeCopy(h);
      for (let step = fromStep; this.core.mayStartStep(step); step++) {
        const s = await h.trainer.runStep(step, io, {
          midStep: (st) => this.faults.midStep(this.faultPoint(h, st)),
          beforeUpdate: () => snapshots?.beforeUpdate() ?? Promise.resolve(),
          allReduce: (st, parts, plan) => this.ring.allReduce(st, parts, plan),
          yieldInUpdate: () => this.haltPoints.inUpdate(h.trainer, h.job),
          betweenPieces: () => this.haltPoints.betweenPieces(),
        }, h.work);
        if (this.stopping || this.held !== h) break;
        await this.faults.afterStep(this.faultPoint(h, step));
        await this.sendEdgeCopy(h);
        const check = h.job.replicas > 1 && h.job.replicaCheckEvery > 0 && (step + 1) % h.job.replicaCheckEvery === 0;
        const snap = snapshots?.last ?? { step: -1, stallMs: 0, copyMs: 0, bytes: 0 };
        const last = this.core.isLast(step);
        const protection = this.smp?.protection ?? null;
        try {
          const reply = await this.coordinator.reportStep({
            stage: h.slot,
            step,
            loss: s.loss ?? 0,
            gradNorm: s.gradNorm,
            clippedGradNorm: s.clippedGradNorm,
            computeMs: s.computeMs,
            waitMs: s.waitMs,
            stepMs: s.stepMs,
            allReduceMs: s.allReduceMs,
            weightsDigest: check ? h.trainer.weightsCrc().toString(16).padStart(8, '0') : '',
            tokens: s.tokens,
            last,
            epoch: h.epoch,
            snapshotStep: snap.step,
            snapshotStallMs: snap.stallMs,
            snapshotCopyMs: snap.copyMs,
            snapshotBytes: snap.bytes,
            protection: protection ? encodeStatus(protection) : null,
          });
          this.feed({ type: 'report-accepted', ...decodeStepReply(reply) });
        } catch (err) {
          const refusal = refusalOf(err as grpc.ServiceError);
          if (!refusal) throw err;
          this.feed({ type: 'report-refused', rpc: 'a step report', refusal });
          throw new HaltedError(`step report refused: ${refusal.message}`);
        }
        // Not awaited: the status it brings back goes with the next report.
        this.smp?.configure(null, this.core.protectedCommitStep).catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'snapshot manager status failed'));
        this.log.debug({ step, loss: s.loss, gradNorm: s.gradNorm, stepMs: s.stepMs, rssBytes: process.memoryUsage.rss(), backendBytes: tf.memory().numBytes }, 'step done');
        // The replicas of a stage hold the same bits: one of them writes the stage's checkpoint.
        const checkpointDue = h.checkpoints !== null && h.job.checkpointEvery > 0 && (step + 1) % h.job.checkpointEvery === 0 && h.writesCheckpoints;
        const snapshotDue = this.core.snapshotDue(step + 1) && snapshots?.writing === true;
        if (checkpointDue || snapshotDue) {
          if (checkpointDue) {
            // The baseline: a copy out of tfjs into a buffer of its own, and a synchronous,
            // durable write on the training loop.
            const state = exportStageState(h.trainer, s.gradNorm);
            const ms = h.checkpoints!.write({ ...state.header, stage: h.stage }, new Uint8Array(state.buffer));
            this.log.debug({ step: state.header.step, ms }, 'disk checkpoint written');
          }
          if (snapshotDue) snapshots!.take(h.trainer, s.gradNorm, this.faultPoint(h, h.trainer.completedSteps), h.epoch, this.core.protectedCommitStep);
        }
        if (last) break;
      }
    } catch (err) {
      if (this.stopping || err instanceof HaltedError || err instanceof PipeBrokenError) {
        this.log.info({ reason: errorMessage(err) }, 'training loop ended');
        return;
      }
      this.fault(err);
    }
  }

  /**
   * With TLS, a pipeline or all-reduce stream is taken only from a node the stage's assignment
   * names (its neighbours, its replicas' ring) in this epoch: the refusal for any other caller.
   */
  private outsider(call: AuthenticatedCall, what: string): grpc.ServiceError | null {
    if (!tlsIdentity()) return null;
    const peer = peerName(call);
    const held = this.held;
    if (held === null || held.peers === null || (peer !== null && held.peers.has(peer))) return null;
    const message = `${what} refused: ${peer === null ? 'the caller showed no certificate name' : `node ${peer}`} is not a neighbour or replica of stage ${held.stage} in epoch ${held.epoch}`;
    this.log.warn({ peer, epoch: held.epoch }, message);
    return refusalStatus({ reason: RefusalReason.notMember, message });
  }

  private handlers(): WorkerHandlers {
    const refused = (call: AuthenticatedCall, callback: grpc.sendUnaryData<Ack>, what: string): boolean => {
      const outsider = this.outsider(call, what);
      if (!outsider) return false;
      callback(outsider);
      return true;
    };
    return {
      Pipe: (call, callback) =>
        refused(call, callback, 'a pipe stream') ||
        receivePipeChunks(call, callback, {
          held: () => this.held,
          take: (d) => {
            if (d.kind === 'edge-copy') throw new WireError('kind', 'edge copies go on KeepEdgeCopy, which answers once the copy is kept');
            this.links.mailbox.put(d.kind, d.step, d.microBatch, d.hop, d.tensor);
          },
          log: this.log,
          what: 'a pipe stream',
        }),
      KeepEdgeCopy: (call, callback) => {
        if (refused(call, callback, 'an edge copy')) return;
        let kept = false;
        receivePipeChunks(call, callback, {
          held: () => this.held,
          take: (d) => {
            if (d.kind !== 'edge-copy') throw new WireError('kind', `KeepEdgeCopy carries edge copies only, not a ${d.kind}`);
            this.edgeCopy = { stage: d.from, step: d.step, data: d.data };
            kept = true;
          },
          atEnd: () => (kept ? null : new WireError('chunk_count', 'the call ended before every chunk of an edge copy arrived')),
          log: this.log,
          what: 'an edge copy',
        });
      },
      FetchWeights: (call) => serveWeights(call, this.held ? { trainer: this.held.trainer, edgeCopy: this.edgeCopy } : null),
      FetchState: (call) => serveState(call, this.held ?? null),
      AllReduce: (call, callback) => refused(call, callback, 'an all-reduce stream') || this.ring.handle(call, callback),
    };
  }

  /** Stops training, closes every connection and settles `exited`. */
  private close(code: number, reason: string): void {
    if (this.stopping) return;
    this.stopping = true;
    if (this.ticker) clearInterval(this.ticker);
    this.links.close();
    this.ring.close();
    this.snapshots?.close();
    this.coordinator.close();
    this.smp?.close();
    this.server.forceShutdown();
    this.log[code === 0 ? 'info' : 'error']({ code }, reason);
    this.exitWith({ code, reason });
  }
}
