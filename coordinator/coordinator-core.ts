// The coordinator's brain: a synchronous state machine. Events (with the current time) go in;
// a reply for the RPC that carried the event and a list of actions come out. No I/O, no clock,
// no timers here: coordinator-server.ts feeds it and carries out the actions.

import type { Injection } from '../common/inject-spec.ts';
import type { JobOptions } from '../common/job-options.ts';
import { NodeState, isLive, transition } from './node-lifecycle.ts';

export type Command =
  | {
      kind: 'assign';
      stage: number;
      numStages: number;
      prevAddress: string;
      nextAddress: string;
      epoch: number;
      /** Restore the stage's snapshot of this step before training; -1: start fresh. */
      restoreStep: number;
      injections: Injection[];
    }
  | { kind: 'start'; fromStep: number; toStep: number; restoreCheckpointStep: number }
  | { kind: 'limit'; toStep: number }
  | { kind: 'halt'; epoch: number; reason: string }
  | { kind: 'stop'; reason: string; failed: boolean };

export interface StepReportEvent {
  readonly nodeId: string;
  readonly stage: number;
  readonly step: number;
  readonly loss: number;
  readonly gradNorm: number;
  readonly computeMs: number;
  readonly waitMs: number;
  readonly stepMs: number;
  readonly tokens: number;
  /** Stage 0 starts no step after this one. */
  readonly last?: boolean;
  readonly epoch?: number;
  /** Latest committed snapshot (steps completed), -1 for none. */
  readonly snapshotStep?: number;
  readonly snapshotStallMs?: number;
  readonly snapshotCopyMs?: number;
  readonly snapshotBytes?: number;
}

export type CoordinatorEvent =
  | {
      type: 'register';
      nodeId: string;
      address: string;
      pid: number;
      hostname: string;
      /** Snapshots held by the node's snapshot manager (a restarted worker), if any. */
      snapshots?: { stage: number; steps: number[] } | null;
    }
  | { type: 'halted'; nodeId: string; stage: number; epoch: number; snapshotSteps: number[] }
  | { type: 'injection'; nodeId: string; stage: number; step: number; kind: string }
  | { type: 'heartbeat'; nodeId: string }
  | { type: 'commands-opened'; nodeId: string }
  | { type: 'commands-closed'; nodeId: string }
  | { type: 'ready'; nodeId: string; stage: number; epoch?: number; checkpointSteps?: number[] }
  | { type: 'step'; report: StepReportEvent }
  | { type: 'fault'; nodeId: string; stage: number; message: string }
  | { type: 'process-exited'; nodeId: string; detail: string }
  | { type: 'tick' }
  /** Graceful: finish the step under way, then complete. Not graceful: stop now. */
  | { type: 'stop-requested'; reason: string; graceful: boolean }
  /** The adapter has read the final weights; stop the nodes. */
  | { type: 'finish' };

export type Reply =
  | { ok: true }
  | { ok: false; code: 'already-exists' | 'not-found' | 'invalid-argument' | 'failed-precondition'; message: string };

export interface Failure {
  readonly nodeId: string;
  readonly stage: number | null;
  readonly detail: string;
  /** When the coordinator learned of it. */
  readonly detectedAtMs: number;
}

/** One failure the run survived, as the report lists it. */
export interface RecoveredFailure {
  /** The step under way when the failure happened. */
  readonly step: number;
  readonly stage: number;
  readonly nodeId: string;
  readonly kind: string;
  readonly method: 'local-snapshot';
  readonly detail: string;
  /** From the failure (where known: an injected one) to its detection; null when unknown. */
  readonly detectMs: number | null;
  /** From the failure (or its detection) until training resumed. */
  readonly recoverMs: number;
  /** Steps completed before the failure that had to be computed again. */
  readonly lostSteps: number;
  readonly restoredStep: number;
}

interface Recovery {
  epoch: number;
  readonly vacant: Map<number, string>;
  readonly snapshotSteps: Map<number, number[]>;
  readonly failure: { stage: number; nodeId: string; kind: string; detail: string; failedAtMs: number | null; detectedAtMs: number };
  readonly completedAtFailure: number;
  restoreStep: number | null;
}

