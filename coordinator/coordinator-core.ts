// The coordinator's brain: a synchronous state machine. Events (with the current time) go in;
// a reply for the RPC that carried the event and a list of actions come out. No I/O, no clock,
// no timers here: coordinator-server.ts feeds it and carries out the actions.

import type { JobOptions } from '../common/job-options.ts';
import { NodeState, isLive, transition } from './node-lifecycle.ts';

export type Command =
  | { kind: 'assign'; stage: number; numStages: number; prevAddress: string; nextAddress: string }
  | { kind: 'start'; fromStep: number; toStep: number }
  | { kind: 'limit'; toStep: number }
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
}

export type CoordinatorEvent =
  | { type: 'register'; nodeId: string; address: string; pid: number; hostname: string }
  | { type: 'heartbeat'; nodeId: string }
  | { type: 'commands-opened'; nodeId: string }
  | { type: 'commands-closed'; nodeId: string }
  | { type: 'ready'; nodeId: string; stage: number }
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

export type Action =
  | { type: 'send'; nodeId: string; command: Command }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'stage-assigned'; stage: number; nodeId: string; address: string; pid: number }
  | { type: 'training-started'; fromStep: number; toStep: number | null }
  | { type: 'step-completed'; step: number; loss: number; atMs: number }
  /** Every stage has finished the last step: read the weights, then send `finish`. */
  | { type: 'training-complete'; steps: number }
  | { type: 'run-failed'; failure: Failure }
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
}

export interface StageRecord {
  nodeId: string | null;
  /** Last completed step, -1 before the first. */
  lastStep: number;
  lastReport: StepReportEvent | null;
  /** Sums over steps after the first (warm-up excluded), for timing figures. */
  timing: { steps: number; computeMs: number; waitMs: number; stepMs: number };
}

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

  constructor(readonly job: JobOptions) {
    this.stages = Array.from({ length: job.stages }, () => ({
      nodeId: null,
      lastStep: -1,
      lastReport: null,
      timing: { steps: 0, computeMs: 0, waitMs: 0, stepMs: 0 },
    }));
    this.toStep = job.steps;
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
        this.maybeAssign(out);
        return OK;
      }
      case 'commands-closed': {
        const node = this.nodes.get(e.nodeId);
        if (node) node.commandsOpen = false;
        this.nodeFailed(e.nodeId, 'its command stream to the coordinator broke (process died or network lost)', now, out);
        return OK;
      }
      case 'ready':
        return this.onReady(e.nodeId, e.stage, out);
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
      case 'tick':
        for (const node of this.nodes.values()) {
          if (isLive(node.state) && now > node.leaseUntilMs) {
            this.nodeFailed(node.nodeId, `its lease expired: no heartbeat for ${this.job.leaseMs} ms`, now, out);
          }
        }
        return OK;
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
    });
    out.push({ type: 'log', level: 'info', msg: 'node registered', fields: { nodeId: e.nodeId, address: e.address, pid: e.pid } });
    if (this.phase !== RunPhase.waiting) {
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
    placed.forEach((node, stage) => {
      out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid });
      out.push({
        type: 'send',
        nodeId: node.nodeId,
        command: {
          kind: 'assign',
          stage,
          numStages: this.job.stages,
          prevAddress: stage > 0 ? placed[stage - 1]!.address : '',
          nextAddress: stage < this.job.stages - 1 ? placed[stage + 1]!.address : '',
        },
      });
    });
    this.phase = RunPhase.starting;
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

  private onReady(nodeId: string, stage: number, out: Action[]): Reply {
    const check = this.checkStage(nodeId, stage);
    if (!check.ok) return check;
    const node = this.nodes.get(nodeId)!;
    if (node.state !== NodeState.assigned) {
      return { ok: false, code: 'failed-precondition', message: `node ${nodeId} is ${node.state}, not waiting to become ready` };
    }
    node.state = transition(nodeId, node.state, NodeState.ready);
    const placed = this.stages.map((s) => this.nodes.get(s.nodeId ?? ''));
    if (this.phase === RunPhase.starting && placed.every((n) => n?.state === NodeState.ready)) {
      const toStep = this.toStep ?? 0;
      for (const n of placed) {
        n!.state = transition(n!.nodeId, n!.state, NodeState.training);
        out.push({ type: 'send', nodeId: n!.nodeId, command: { kind: 'start', fromStep: 0, toStep } });
      }
      this.phase = RunPhase.training;
      out.push({ type: 'training-started', fromStep: 0, toStep: this.toStep });
    }
    return OK;
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
    for (let s = before; s < after; s++) out.push({ type: 'step-completed', step: s, loss: this.losses[s]!, atMs: now });
    if (this.toStep !== null && after >= this.toStep) {
      this.phase = RunPhase.complete;
      out.push({ type: 'training-complete', steps: after });
    }
    return OK;
  }

  private onStopRequested(reason: string, graceful: boolean, out: Action[]): void {
    if (graceful && this.phase === RunPhase.training) {
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
    // Failure handling comes with the snapshot tiers; until then a lost stage ends the run.
    this.failure = failure;
    this.phase = RunPhase.failed;
    this.stopAll(`node ${nodeId} (stage ${node.stage}) failed: ${detail}`, true, out);
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
