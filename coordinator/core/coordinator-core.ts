// The coordinator's brain: a synchronous state machine. Events (with the current time) go in; a
// reply for the RPC that carried the event and a list of actions come out. No I/O, no clock, no
// timers here: the gRPC adapter (coordinator/coordinator-server.ts) feeds it and carries out the
// actions. This file is the dispatcher; each concern is a part of its own: membership and
// leases, stage and shard placement, commit tracking, the recovery (with its pure policy),
// departures and the failure log. Nothing outside reads the parts: `status()` is the read-only
// view, and the actions are the ledger observability is built from.

import type { JobOptions } from '../../domain/job-options.ts';
import type { StepReport } from '../../domain/node-reports.ts';
import { RefusalReason, type Refusal } from '../../domain/refusal.ts';
import { NodeState, RunPhase, type Failure } from '../../domain/run-status.ts';
import { CommitTracker } from './commit-tracker.ts';
import { DURABLE_STATE_VERSION, type DurableCoordinatorState } from './durable-state.ts';
import type { Action, CoordinatorEvent, Outcome, Reply } from './core-events.ts';
import { coordinatorStatus, type CoordinatorStatus } from './coordinator-status.ts';
import { Departures } from './departures.ts';
import { FailureLog } from './failure-log.ts';
import { Membership } from './membership.ts';
import { NodeMemoryTracker } from './node-memory.ts';
import { isLive } from './node-lifecycle.ts';
import { Recovery } from './recovery.ts';
import { unrecoverable } from './recovery-policy.ts';
import { hasEnded, transitionPhase } from './run-phase.ts';
import { ShardPlacement } from './shard-placement.ts';
import { SnapshotIntervals } from './snapshot-interval.ts';
import type { SnapshotInterval } from '../../domain/snapshot-schedule.ts';
import { ShareLayouts } from './share-layouts.ts';
import { StagePlacement } from './stage-placement.ts';
import { TrainingProgress } from './training-progress.ts';
import { slotCount, slotName, slotsOfStage } from '../../domain/replica-slots.ts';
import { MAX_RECOVERY_RESTARTS, unansweredLog } from './recovery-answers.ts';

export class CoordinatorCore {
  private phase: RunPhase = RunPhase.waiting;
  /** Increases with every recovery; traffic of older epochs is refused. */
  private epoch = 0;
  private failure: Failure | null = null;
  private readonly members: Membership;
  private readonly commits: CommitTracker;
  private readonly shards: ShardPlacement;
  private readonly placement: StagePlacement;
  private readonly layouts: ShareLayouts;
  private readonly failures = new FailureLog();
  private readonly memory = new NodeMemoryTracker();
  private readonly departures: Departures;
  private readonly recovery: Recovery;
  private readonly progress: TrainingProgress;
  private readonly intervals: SnapshotIntervals;
  /** The leader cannot reach its store: the snapshot interval holds still (see `storeReachable`). */
  private storeDown = false;

  constructor(readonly job: JobOptions) {
    this.members = new Membership(job.leaseMs);
    this.commits = new CommitTracker(slotCount(job));
    this.intervals = new SnapshotIntervals(job);
    this.shards = new ShardPlacement(job, this.members, this.commits);
    this.layouts = new ShareLayouts(job.stages);
    this.placement = new StagePlacement(job, this.members, this.commits, this.shards, () => this.epoch, this.layouts);
    const core = this;
    this.departures = new Departures(job, this.members, this.commits, this.failures, {
      get phase() {
        return core.phase;
      },
      get erasureCoded() {
        return core.shards.code !== null;
      },
      nextSnapshotStep: (step) => this.intervals.nextSnapshotStep(step),
      nodeFailed: (nodeId, detail, now, out) => this.nodeFailed(nodeId, detail, now, out),
    });
    this.recovery = new Recovery(job, this.members, this.commits, this.shards, this.placement, this.failures, {
      get phase() {
        return core.phase;
      },
      setPhase: (to) => this.setPhase(to),
      get epoch() {
        return core.epoch;
      },
      shareLayout: (stage, step) => this.layouts.of(stage, step),
      nextEpoch: () => ++this.epoch,
      failRun: (failure, out) => this.failRun(failure, out),
      nextSnapshotStep: (step) => this.intervals.nextSnapshotStep(step),
    });
    this.progress = new TrainingProgress(job, this.members, this.commits, this.failures, this.recovery, this.shards, this.intervals, {
      get phase() {
        return core.phase;
      },
      setPhase: (to) => this.setPhase(to),
      get epoch() {
        return core.epoch;
      },
      failRun: (failure, out) => this.failRun(failure, out),
      afterSteps: (now, out) => this.departures.maybeMove(now, out),
      replicaDiverged: (slot, trustUpTo, detail, now, out) => {
        const nodeId = this.commits.stage(slot).nodeId;
        if (!nodeId) return;
        this.recovery.distrust(slot, trustUpTo);
        // Its node is not waited for (its snapshot manager still answers, but holds what diverged):
        // a spare takes the stage over from a live replica, and the node itself is fenced.
        this.members.markSmp(nodeId, 'lost');
        this.nodeFailed(nodeId, detail, now, out, 'replica-mismatch');
      },
      get intervalHeld() {
        return core.departures.pending || core.storeDown;
      },
    });
  }