export type Action =
  | { type: 'send'; nodeId: string; command: Command }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'stage-assigned'; stage: number; nodeId: string; address: string; pid: number }
  | { type: 'training-started'; fromStep: number; toStep: number | null; resumedFromCheckpoint: boolean }
  | { type: 'step-completed'; step: number; loss: number; atMs: number; commitStep: number }
  /** Every stage has finished the last step: read the weights, then send `finish`. */
  | { type: 'training-complete'; steps: number }
  | { type: 'run-failed'; failure: Failure }
  | { type: 'recovery-started'; stage: number; nodeId: string; detail: string }
  | { type: 'recovered'; failure: RecoveredFailure }
  | { type: 'run-stopped'; reason: string }
  | { type: 'run-finished'; steps: number };

export interface Outcome {
  readonly reply: Reply;
  readonly actions: Action[];
}

export const RunPhase = {
  waiting: 'waiting-for-nodes',
  starting: 'starting',
  training: 'training',
  recovering: 'recovering',
  complete: 'complete',
  finished: 'finished',
  failed: 'failed',
  stopped: 'stopped',
} as const;
export type RunPhase = (typeof RunPhase)[keyof typeof RunPhase];

export interface NodeRecord {
  readonly nodeId: string;
  readonly address: string;
  readonly pid: number;
  readonly hostname: string;
  state: NodeState;
  stage: number | null;
  commandsOpen: boolean;
  leaseUntilMs: number;
  /** Snapshots its snapshot manager holds, as it said when registering. */
  snapshots: { stage: number; steps: number[] } | null;
}

export interface StageRecord {
  nodeId: string | null;
  /** Last completed step, -1 before the first. */
  lastStep: number;
  lastReport: StepReportEvent | null;
  /** Sums over steps after the first (warm-up excluded), for timing figures. */
  timing: { steps: number; computeMs: number; waitMs: number; stepMs: number };
  /** Latest committed snapshot (steps completed it holds); -1 for none. */
  snapshotStep: number;
}

/** Snapshot figures gathered from step reports. */
export interface SnapshotStats {
  count: number;
  bytesPerStage: number[];
  stallMs: number[];
  copyMs: number[];
}

/** Samples kept for percentiles. */
const MAX_SAMPLES = 10_000;

const OK: Reply = { ok: true };

export class CoordinatorCore {
  phase: RunPhase = RunPhase.waiting;
  readonly nodes = new Map<string, NodeRecord>();
  readonly stages: StageRecord[];
  /** Loss of each completed step (from the last stage). */
  readonly losses: number[] = [];
  /** Exclusive step limit, or null to run until stopped. */
  toStep: number | null;
  failure: Failure | null = null;
  /** Increases with every recovery; traffic of older epochs is refused. */
  epoch = 0;
  recovery: Recovery | null = null;
  readonly recovered: RecoveredFailure[] = [];
  readonly snapshots: SnapshotStats = { count: 0, bytesPerStage: [], stallMs: [], copyMs: [] };
  private pendingInjections: Injection[];
  private lastInjection: { stage: number; step: number; kind: string; atMs: number } | null = null;
  /** Disk checkpoints each stage can load, as reported when it became ready. */
  private readonly checkpointSteps = new Map<number, number[]>();
  /** The step this run started from: 0, or the disk checkpoint it resumed. */
  firstStep = 0;

  constructor(readonly job: JobOptions) {
    this.stages = Array.from({ length: job.stages }, () => ({
      nodeId: null,
      lastStep: -1,
      lastReport: null,
      timing: { steps: 0, computeMs: 0, waitMs: 0, stepMs: 0 },
      snapshotStep: -1,
    }));
    this.pendingInjections = [...job.injections];
    this.snapshots.bytesPerStage = this.stages.map(() => 0);;
    this.toStep = job.steps;
  }

  /** The step every stage can restore: the minimum of their latest committed snapshots. */
  get globalCommitStep(): number {
    return Math.min(...this.stages.map((s) => s.snapshotStep));
  }

  /** Steps every stage has completed. */
  get completedSteps(): number {
    return Math.min(...this.stages.map((s) => s.lastStep)) + 1;
  }

  handle(event: CoordinatorEvent, nowMs: number): Outcome {
    const actions: Action[] = [];
    const reply = this.dispatch(event, nowMs, actions);
    return { reply, actions };
  }