  handle(event: CoordinatorEvent, nowMs: number): Outcome {
    const actions: Action[] = [];
    this.recovery.nowMs = nowMs;
    const refusal = this.dispatch(event, nowMs, actions);
    const reply: Reply = refusal ? { ok: false, refusal } : { ok: true, protectedCommitStep: this.commits.codedCommitStep, snapshotInterval: this.intervals.announced };
    return { reply, actions };
  }

  /**
   * The leader's store cannot be reached (`written`: the state it holds, as last written, if any)
   * or answers again. While it cannot, the snapshot interval holds still, and a change decided
   * since the last write is withdrawn: no stage was told of it (replies wait for the write), and a
   * leader that takes over from the store would not know it. Returns the change withdrawn, if any.
   */
  storeReachable(reachable: boolean, written: DurableCoordinatorState | null): SnapshotInterval | null {
    this.storeDown = !reachable;
    return !reachable && written ? this.intervals.withdrawUnwritten(written.intervals) : null;
  }

  /** The interval step replies carry now (see `Reply`). */
  get announcedInterval(): SnapshotInterval | null {
    return this.intervals.announced;
  }

  /** The run as it stands: a frozen copy, for the adapter, tools and observability. */
  status(): CoordinatorStatus {
    return coordinatorStatus({
      phase: this.phase,
      epoch: this.epoch,
      toStep: this.progress.toStep,
      failure: this.failure,
      recovering: this.recovery.current(),
      members: this.members,
      commits: this.commits,
      shards: this.shards,
      failures: this.failures,
      memory: this.memory,
      snapshotInterval: this.intervals.status(),
    });
  }

  /** What a new leader needs to go on from here (durable-state.ts says what is left out). */
  durable(): DurableCoordinatorState {
    return {
      version: DURABLE_STATE_VERSION,
      job: this.job,
      phase: this.phase,
      epoch: this.epoch,
      failure: this.failure,
      recovering: this.recovery.durable(),
      nodes: this.members.durable(),
      commits: this.commits.durable(),
      shards: this.shards.durable(),
      layouts: this.layouts.durable(),
      intervals: this.intervals.durable(),
      failures: this.failures.durable(),
      departures: this.departures.durable(),
      progress: this.progress.durable(),
    };
  }

  /**
   * A core that goes on from a stored state (a new leader's), at `nowMs`. Every live node has a
   * fresh lease to be heard from again. Throws when the state is of another shape or job.
   */
  static restore(job: JobOptions, state: DurableCoordinatorState, nowMs: number): CoordinatorCore {
    if (state.version !== DURABLE_STATE_VERSION) throw new Error(`the stored coordinator state is of version ${state.version}, this coordinator reads version ${DURABLE_STATE_VERSION}: run the same ftrain version on every coordinator`);
    const core = new CoordinatorCore(job);
    core.phase = state.phase;
    core.epoch = state.epoch;
    core.failure = state.failure;
    core.members.restore(state.nodes, nowMs);
    core.commits.restore(state.commits);
    core.shards.restore(state.shards);
    core.layouts.restore(state.layouts);
    core.intervals.restore(state.intervals);
    core.failures.restore(state.failures);
    core.departures.restore(state.departures);
    core.progress.restore(state.progress);
    core.progress.takeOver(slotCount(job));
    if (state.recovering) core.recovery.resume(state.recovering, nowMs);
    return core;
  }

  private setPhase(to: RunPhase): void {
    this.phase = transitionPhase(this.phase, to);
  }

  private dispatch(e: CoordinatorEvent, now: number, out: Action[]): Refusal | null {
    switch (e.type) {
      case 'register':
        return this.onRegister(e, now, out);
      case 'heartbeat': {
        const refused = this.members.heartbeat(e.nodeId, Math.min(now, e.heardAtMs ?? now));
        if (!refused && e.memory) this.memory.worker(e.nodeId, e.memory);
        return refused;
      }
      case 'memory': {
        const refused = this.checkSmp(e.nodeId, e.smpAddress);
        if (!refused) this.memory.smp(e);
        return refused;
      }
      case 'commands-opened': {
        const node = this.members.live(e.nodeId);
        if (!node) return this.members.notLive(e.nodeId);
        if (node.commandsOpen) return { reason: RefusalReason.duplicate, message: `node ${e.nodeId} already has a command stream` };
        node.commandsOpen = true;
        if (node.stage !== null) this.recovery.reattached(node, out);
        // A vacant slot takes it: in a recovery, or while the others train on without its replica
        // (from their restore on: the node may be back before they are).
        if (this.phase === RunPhase.recovering || this.recovery.vacancies().length > 0) this.recovery.fillVacancies(out);
        else if (this.phase === RunPhase.waiting && this.placement.tryAssign(out)) this.setPhase(RunPhase.starting);
        return null;
      }
      case 'commands-closed': {
        const node = this.members.get(e.nodeId);
        if (node) node.commandsOpen = false;
        this.nodeFailed(e.nodeId, 'its command stream to the coordinator broke (process died or network lost)', now, out);
        return null;
      }
      case 'ready':
        return this.checkStage(e.nodeId, e.stage) ?? this.progress.ready(e.nodeId, e.stage, e.epoch ?? 0, e.checkpointSteps ?? [], now, out, e.trace);
      case 'halted': {
        const refused = this.checkStage(e.nodeId, e.stage);
        if (refused) return refused;
        if (!this.recovery.halted(e.stage, e.epoch, e.snapshotSteps, e.memoryStep, out)) {
          return { reason: RefusalReason.staleEpoch, message: `no recovery of epoch ${e.epoch} is under way`, runEpoch: this.epoch, givenEpoch: e.epoch };
        }
        return null;
      }
      case 'injection': {
        const refused = this.checkStage(e.nodeId, e.stage);
        if (refused) return refused;
        if (!this.failures.announceInjection(e.stage, e.step, e.kind, now)) {
          return { reason: RefusalReason.duplicate, message: `${e.kind} of stage ${e.stage} at step ${e.step} was announced before` };
        }
        out.push({ type: 'log', level: 'warn', msg: `injecting ${e.kind} on stage ${e.stage} (${e.nodeId}) at step ${e.step}` });
        out.push({ type: 'injection-announced', nodeId: e.nodeId, stage: e.stage, step: e.step, kind: e.kind });
        return null;
      }
      case 'step':
        return this.onStep(e.report, now, out);
      case 'leave':
        return this.departures.leave(e.nodeId, e.graceMs, e.reason, now, out);
      case 'fault': {
        const refused = this.checkStage(e.nodeId, e.stage);
        if (refused) return refused;
        const rebuilding = this.recovery.active ? this.recovery.rebuildingAt(e.stage) : null;
        if (rebuilding !== null) {
          // The node is fine; the snapshot it was to rebuild is not (shards corrupt or gone).
          const f = this.recovery.failureDetail();
          this.failRun({ nodeId: e.nodeId, stage: e.stage, detail: `${f.detail}; rebuilding stage ${e.stage} at step ${rebuilding.step} from ${rebuilding.from} failed: ${e.message}`, detectedAtMs: now }, out);
          return null;
        }
        this.nodeFailed(e.nodeId, `reported a fault: ${e.message}`, now, out);
        return null;
      }
      case 'process-exited':
        // The launcher's child is the node agent: with it the node's snapshot manager is gone.
        this.members.markSmp(e.nodeId, 'lost');
        this.nodeFailed(e.nodeId, `its process exited (${e.detail})`, now, out);
        this.recovery.fillVacancies(out);
        return null;
      case 'protection': {
        const refused = this.checkSmp(e.nodeId, e.smpAddress);
        if (refused) return refused;
        const node = this.members.live(e.nodeId)!;
        // Versions count only from the node that holds the stage now, in a run that trains.
        if (e.status.stage !== null && e.status.stage === node.stage && (this.phase === RunPhase.training || this.phase === RunPhase.starting)) {
          this.progress.recordProtection(e.status.stage, e.nodeId, e.status, out);
        } else {
          this.shards.heldBytes.set(e.nodeId, e.status.heldBytes);
        }
        this.departures.maybeMove(now, out);
        return null;
      }
      case 'smp-probed': {
        if (this.members.smpLost(e.nodeId)) return null;
        this.members.markSmp(e.nodeId, e.alive ? 'alive' : 'lost');
        out.push({
          type: 'log',
          level: e.alive ? 'info' : 'warn',
          msg: e.alive ? 'its snapshot manager still answers: waiting for its worker to come back' : 'its snapshot manager is gone too: the node is lost',
          fields: { nodeId: e.nodeId, detail: e.detail },
        });
        if (!e.alive) this.replanIfTraining(out);
        this.recovery.fillVacancies(out);
        return null;
      }
      case 'tick':
        this.onTick(now, out, e.stalledMs ?? 0);
        return null;
      case 'stop-requested':
        this.onStopRequested(e.reason, e.graceful, out);
        return null;
      case 'finish':
        if (this.phase !== RunPhase.complete) return { reason: RefusalReason.wrongState, message: `cannot finish a run in phase ${this.phase}` };
        this.stopAll('training complete', false, out);
        this.setPhase(RunPhase.finished);
        out.push({ type: 'run-finished', steps: this.commits.completedSteps });
        return null;
    }
  }