  private dispatch(e: CoordinatorEvent, now: number, out: Action[]): Reply {
    switch (e.type) {
      case 'register':
        return this.onRegister(e, now, out);
      case 'heartbeat': {
        const node = this.nodes.get(e.nodeId);
        if (!node || !isLive(node.state)) return { ok: false, code: 'not-found', message: `node ${e.nodeId} is not registered` };
        node.leaseUntilMs = now + this.job.leaseMs;
        return OK;
      }
      case 'commands-opened': {
        const node = this.nodes.get(e.nodeId);
        if (!node || !isLive(node.state)) return { ok: false, code: 'not-found', message: `node ${e.nodeId} is not registered` };
        if (node.commandsOpen) return { ok: false, code: 'already-exists', message: `node ${e.nodeId} already has a command stream` };
        node.commandsOpen = true;
        if (this.phase === RunPhase.recovering) this.fillVacancies(out);
        else this.maybeAssign(out);
        return OK;
      }
      case 'commands-closed': {
        const node = this.nodes.get(e.nodeId);
        if (node) node.commandsOpen = false;
        this.nodeFailed(e.nodeId, 'its command stream to the coordinator broke (process died or network lost)', now, out);
        return OK;
      }
      case 'ready':
        return this.onReady(e.nodeId, e.stage, e.epoch ?? 0, e.checkpointSteps ?? [], now, out);
      case 'halted': {
        const check = this.checkStage(e.nodeId, e.stage);
        if (!check.ok) return check;
        if (!this.recovery || e.epoch !== this.recovery.epoch) {
          return { ok: false, code: 'failed-precondition', message: `no recovery of epoch ${e.epoch} is under way` };
        }
        this.recovery.snapshotSteps.set(e.stage, e.snapshotSteps);
        this.maybeRestore(out);
        return OK;
      }
      case 'injection': {
        const check = this.checkStage(e.nodeId, e.stage);
        if (!check.ok) return check;
        this.pendingInjections = this.pendingInjections.filter((i) => !(i.stage === e.stage && i.step === e.step && i.kind === e.kind));
        this.lastInjection = { stage: e.stage, step: e.step, kind: e.kind, atMs: now };
        out.push({ type: 'log', level: 'warn', msg: `injecting ${e.kind} on stage ${e.stage} at step ${e.step}` });
        return OK;
      }
      case 'step':
        return this.onStep(e.report, now, out);
      case 'fault': {
        const check = this.checkStage(e.nodeId, e.stage);
        if (!check.ok) return check;
        this.nodeFailed(e.nodeId, `reported a fault: ${e.message}`, now, out);
        return OK;
      }
      case 'process-exited':
        this.nodeFailed(e.nodeId, `its process exited (${e.detail})`, now, out);
        return OK;
      case 'tick': {
        for (const node of this.nodes.values()) {
          if (isLive(node.state) && now > node.leaseUntilMs) {
            this.nodeFailed(node.nodeId, `its lease expired: no heartbeat for ${this.job.leaseMs} ms`, now, out);
          }
        }
        const r = this.recovery;
        if (r && now - r.failure.detectedAtMs > this.job.recoveryTimeoutMs) {
          const waiting = [...r.vacant].map(([stage, id]) => `stage ${stage} (node ${id}'s worker did not come back)`);
          const why = waiting.length > 0 ? `no node took ${waiting.join(', ')}` : 'the stages did not all become ready';
          this.failRun(
            { nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; recovery gave up after ${this.job.recoveryTimeoutMs} ms: ${why}`, detectedAtMs: now },
            out,
          );
        }
        return OK;
      }
      case 'stop-requested':
        this.onStopRequested(e.reason, e.graceful, out);
        return OK;
      case 'finish':
        if (this.phase !== RunPhase.complete) {
          return { ok: false, code: 'failed-precondition', message: `cannot finish a run in phase ${this.phase}` };
        }
        this.stopAll('training complete', false, out);
        this.phase = RunPhase.finished;
        out.push({ type: 'run-finished', steps: this.completedSteps });
        return OK;
    }
  }

  private onRegister(e: Extract<CoordinatorEvent, { type: 'register' }>, now: number, out: Action[]): Reply {
    if (e.nodeId.trim() === '') return { ok: false, code: 'invalid-argument', message: 'node id must not be empty' };
    if (e.address.trim() === '') return { ok: false, code: 'invalid-argument', message: `node ${e.nodeId} gave no address` };
    const existing = this.nodes.get(e.nodeId);
    if (existing && isLive(existing.state)) {
      out.push({ type: 'log', level: 'warn', msg: 'refused duplicate registration', fields: { nodeId: e.nodeId, address: e.address } });
      return {
        ok: false,
        code: 'already-exists',
        message: `node id ${e.nodeId} is already registered by a live node at ${existing.address}; give each node a unique --node-id`,
      };
    }
    if (this.phase === RunPhase.finished || this.phase === RunPhase.failed || this.phase === RunPhase.stopped) {
      return { ok: false, code: 'failed-precondition', message: `the run has ended (${this.phase}); start a new coordinator` };
    }
    this.nodes.set(e.nodeId, {
      nodeId: e.nodeId,
      address: e.address,
      pid: e.pid,
      hostname: e.hostname,
      state: NodeState.registered,
      stage: null,
      commandsOpen: false,
      leaseUntilMs: now + this.job.leaseMs,
      snapshots: e.snapshots ?? null,
    });
    out.push({ type: 'log', level: 'info', msg: 'node registered', fields: { nodeId: e.nodeId, address: e.address, pid: e.pid, snapshots: e.snapshots ?? null } });
    if (this.phase !== RunPhase.waiting && this.phase !== RunPhase.recovering) {
      const node = this.nodes.get(e.nodeId)!;
      node.state = transition(node.nodeId, node.state, NodeState.spare);
      out.push({ type: 'log', level: 'info', msg: 'node joins as a spare: every stage is taken', fields: { nodeId: e.nodeId } });
    }
    return OK;
  }

  /** Once enough nodes can receive commands, place stage i on the i-th of them by node id. */
  private maybeAssign(out: Action[]): void {
    if (this.phase !== RunPhase.waiting) return;
    const candidates = [...this.nodes.values()]
      .filter((n) => n.state === NodeState.registered && n.commandsOpen)
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }));
    if (candidates.length < this.job.stages) {
      out.push({
        type: 'log',
        level: 'info',
        msg: `waiting for nodes: ${candidates.length} of ${this.job.stages} connected`,
      });
      return;
    }
    const placed = candidates.slice(0, this.job.stages);
    placed.forEach((node, stage) => {
      node.state = transition(node.nodeId, node.state, NodeState.assigned);
      node.stage = stage;
      this.stages[stage]!.nodeId = node.nodeId;
    });
    for (const node of candidates.slice(this.job.stages)) node.state = transition(node.nodeId, node.state, NodeState.spare);
    placed.forEach((node, stage) => out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid }));
    this.sendAssignments(placed, -1, out);
    this.phase = RunPhase.starting;
  }

  /** Assigns stage i to nodes[i], wiring each to its neighbours, in the current epoch. */
  private sendAssignments(nodes: readonly NodeRecord[], restoreStep: number, out: Action[]): void {
    nodes.forEach((node, stage) => {
      out.push({
        type: 'send',
        nodeId: node.nodeId,
        command: {
          kind: 'assign',
          stage,
          numStages: this.job.stages,
          prevAddress: stage > 0 ? nodes[stage - 1]!.address : '',
          nextAddress: stage < this.job.stages - 1 ? nodes[stage + 1]!.address : '',
          epoch: this.epoch,
          restoreStep,
          injections: this.pendingInjections.filter((i) => i.stage === stage),
        },
      });
    });
  }

  private checkStage(nodeId: string, stage: number): Reply {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.job.stages) {
      return { ok: false, code: 'invalid-argument', message: `stage ${stage} is out of range: this job has stages 0..${this.job.stages - 1}` };
    }
    const node = this.nodes.get(nodeId);
    if (!node || !isLive(node.state)) return { ok: false, code: 'not-found', message: `node ${nodeId} is not registered` };
    if (node.stage !== stage) {
      return { ok: false, code: 'failed-precondition', message: `node ${nodeId} holds stage ${node.stage ?? 'none'}, not stage ${stage}` };
    }
    return OK;
  }

  private onReady(nodeId: string, stage: number, epoch: number, checkpointSteps: number[], now: number, out: Action[]): Reply {
    const check = this.checkStage(nodeId, stage);
    if (!check.ok) return check;
    if (epoch !== this.epoch) return { ok: false, code: 'failed-precondition', message: `ready for epoch ${epoch}, but the run is in epoch ${this.epoch}` };
    const node = this.nodes.get(nodeId)!;
    if (node.state !== NodeState.assigned) {
      return { ok: false, code: 'failed-precondition', message: `node ${nodeId} is ${node.state}, not waiting to become ready` };
    }
    node.state = transition(nodeId, node.state, NodeState.ready);
    this.checkpointSteps.set(stage, checkpointSteps);
    const placed = this.stages.map((s) => this.nodes.get(s.nodeId ?? ''));
    if (this.phase === RunPhase.starting && placed.every((n) => n?.state === NodeState.ready)) {
      const toStep = this.toStep ?? 0;
      let restoreCheckpointStep = -1;
      if (this.epoch === 0 && this.completedSteps === 0 && this.job.checkpointDir) {
        const resume = this.resumeStep();
        if (resume !== null) {
          if (this.toStep !== null && resume >= this.toStep) {
            this.failRun({ nodeId, stage, detail: `the disk checkpoints already reach step ${resume}, at or past --steps ${this.toStep}: nothing to train`, detectedAtMs: now }, out);
            return OK;
          }
          restoreCheckpointStep = resume;
          this.firstStep = resume;
          for (const s of this.stages) s.lastStep = resume - 1;
          out.push({ type: 'log', level: 'info', msg: `resuming from the disk checkpoint of step ${resume}` });
        }
      }
      const fromStep = this.completedSteps;
      for (const n of placed) {
        n!.state = transition(n!.nodeId, n!.state, NodeState.training);
        out.push({ type: 'send', nodeId: n!.nodeId, command: { kind: 'start', fromStep, toStep, restoreCheckpointStep } });
      }
      this.phase = RunPhase.training;
      const r = this.recovery;
      if (r) {
        const f = r.failure;
        const failure: RecoveredFailure = {
          step: r.completedAtFailure,
          stage: f.stage,
          nodeId: f.nodeId,
          kind: f.kind,
          method: 'local-snapshot',
          detail: f.detail,
          detectMs: f.failedAtMs === null ? null : f.detectedAtMs - f.failedAtMs,
          recoverMs: now - (f.failedAtMs ?? f.detectedAtMs),
          lostSteps: r.completedAtFailure - fromStep,
          restoredStep: fromStep,
        };
        this.recovered.push(failure);
        this.recovery = null;
        out.push({ type: 'recovered', failure });
        out.push({ type: 'log', level: 'info', msg: 'recovered', fields: { ...failure } });
      } else {
        out.push({ type: 'training-started', fromStep, toStep: this.toStep, resumedFromCheckpoint: restoreCheckpointStep >= 0 });
      }
    }
    return OK;
  }

  /** The newest disk checkpoint step every stage holds, or null. */
  private resumeStep(): number | null {
    const lists = this.stages.map((_, s) => new Set(this.checkpointSteps.get(s) ?? []));
    const common = [...lists[0]!].filter((step) => lists.every((l) => l.has(step)));
    return common.length > 0 ? Math.max(...common) : null;
  }

  /** Places a registered node with an open command stream on each vacant stage. */
  private fillVacancies(out: Action[]): void {
    const r = this.recovery;
    if (!r) return;
    for (const [stage, formerId] of [...r.vacant]) {
      // Prefer the node that held the stage (its worker restarted beside its snapshots).
      const candidates = [...this.nodes.values()].filter(
        (n) => n.commandsOpen && (n.state === NodeState.registered || n.state === NodeState.spare),
      );
      const node = candidates.find((n) => n.nodeId === formerId) ?? candidates.find((n) => n.snapshots?.stage === stage) ?? candidates[0];
      if (!node) continue;
      r.vacant.delete(stage);
      node.stage = stage;
      node.state = transition(node.nodeId, node.state, NodeState.recovering);
      this.stages[stage]!.nodeId = node.nodeId;
      r.snapshotSteps.set(stage, node.snapshots?.stage === stage ? node.snapshots.steps : []);
      out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid });
    }
    this.maybeRestore(out);
  }

  /** Once every stage has a node and a list of snapshots, roll all back to the newest common step. */
  private maybeRestore(out: Action[]): void {
    const r = this.recovery;
    if (!r || r.restoreStep !== null || r.vacant.size > 0 || r.snapshotSteps.size < this.job.stages) return;
    const lists = this.stages.map((_, s) => new Set(r.snapshotSteps.get(s) ?? []));
    const common = [...lists[0]!].filter((step) => lists.every((l) => l.has(step)));
    if (common.length === 0) {
      const have = this.stages.map((_, s) => `stage ${s}: [${[...lists[s]!].join(', ')}]`).join('; ');
      this.failRun({ nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; no snapshot step is held by every stage (${have})`, detectedAtMs: r.failure.detectedAtMs }, out);
      return;
    }
    const step = Math.max(...common);
    r.restoreStep = step;
    for (const s of this.stages) {
      s.lastStep = step - 1;
      s.snapshotStep = step;
    }
    this.losses.length = step;
    const nodes = this.stages.map((s) => this.nodes.get(s.nodeId!)!);
    for (const node of nodes) node.state = transition(node.nodeId, node.state, NodeState.assigned);
    this.sendAssignments(nodes, step, out);
    this.phase = RunPhase.starting;
    out.push({ type: 'log', level: 'info', msg: `restoring every stage to step ${step} (epoch ${this.epoch})` });
  }

  private onStep(r: StepReportEvent, now: number, out: Action[]): Reply {
    const check = this.checkStage(r.nodeId, r.stage);
    if (!check.ok) return check;
    const stage = this.stages[r.stage]!;
    if (!Number.isInteger(r.step) || r.step !== stage.lastStep + 1) {
      return {
        ok: false,
        code: 'failed-precondition',
        message: `stage ${r.stage} reported step ${r.step}, but its next step is ${stage.lastStep + 1}`,
      };
    }
    if (this.phase !== RunPhase.training) {
      return { ok: false, code: 'failed-precondition', message: `no training is under way (phase ${this.phase})` };
    }
    if ((r.epoch ?? 0) !== this.epoch) {
      return { ok: false, code: 'failed-precondition', message: `step report of epoch ${r.epoch ?? 0}, but the run is in epoch ${this.epoch}` };
    }
    if (r.snapshotStep !== undefined && r.snapshotStep > stage.snapshotStep) {
      stage.snapshotStep = r.snapshotStep;
      this.snapshots.count += 1;
      this.snapshots.bytesPerStage[r.stage] = r.snapshotBytes ?? 0;
      if (this.snapshots.stallMs.length < MAX_SAMPLES) {
        this.snapshots.stallMs.push(r.snapshotStallMs ?? 0);
        this.snapshots.copyMs.push(r.snapshotCopyMs ?? 0);
      }
    }
    const before = this.completedSteps;
    stage.lastStep = r.step;
    stage.lastReport = r;
    if (r.step > 0) {
      stage.timing.steps += 1;
      stage.timing.computeMs += r.computeMs;
      stage.timing.waitMs += r.waitMs;
      stage.timing.stepMs += r.stepMs;
    }
    if (r.stage === this.job.stages - 1) this.losses[r.step] = r.loss;
    if (r.stage === 0 && r.last && (this.toStep === null || r.step + 1 < this.toStep)) {
      this.toStep = r.step + 1;
      out.push({ type: 'log', level: 'info', msg: `the run ends after step ${r.step}` });
    }
    const after = this.completedSteps;
    for (let s = before; s < after; s++) {
      out.push({ type: 'step-completed', step: s, loss: this.losses[s]!, atMs: now, commitStep: this.globalCommitStep });
    }
    if (this.toStep !== null && after >= this.toStep) {
      this.phase = RunPhase.complete;
      out.push({ type: 'training-complete', steps: after });
    }
    return OK;
  }

  private onStopRequested(reason: string, graceful: boolean, out: Action[]): void {
    if (graceful && this.phase === RunPhase.training && this.recovery === null) {
      // Only stage 0 starts steps, and only it knows which step is under way: it finishes that
      // step and marks its report `last`; the other stages follow the data.
      out.push({ type: 'send', nodeId: this.stages[0]!.nodeId!, command: { kind: 'limit', toStep: 0 } });
      out.push({ type: 'log', level: 'info', msg: `stopping after the step under way (${reason})` });
      return;
    }
    if (this.phase === RunPhase.finished || this.phase === RunPhase.failed || this.phase === RunPhase.stopped) return;
    this.stopAll(reason, false, out);
    this.phase = RunPhase.stopped;
    out.push({ type: 'run-stopped', reason });
  }

  private nodeFailed(nodeId: string, detail: string, now: number, out: Action[]): void {
    const node = this.nodes.get(nodeId);
    if (!node || !isLive(node.state)) return;
    const wasPlaced = node.stage !== null;
    node.state = transition(nodeId, node.state, NodeState.lost);
    const failure: Failure = { nodeId, stage: node.stage, detail, detectedAtMs: now };
    out.push({ type: 'log', level: wasPlaced ? 'error' : 'warn', msg: 'node failed', fields: { ...failure } });
    if (!wasPlaced) return; // a spare or an unassigned node: the run goes on
    if (this.phase === RunPhase.finished || this.phase === RunPhase.failed || this.phase === RunPhase.stopped) return;
    const recoverable =
      this.job.snapshotEvery > 0 &&
      (this.phase === RunPhase.training || this.phase === RunPhase.recovering || (this.phase === RunPhase.starting && this.recovery !== null));
    if (!recoverable) {
      this.failRun(failure, out);
      return;
    }
    this.beginRecovery(node, detail, now, out);
  }

  private beginRecovery(node: NodeRecord, detail: string, now: number, out: Action[]): void {
    const stage = node.stage!;
    node.stage = null;
    this.stages[stage]!.nodeId = null;
    const injected = this.lastInjection?.stage === stage ? this.lastInjection : null;
    this.lastInjection = null;
    if (!this.recovery) {
      this.epoch += 1;
      this.recovery = {
        epoch: this.epoch,
        vacant: new Map(),
        snapshotSteps: new Map(),
        failure: { stage, nodeId: node.nodeId, kind: injected?.kind ?? 'worker-crash', detail, failedAtMs: injected?.atMs ?? null, detectedAtMs: now },
        completedAtFailure: Math.max(...this.stages.map((s) => s.lastStep)) + 1,
        restoreStep: null,
      };
      if (this.phase === RunPhase.training) {
        for (const n of this.nodes.values()) {
          if (n.stage === null || !isLive(n.state) || n.state === NodeState.recovering) continue;
          n.state = transition(n.nodeId, n.state, NodeState.recovering);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch: this.epoch, reason: `stage ${stage} failed` } });
        }
      }
    } else {
      // Another failure while recovering: start the restore over, with every survivor halted
      // again in a new epoch (some may have been restoring already).
      this.recovery.snapshotSteps.delete(stage);
      if (this.recovery.restoreStep !== null) {
        this.epoch += 1;
        this.recovery.epoch = this.epoch;
        this.recovery.restoreStep = null;
        for (const n of this.nodes.values()) {
          if (n.stage === null || !isLive(n.state)) continue;
          if (n.state !== NodeState.recovering) n.state = transition(n.nodeId, n.state, NodeState.recovering);
          this.recovery.snapshotSteps.delete(n.stage);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch: this.epoch, reason: `stage ${stage} failed` } });
        }
      }
    }
    this.phase = RunPhase.recovering;
    this.recovery.vacant.set(stage, node.nodeId);
    out.push({ type: 'recovery-started', stage, nodeId: node.nodeId, detail });
    out.push({ type: 'log', level: 'warn', msg: `recovering stage ${stage} from snapshots`, fields: { nodeId: node.nodeId, detail } });
    this.fillVacancies(out);
  }

  private failRun(failure: Failure, out: Action[]): void {
    this.recovery = null;
    this.failure = failure;
    this.phase = RunPhase.failed;
    this.stopAll(`node ${failure.nodeId}${failure.stage === null ? '' : ` (stage ${failure.stage})`} failed: ${failure.detail}`, true, out);
    out.push({ type: 'run-failed', failure });
  }

  private stopAll(reason: string, failed: boolean, out: Action[]): void {
    for (const node of this.nodes.values()) {
      if (!isLive(node.state)) continue;
      node.state = transition(node.nodeId, node.state, NodeState.stopped);
      out.push({ type: 'send', nodeId: node.nodeId, command: { kind: 'stop', reason, failed } });
    }
  }
}