  private onRegister(e: Extract<CoordinatorEvent, { type: 'register' }>, now: number, out: Action[]): Refusal | null {
    if (e.nodeId.trim() === '') return { reason: RefusalReason.invalid, message: 'node id must not be empty' };
    if (e.address.trim() === '') return { reason: RefusalReason.invalid, message: `node ${e.nodeId} gave no address` };
    const known = this.members.live(e.nodeId);
    if (e.reattach && known && !known.commandsOpen && known.address === e.address && known.smpAddress === (e.smpAddress ?? '')) {
      // A new leader's node, attached to the old one: it keeps its place, and its lease runs.
      this.members.heartbeat(e.nodeId, now);
      out.push({ type: 'log', level: 'info', msg: 'node re-attached', fields: { nodeId: e.nodeId, stage: known.stage } });
      return null;
    }
    const duplicate = this.members.duplicate(e);
    if (duplicate) {
      out.push({ type: 'log', level: 'warn', msg: 'refused duplicate registration', fields: { nodeId: e.nodeId, address: e.address } });
      return duplicate;
    }
    if (hasEnded(this.phase)) return { reason: RefusalReason.runEnded, message: `the run has ended (${this.phase}); start a new coordinator` };
    const existing = this.members.get(e.nodeId);
    // A new snapshot manager under an old name holds none of the old one's shards.
    if (existing && existing.smpAddress !== (e.smpAddress ?? '')) this.commits.forgetHolder(e.nodeId);
    const node = this.members.register(e, now);
    out.push({ type: 'log', level: 'info', msg: 'node registered', fields: { nodeId: e.nodeId, address: e.address, pid: e.pid, snapshots: e.snapshots ?? null } });
    if (this.phase !== RunPhase.waiting && this.phase !== RunPhase.recovering) {
      this.members.move(node, NodeState.spare);
      out.push({ type: 'log', level: 'info', msg: 'node joins as a spare: every stage is taken', fields: { nodeId: e.nodeId } });
      if (this.shards.placement?.degraded) this.replanIfTraining(out);
    }
    return null;
  }

  private onTick(now: number, out: Action[], stalledMs: number): void {
    if (stalledMs > 0) {
      // The heartbeats of that time are in the sockets, read after this tick: no lease runs out for it.
      this.members.extendLeases(stalledMs);
      if (stalledMs >= this.job.leaseMs / 4) out.push({ type: 'log', level: 'warn', msg: 'the coordinator did not run for a while (a busy machine): every lease is extended by that time', fields: { stalledMs } });
    }
    for (const node of this.members.expired(now)) {
      // Frozen or cut off: whatever still answers on that machine cannot be waited for.
      this.members.markSmp(node.nodeId, 'lost');
      this.nodeFailed(node.nodeId, `its lease expired: no heartbeat for ${this.job.leaseMs} ms`, now, out, 'unresponsive');
    }
    this.departures.maybeMove(now, out);
    if (!this.recovery.active) return;
    const timeoutMs = this.job.recoveryTimeoutMs;
    const late = (slot: number) => now - this.recovery.vacantSinceMs(slot) > timeoutMs;
    if (!this.recovery.vacancies().some(([slot]) => late(slot))) {
      // A node that did not answer in time costs that node only (recovery-answers.ts). Listed
      // before any is given up: the first may start the recovery over, asking the others anew.
      for (const u of this.recovery.unanswered(now, timeoutMs)) {
        if (hasEnded(this.phase)) return;
        out.push(unansweredLog(u, slotName(this.job, u.slot), timeoutMs, now));
        // As after a lease expiry: whatever still answers on that machine is not waited for.
        this.members.markSmp(u.nodeId, 'lost');
        this.nodeFailed(u.nodeId, `it did not answer its ${u.ask === 'halt' ? 'halt' : 'assignment'} within ${timeoutMs} ms`, now, out, 'unresponsive');
      }
      if (!this.recovery.active) return;
    }
    const current = this.recovery.failureDetail();
    const vacancies = this.recovery.vacancies();
    // A slot no node took in time fails the run: nothing brings it back. So does, as a safety net,
    // a recovery held that long with no slot vacant and no answer awaited.
    const stuck = vacancies.length === 0 && this.recovery.awaitedAnswers === 0 && now - this.recovery.heldSinceMs()! > timeoutMs;
    if (vacancies.some(([slot]) => late(slot)) || stuck) {
      const waiting = vacancies.map(([stage, id]) =>
        this.members.smpLost(id) ? `stage ${stage} (no node joined to take it)` : `stage ${stage} (node ${id}'s worker did not come back)`,
      );
      const why = waiting.length > 0 ? `no node took ${waiting.join(', ')}` : 'the stages did not all become ready';
      this.failRun({ nodeId: current.nodeId, stage: current.stage, detail: `${current.detail}; recovery gave up after ${timeoutMs} ms: ${why}`, detectedAtMs: now }, out);
      return;
    }
    if (this.recovery.restarts > MAX_RECOVERY_RESTARTS) {
      const detail = `${current.detail}; recovery gave up after starting over ${this.recovery.restarts} times: each time a node was lost before every stage was ready (nodes are lost faster than a recovery completes)`;
      this.failRun({ nodeId: current.nodeId, stage: current.stage, detail, detectedAtMs: now }, out);
    }
  }

  private onStep(r: StepReport, now: number, out: Action[]): Refusal | null {
    return this.checkStage(r.nodeId, r.stage) ?? this.progress.step(r, now, out);
  }

  /** Outside a recovery (which sends plans with its assignments), re-place shards after membership changed. */
  private replanIfTraining(out: Action[]): void {
    if (this.phase === RunPhase.training && !this.recovery.active) this.shards.replan(out, true);
  }

  /** A snapshot manager may speak for a live node only, and only the node's own (`smpAddress` '': not checked). */
  private checkSmp(nodeId: string, smpAddress: string | undefined): Refusal | null {
    const node = this.members.live(nodeId);
    if (!node) return this.members.notLive(nodeId);
    if (smpAddress && node.smpAddress && smpAddress !== node.smpAddress) {
      return {
        reason: RefusalReason.duplicate,
        message: `the snapshot manager at ${smpAddress} reports for node ${nodeId}, whose own snapshot manager is at ${node.smpAddress}: two nodes use the id ${nodeId}`,
      };
    }
    return null;
  }

  private checkStage(nodeId: string, stage: number): Refusal | null {
    const slots = slotCount(this.job);
    if (!Number.isInteger(stage) || stage < 0 || stage >= slots) {
      const what = this.job.replicas > 1 ? `stage slots 0..${slots - 1} (${this.job.replicas} replicas of ${this.job.stages} stages)` : `stages 0..${slots - 1}`;
      return { reason: RefusalReason.invalid, message: `stage ${stage} is out of range: this job has ${what}` };
    }
    const node = this.members.live(nodeId);
    if (!node) return this.members.notLive(nodeId);
    if (node.stage !== stage) return { reason: RefusalReason.wrongStage, message: `node ${nodeId} holds stage ${node.stage ?? 'none'}, not stage ${stage}` };
    return null;
  }

  private onStopRequested(reason: string, graceful: boolean, out: Action[]): void {
    if (graceful && this.phase === RunPhase.training && !this.recovery.active) {
      // Only stage 0 starts steps, and only it knows which step is under way: it finishes that
      // step and marks its report `last`; the other stages follow the data. Replicas must end
      // after the same step (their all-reduce waits for each other): no stage 0 has started a
      // step past the one after the newest reported (each reports before it starts the next).
      const toStep = this.job.replicas > 1 ? this.commits.stepUnderWay + 1 : 0;
      // A replica that is out (the others train on without it) has no step to stop.
      for (const slot of slotsOfStage(this.job, 0)) {
        if (!this.commits.isParked(slot)) out.push({ type: 'send', nodeId: this.commits.stage(slot).nodeId!, command: { kind: 'limit', toStep } });
      }
      out.push({ type: 'log', level: 'info', msg: `stopping after the step under way (${reason})` });
      return;
    }
    if (hasEnded(this.phase)) return;
    this.stopAll(reason, false, out);
    this.setPhase(RunPhase.stopped);
    out.push({ type: 'run-stopped', reason });
  }

  /** `kind` names the failure in the report when nothing announced it. */
  private nodeFailed(nodeId: string, detail: string, now: number, out: Action[], kind = 'worker-crash'): void {
    const node = this.members.live(nodeId);
    if (!node) return;
    const wasPlaced = node.stage !== null;
    this.members.move(node, NodeState.lost);
    const failure: Failure = { nodeId, stage: node.stage, detail, detectedAtMs: now };
    out.push({ type: 'log', level: wasPlaced ? 'error' : 'warn', msg: 'node failed', fields: { ...failure } });
    if (node.smpAddress !== '' && !this.members.smpKnown(nodeId)) out.push({ type: 'probe-smp', nodeId, address: node.smpAddress });
    if (!wasPlaced) {
      // A spare or an unassigned node: the run goes on; shards it held are placed elsewhere.
      if (node.smpAddress === '') return;
      this.members.markSmp(nodeId, 'lost');
      this.replanIfTraining(out);
      return;
    }
    if (hasEnded(this.phase)) return;
    const stage = node.stage!;
    const underWay = this.phase === RunPhase.training || this.phase === RunPhase.recovering || (this.phase === RunPhase.starting && this.recovery.active);
    if (!underWay) {
      this.failRun(failure, out);
      return;
    }
    const cannot = unrecoverable(this.job, stage, this.commits.stages.map((s) => s.lastNorms !== null));
    if (cannot !== null) {
      this.failRun({ ...failure, detail: `${detail}; ${cannot}` }, out);
      return;
    }
    this.recovery.begin(node, detail, now, out, kind);
  }

  private failRun(failure: Failure, out: Action[]): void {
    this.recovery.abandon();
    this.failure = failure;
    this.setPhase(RunPhase.failed);
    this.stopAll(`node ${failure.nodeId}${failure.stage === null ? '' : ` (stage ${failure.stage})`} failed: ${failure.detail}`, true, out);
    out.push({ type: 'run-failed', failure });
  }

  private stopAll(reason: string, failed: boolean, out: Action[]): void {
    for (const node of this.members.all()) {
      if (!isLive(node.state)) continue;
      this.members.move(node, NodeState.stopped);
      out.push({ type: 'send', nodeId: node.nodeId, command: { kind: 'stop', reason, failed } });
    }
  }
}
