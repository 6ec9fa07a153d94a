// The coordinator's brain: a synchronous state machine. Events (with the current time) go in;
// a reply for the RPC that carried the event and a list of actions come out. No I/O, no clock,
// no timers here: coordinator-server.ts feeds it and carries out the actions.

import type { Injection } from '../domain/inject-spec.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { NodeState, isLive, transition } from './node-lifecycle.ts';
import { checkfreeWeights, type CheckfreeOrder } from '../domain/checkfree.ts';
import { swapPartner } from '../domain/pipeline-route.ts';
import {
  describeCode,
  placeShards,
  resolveErasureCode,
  type ErasureCode,
  type Placement,
  type PlacedNode,
  type ProtectedVersion,
  type ProtectionPlan,
  type ProtectionStatus,
  type RebuildOrder,
} from '../domain/erasure-protection.ts';

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
      /** Where the stage's snapshot manager places erasure shards; null: no erasure coding. */
      plan: ProtectionPlan | null;
      /** Rebuild `restoreStep` from peers' shards first (the node took over a lost stage). */
      rebuild: RebuildOrder | null;
      /** Rebuild the stage from its neighbours' weights (CheckFree) instead of restoring. */
      checkfree?: CheckfreeOrder | null;
    }
  | { kind: 'protect'; plan: ProtectionPlan | null }
  /** Cause this failure now (`--inject` kinds the coordinator fires itself: node-kill, freeze, preempt). */
  | { kind: 'inject'; injection: Injection }
  | { kind: 'start'; fromStep: number; toStep: number; restoreCheckpointStep: number; fromScratch?: boolean }
  /** To stage 0: start no step from `toStep` on; with `pause` the run does not end there. */
  | { kind: 'limit'; toStep: number; pause?: boolean }
  | { kind: 'halt'; epoch: number; reason: string }
  | { kind: 'stop'; reason: string; failed: boolean };

export interface StepReportEvent {
  readonly nodeId: string;
  readonly stage: number;
  readonly step: number;
  readonly loss: number;
  readonly gradNorm: number;
  /** After per-stage clipping: what CheckFree weighs a neighbour by. */
  readonly clippedGradNorm?: number;
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
  /** The node's snapshot manager on the erasure protection of this stage's snapshots. */
  readonly protection?: ProtectionStatus | null;
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
      /** Its snapshot manager's address; empty or absent: none. */
      smpAddress?: string;
      /** Process ids of its snapshot manager and node agent; 0 or absent: none or unknown. */
      smpPid?: number;
      agentPid?: number;
    }
  /** The node goes away within `graceMs` (a preemption notice): move its stage first. */
  | { type: 'leave'; nodeId: string; graceMs: number; reason: string }
  /** A node's snapshot manager on the protection of its stage's snapshots. */
  | { type: 'protection'; nodeId: string; status: ProtectionStatus }
  /** Whether a failed node's snapshot manager still answers (the adapter probes it). */
  | { type: 'smp-probed'; nodeId: string; alive: boolean; detail: string }
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
  readonly method: RecoveryMethod;
  readonly detail: string;
  /** From the failure (where known: an injected one) to its detection; null when unknown. */
  readonly detectMs: number | null;
  /** When the coordinator detected it (its clock, ms since the epoch): tools that caused the failure work out the detection time from it. */
  readonly detectedAtMs: number;
  /** From the failure (or its detection) until training resumed. */
  readonly recoverMs: number;
  /**
   * A planned departure (preemption notice): from the notice until the stage could be moved (the
   * pause at a step boundary and the erasure coding of its newest snapshot); `recoverMs` counts
   * from the move. Null for failures without notice.
   */
  readonly handoverMs?: number | null;
  /** Steps completed before the failure that had to be computed again. */
  readonly lostSteps: number;
  readonly restoredStep: number;
  /**
   * From the failure (or its detection) until the step under way then was complete again: all
   * the failure cost, measured (detection, restore, warm-up and the lost steps computed again,
   * plus that step itself). Null until then.
   */
  caughtUpMs: number | null;
}

/** How a failure was recovered: the cheapest lossless tier that was available. */
export type RecoveryMethod = 'local-snapshot' | 'erasure-rebuild' | 'checkfree' | 'checkfree-plus' | 'disk-checkpoint';

interface FailureInfo {
  readonly stage: number;
  readonly nodeId: string;
  readonly kind: string;
  readonly detail: string;
  readonly failedAtMs: number | null;
  readonly detectedAtMs: number;
  readonly handoverMs: number | null;
}

/** A node leaving with notice, until its stage is moved. */
interface Departure {
  readonly nodeId: string;
  readonly stage: number;
  readonly reason: string;
  readonly noticeAtMs: number;
  /** The node is gone by then: move the stage before, whatever its state. */
  readonly deadlineMs: number;
  /** Stage 0 starts no step from this one on, until the move. */
  readonly pauseAt: number;
}

/** How long a node that has registered may take to send its first heartbeat. */
export const FIRST_HEARTBEAT_GRACE_MS = 15_000;

/** How long before a departing node's deadline its stage is moved even if not yet protected. */
export const DEPARTURE_MARGIN_MS = 2000;

interface Recovery {
  epoch: number;
  readonly vacant: Map<number, string>;
  /** Stages placed on a node without their snapshot: rebuilt from shards at the restore step. */
  readonly rebuild: Map<number, Map<number, ProtectedVersion>>;
  /** No snapshot step was common to all stages: every stage goes back to a disk checkpoint. */
  toDisk: boolean;
  /** Why the snapshot tiers could not be used, for the log and the report. */
  fallbackReason: string | null;
  readonly snapshotSteps: Map<number, number[]>;
  readonly failure: FailureInfo;
  /** Further failures during the same recovery (several nodes lost at once). */
  readonly others: FailureInfo[];
  /** Stages rebuilt from erasure shards. */
  readonly rebuilt: Set<number>;
  /** Stages rebuilt by CheckFree (the others kept their weights). */
  readonly checkfree: Set<number>;
  readonly completedAtFailure: number;
  restoreStep: number | null;
  /** Vacant stages for which the run has said it waits for a node. */
  readonly waitingSaid: Set<number>;
}

export type Action =
  | { type: 'send'; nodeId: string; command: Command }
  | { type: 'log'; level: 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  /** A line for the user's progress output too (the adapter also logs it). */
  | { type: 'notice'; level: 'info' | 'warn' | 'error'; msg: string }
  | { type: 'stage-assigned'; stage: number; nodeId: string; address: string; pid: number }
  /** `atMs`: the origin of every "seconds since training started" (report, dashboard). */
  | { type: 'training-started'; fromStep: number; toStep: number | null; resumedFromCheckpoint: boolean; atMs: number }
  | { type: 'step-completed'; step: number; loss: number; atMs: number; commitStep: number }
  /** Every stage has finished the last step: read the weights, then send `finish`. */
  | { type: 'training-complete'; steps: number }
  | { type: 'run-failed'; failure: Failure }
  | { type: 'recovery-started'; stage: number; nodeId: string; detail: string }
  | { type: 'recovered'; failure: RecoveredFailure }
  /** A stage's snapshot manager committed a newer snapshot (as its step report says). */
  | { type: 'snapshot-committed'; snapshot: SnapshotCommit }
  /** Ask the failed node's snapshot manager whether it is still there; answer with `smp-probed`. */
  | { type: 'probe-smp'; nodeId: string; address: string }
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
  /** Its snapshot manager's address, or '' when it runs none. */
  readonly smpAddress: string;
  /** Process ids of its snapshot manager and node agent; 0: none or unknown. */
  readonly smpPid: number;
  readonly agentPid: number;
}

/** A node as Coordinator.Status lists it (its nodes_json entries). */
export interface NodeSummary {
  readonly nodeId: string;
  readonly state: NodeState;
  readonly stage: number | null;
  /** The worker's pid (0: unknown). */
  readonly pid: number;
  readonly smpPid: number;
  readonly agentPid: number;
  readonly hostname: string;
  readonly address: string;
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
  /** Versions of its snapshot whose shards all reached their holders, by step. */
  protectedVersions: Map<number, ProtectedVersion>;
  /** The snapshot manager's last status, from the stage's step reports. */
  protection: ProtectionStatus | null;
}

/** Erasure coding in this run, once the code is chosen at the first assignment. */
export interface ErasureState {
  code: ErasureCode | null;
  placement: Placement | null;
  /** Why there is no code (`--ec off`, too few nodes, snapshots off). */
  disabledReason: string | null;
  /** Encode times (ms) reported by the stages' snapshot managers. */
  readonly encodeMs: number[];
  /** Bytes held for other nodes' stages, by node id, as their managers last said. */
  readonly heldBytes: Map<string, number>;
}

/** Snapshot figures gathered from step reports. */
export interface SnapshotStats {
  count: number;
  bytesPerStage: number[];
  stallMs: number[];
  copyMs: number[];
}

/** One snapshot a stage reported committed. */
export interface SnapshotCommit {
  readonly stage: number;
  /** Steps completed that it holds. */
  readonly step: number;
  /** When the step report that said so arrived. */
  readonly atMs: number;
  readonly stallMs: number;
  readonly copyMs: number;
  readonly bytes: number;
}

/** Samples kept for percentiles. */
const MAX_SAMPLES = 10_000;
/** Step completions kept for the report's timeline. */
const MAX_TIMELINE = 100_000;

const OK: Reply = { ok: true };

/** Injection kinds the coordinator sends to a node; the others the node's worker carries out itself. */
const COORDINATOR_FIRED: ReadonlySet<string> = new Set(['node-kill', 'freeze', 'preempt']);

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
  /** Every snapshot commit in order (up to MAX_TIMELINE): snapshot frequency and latency over time. */
  readonly snapshotLog: SnapshotCommit[] = [];
  private pendingInjections: Injection[];
  /** Injected failures by stage, until the coordinator learns of the failure. */
  private readonly injected = new Map<number, { step: number; kind: string; atMs: number; handoverMs?: number }>();
  /** Disk checkpoints each stage can load, as reported when it became ready. */
  private readonly checkpointSteps = new Map<number, number[]>();
  /** The step this run started from: 0, or the disk checkpoint it resumed. */
  firstStep = 0;
  /** What is known of failed nodes' snapshot managers: alive (the worker comes back) or lost. */
  private readonly smpState = new Map<string, 'alive' | 'lost'>();
  /** Each recovery's epoch and the step it rolled back to: later steps of older epochs are void. */
  private readonly restorePoints: { epoch: number; step: number }[] = [];
  readonly erasure: ErasureState = { code: null, placement: null, disabledReason: null, encodeMs: [], heldBytes: new Map() };
  /** Every step completion in order, recomputed steps included: loss against wall-clock time. */
  readonly timeline: { atMs: number; step: number; loss: number | null }[] = [];
  /** When each step was first completed (a step computed again after a rollback keeps its first time). */
  readonly stepDoneAtMs: number[] = [];
  /** When each recovered failure happened (or was detected), for caughtUpMs. */
  private readonly failedAt = new Map<RecoveredFailure, number>();
  /** Newest step every stage holds locally and erasure-coded on peers; -1: none yet. */
  protectedCommitStep = -1;
  /** Nodes leaving with notice whose stage has not moved yet, by node id. */
  private readonly departures = new Map<string, Departure>();

  constructor(readonly job: JobOptions) {
    this.stages = Array.from({ length: job.stages }, () => ({
      nodeId: null,
      lastStep: -1,
      lastReport: null,
      timing: { steps: 0, computeMs: 0, waitMs: 0, stepMs: 0 },
      snapshotStep: -1,
      protectedVersions: new Map(),
      protection: null,
    }));
    this.pendingInjections = [...job.injections];
    this.snapshots.bytesPerStage = this.stages.map(() => 0);
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
        // A node told to stop may beat once more before the Stop reaches it: no lease to renew, no fencing.
        if (node?.state === NodeState.stopped) return OK;
        if (!node || !isLive(node.state)) return this.notLive(e.nodeId);
        node.leaseUntilMs = now + this.job.leaseMs;
        return OK;
      }
      case 'commands-opened': {
        const node = this.nodes.get(e.nodeId);
        if (!node || !isLive(node.state)) return this.notLive(e.nodeId);
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
        this.injected.set(e.stage, { step: e.step, kind: e.kind, atMs: now });
        out.push({ type: 'log', level: 'warn', msg: `injecting ${e.kind} on stage ${e.stage} at step ${e.step}` });
        return OK;
      }
      case 'step':
        return this.onStep(e.report, now, out);
      case 'leave':
        return this.onLeave(e.nodeId, e.graceMs, e.reason, now, out);
      case 'fault': {
        const check = this.checkStage(e.nodeId, e.stage);
        if (!check.ok) return check;
        const r = this.recovery;
        if (r && r.restoreStep !== null && r.rebuild.get(e.stage)?.has(r.restoreStep)) {
          // The node is fine; the snapshot it was to rebuild is not (shards corrupt or gone).
          this.failRun({ nodeId: e.nodeId, stage: e.stage, detail: `${r.failure.detail}; rebuilding stage ${e.stage} at step ${r.restoreStep} from erasure shards failed: ${e.message}`, detectedAtMs: now }, out);
          return OK;
        }
        this.nodeFailed(e.nodeId, `reported a fault: ${e.message}`, now, out);
        return OK;
      }
      case 'process-exited':
        // The launcher's child is the node agent: with it the node's snapshot manager is gone.
        this.smpState.set(e.nodeId, 'lost');
        this.nodeFailed(e.nodeId, `its process exited (${e.detail})`, now, out);
        if (this.recovery) this.fillVacancies(out);
        return OK;
      case 'protection': {
        const node = this.nodes.get(e.nodeId);
        if (!node || !isLive(node.state)) return this.notLive(e.nodeId);
        // Versions count only from the node that holds the stage now, in a run that trains.
        if (e.status.stage !== null && e.status.stage === node.stage && (this.phase === RunPhase.training || this.phase === RunPhase.starting)) {
          this.updateProtection(e.status.stage, e.nodeId, e.status);
        } else {
          this.erasure.heldBytes.set(e.nodeId, e.status.heldBytes);
        }
        this.maybeMoveDepartures(now, out);
        return OK;
      }
      case 'smp-probed': {
        if (this.smpState.get(e.nodeId) === 'lost') return OK;
        this.smpState.set(e.nodeId, e.alive ? 'alive' : 'lost');
        out.push({
          type: 'log',
          level: e.alive ? 'info' : 'warn',
          msg: e.alive ? 'its snapshot manager still answers: waiting for its worker to come back' : 'its snapshot manager is gone too: the node is lost',
          fields: { nodeId: e.nodeId, detail: e.detail },
        });
        if (!e.alive) this.replanIfTraining(out);
        if (this.recovery) this.fillVacancies(out);
        return OK;
      }
      case 'tick': {
        for (const node of this.nodes.values()) {
          if (isLive(node.state) && now > node.leaseUntilMs) {
            // Frozen or cut off: whatever still answers on that machine cannot be waited for.
            this.smpState.set(node.nodeId, 'lost');
            this.nodeFailed(node.nodeId, `its lease expired: no heartbeat for ${this.job.leaseMs} ms`, now, out, 'unresponsive');
          }
        }
        this.maybeMoveDepartures(now, out);
        const r = this.recovery;
        if (r && now - r.failure.detectedAtMs > this.job.recoveryTimeoutMs) {
          const waiting = [...r.vacant].map(([stage, id]) =>
            this.smpState.get(id) === 'lost' ? `stage ${stage} (no node joined to take it)` : `stage ${stage} (node ${id}'s worker did not come back)`,
          );
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
    if (existing && existing.smpAddress !== (e.smpAddress ?? '')) {
      // A new snapshot manager under an old name holds none of the old one's shards.
      for (const st of this.stages) {
        for (const [step, v] of st.protectedVersions) st.protectedVersions.set(step, { ...v, holders: v.holders.map((h) => (h === e.nodeId ? '' : h)) });
      }
    }
    if (existing) this.smpState.delete(e.nodeId);
    this.nodes.set(e.nodeId, {
      nodeId: e.nodeId,
      smpAddress: e.smpAddress ?? '',
      smpPid: e.smpPid ?? 0,
      agentPid: e.agentPid ?? 0,
      address: e.address,
      pid: e.pid,
      hostname: e.hostname,
      state: NodeState.registered,
      stage: null,
      commandsOpen: false,
      // Until its first heartbeat, a node is starting (its heartbeat thread loads gRPC, on a
      // machine where every other node may be starting too): give it longer than the lease.
      leaseUntilMs: now + Math.max(this.job.leaseMs, FIRST_HEARTBEAT_GRACE_MS),
      snapshots: e.snapshots ?? null,
    });
    out.push({ type: 'log', level: 'info', msg: 'node registered', fields: { nodeId: e.nodeId, address: e.address, pid: e.pid, snapshots: e.snapshots ?? null } });
    if (this.phase !== RunPhase.waiting && this.phase !== RunPhase.recovering) {
      const node = this.nodes.get(e.nodeId)!;
      node.state = transition(node.nodeId, node.state, NodeState.spare);
      out.push({ type: 'log', level: 'info', msg: 'node joins as a spare: every stage is taken', fields: { nodeId: e.nodeId } });
      if (this.erasure.placement?.degraded) this.replanIfTraining(out);
    }
    return OK;
  }

  /** Once enough nodes can receive commands, place stage i on the i-th of them by node id. */
  private maybeAssign(out: Action[]): void {
    if (this.phase !== RunPhase.waiting) return;
    const candidates = [...this.nodes.values()]
      .filter((n) => n.state === NodeState.registered && n.commandsOpen)
      .sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }));
    const wanted = this.job.stages + this.job.spares;
    if (candidates.length < wanted) {
      out.push({
        type: 'log',
        level: 'info',
        msg: `waiting for nodes: ${candidates.length} of ${wanted} connected${this.job.spares > 0 ? ` (${this.job.stages} stages + ${this.job.spares} spares)` : ''}`,
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
    this.chooseErasureCode(candidates, out);
    this.replan(out, false);
    this.sendAssignments(placed, -1, out);
    this.phase = RunPhase.starting;
  }

  /** Assigns stage i to nodes[i], wiring each to its neighbours, in the current epoch. */
  private sendAssignments(
    nodes: readonly NodeRecord[],
    restoreStep: number,
    out: Action[],
    rebuild: ReadonlyMap<number, RebuildOrder> = new Map(),
    checkfree: ReadonlyMap<number, CheckfreeOrder> = new Map(),
  ): void {
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
          injections: this.pendingInjections.filter((i) => i.stage === stage && !COORDINATOR_FIRED.has(i.kind)),
          plan: this.erasure.placement?.plans.get(stage) ?? null,
          rebuild: rebuild.get(stage) ?? null,
          ...(checkfree.has(stage) ? { checkfree: checkfree.get(stage)! } : {}),
        },
      });
    });
  }

  /** Picks the erasure code once, at the first assignment, from the nodes there are then. */
  private chooseErasureCode(nodes: readonly NodeRecord[], out: Action[]): void {
    const withSmp = nodes.filter((n) => n.smpAddress !== '');
    if (this.job.ec === 'off' || this.job.snapshotEvery === 0) {
      this.erasure.disabledReason = this.job.snapshotEvery === 0 ? 'snapshots are off' : '--ec off';
    } else if (withSmp.length < nodes.length) {
      this.erasure.disabledReason = `${nodes.length - withSmp.length} node(s) run no snapshot manager (started with \`ftrain worker\`, not \`ftrain node\`)`;
    } else {
      this.erasure.code = resolveErasureCode(this.job.ec, nodes.length);
      if (!this.erasure.code) this.erasure.disabledReason = `${nodes.length} node(s): no other node to hold a shard`;
    }
    if (this.erasure.code) {
      const { dataShards: k, parityShards: m } = this.erasure.code;
      out.push({
        type: 'notice',
        level: 'info',
        msg: `erasure coding ${describeCode(this.erasure.code)} over ${nodes.length} nodes: each snapshot in ${k + m} shards on ${k + m} other nodes, ${((k + m) / k).toFixed(2)}x its size in peers' RAM; ${m} node loss(es) at once lose nothing`,
      });
    } else {
      out.push({ type: 'notice', level: 'warn', msg: `no erasure coding: ${this.erasure.disabledReason}; a lost node's stage can come back only by CheckFree (an intermediate stage) or from a disk checkpoint` });
    }
  }

  /** Live nodes whose snapshot manager can hold shards. */
  private shardHolders(): PlacedNode[] {
    return [...this.nodes.values()]
      .filter((n) => isLive(n.state) && n.smpAddress !== '' && this.smpState.get(n.nodeId) !== 'lost')
      .map((n) => ({ nodeId: n.nodeId, address: n.smpAddress }));
  }

  /** Recomputes where each stage's shards go; `send` also tells the stage nodes whose plan changed. */
  private replan(out: Action[], send: boolean): void {
    const code = this.erasure.code;
    if (!code) return;
    const owners = new Map<number, string>();
    this.stages.forEach((st, stage) => {
      if (st.nodeId) owners.set(stage, st.nodeId);
    });
    const before = this.erasure.placement;
    const placement = placeShards(owners, this.shardHolders(), code);
    this.erasure.placement = placement;
    const n = code.dataShards + code.parityShards;
    if (placement.degraded && !before?.degraded) {
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `erasure protection degraded: ${describeCode(code)} needs ${n} other nodes per stage, only ${this.shardHolders().length - 1} are left; some nodes hold two shards of one snapshot, so losing one of them may lose the snapshot`,
      });
    } else if (before?.degraded && !placement.degraded) {
      out.push({ type: 'notice', level: 'info', msg: `erasure protection restored: every stage's ${n} shards are on ${n} distinct other nodes again` });
    }
    if (!send) return;
    for (const [stage, plan] of placement.plans) {
      if (JSON.stringify(plan) === JSON.stringify(before?.plans.get(stage))) continue;
      out.push({ type: 'send', nodeId: owners.get(stage)!, command: { kind: 'protect', plan } });
      out.push({ type: 'log', level: 'info', msg: `re-placing the shards of stage ${stage}`, fields: { holders: plan.holders.map((h) => h.nodeId) } });
    }
  }

  /** Outside a recovery (which sends plans with its assignments), re-place shards after membership changed. */
  private replanIfTraining(out: Action[]): void {
    if (this.phase === RunPhase.training && !this.recovery) this.replan(out, true);
  }

  private holderAlive(nodeId: string): boolean {
    if (nodeId === '' || this.smpState.get(nodeId) === 'lost') return false;
    const node = this.nodes.get(nodeId);
    return !!node && (isLive(node.state) || this.smpState.get(nodeId) === 'alive');
  }

  /** Versions of a stage's snapshot that enough live holders can rebuild, by step. */
  private rebuildableVersions(stage: number): Map<number, ProtectedVersion> {
    const code = this.erasure.code;
    const out = new Map<number, ProtectedVersion>();
    if (!code) return out;
    for (const [step, v] of this.stages[stage]!.protectedVersions) {
      if (v.holders.filter((h) => this.holderAlive(h)).length >= code.dataShards) out.set(step, v);
    }
    return out;
  }

  /** Takes in a stage's protection status; moves the protected commit step on. */
  private updateProtection(stage: number, nodeId: string, status: ProtectionStatus): void {
    const st = this.stages[stage]!;
    st.protection = status;
    this.erasure.heldBytes.set(nodeId, status.heldBytes);
    if (status.stage === stage) {
      for (const v of status.versions) {
        if (!this.versionValid(v)) continue;
        const known = st.protectedVersions.get(v.step);
        if (!known || known.epoch <= v.epoch) st.protectedVersions.set(v.step, v);
      }
      if (status.encodeMs !== null && this.erasure.encodeMs.length < MAX_SAMPLES) this.erasure.encodeMs.push(status.encodeMs);
    }
    const sets = this.stages.map((x) => new Set(x.protectedVersions.keys()));
    const common = [...sets[0]!].filter((step) => sets.every((set) => set.has(step)));
    if (common.length === 0) return;
    const step = Math.max(...common);
    if (step <= this.protectedCommitStep) return;
    this.protectedCommitStep = step;
    for (const x of this.stages) for (const old of [...x.protectedVersions.keys()]) if (old < step) x.protectedVersions.delete(old);
  }

  /**
   * The refusal for a node that is not live. NOT_FOUND fences: the node stops at once with
   * EXIT_FENCED. A node this coordinator told to stop is not fenced: its Stop is on the way.
   */
  private notLive(nodeId: string): Reply {
    if (this.nodes.get(nodeId)?.state === NodeState.stopped) {
      return { ok: false, code: 'failed-precondition', message: `no training is under way: node ${nodeId} has been told to stop` };
    }
    return { ok: false, code: 'not-found', message: `node ${nodeId} is not registered` };
  }

  private checkStage(nodeId: string, stage: number): Reply {
    if (!Number.isInteger(stage) || stage < 0 || stage >= this.job.stages) {
      return { ok: false, code: 'invalid-argument', message: `stage ${stage} is out of range: this job has stages 0..${this.job.stages - 1}` };
    }
    const node = this.nodes.get(nodeId);
    if (!node || !isLive(node.state)) return this.notLive(nodeId);
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
      let fromScratch = false;
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
      if (this.recovery?.toDisk) {
        const resume = this.resumeStep();
        if (resume === null) {
          // No checkpoint yet: the rollback goes all the way to the start.
          fromScratch = true;
          out.push({ type: 'notice', level: 'warn', msg: 'no disk checkpoint is held for every stage yet: every stage starts again from its initial weights' });
        }
        const step = resume ?? 0;
        restoreCheckpointStep = resume ?? -1;
        this.restorePoints.push({ epoch: this.epoch, step });
        for (const s of this.stages) {
          s.lastStep = step - 1;
          s.snapshotStep = -1;
          for (const old of [...s.protectedVersions.keys()]) if (old > step) s.protectedVersions.delete(old);
        }
        this.losses.length = step;
        out.push({ type: 'log', level: 'warn', msg: resume === null ? 'every stage starts again from step 0' : `every stage goes back to the disk checkpoint of step ${resume}` });
      }
      const fromStep = this.completedSteps;
      for (const n of placed) {
        n!.state = transition(n!.nodeId, n!.state, NodeState.training);
        out.push({ type: 'send', nodeId: n!.nodeId, command: { kind: 'start', fromStep, toStep, restoreCheckpointStep, ...(fromScratch ? { fromScratch } : {}) } });
      }
      this.phase = RunPhase.training;
      const r = this.recovery;
      if (r) {
        for (const f of [r.failure, ...r.others]) {
          const failure: RecoveredFailure = {
            step: r.completedAtFailure,
            stage: f.stage,
            nodeId: f.nodeId,
            kind: f.kind,
            method: r.toDisk
              ? 'disk-checkpoint'
              : r.checkfree.has(f.stage)
                ? this.job.recovery === 'checkfree-plus' ? 'checkfree-plus' : 'checkfree'
                : r.rebuilt.has(f.stage) ? 'erasure-rebuild' : 'local-snapshot',
            detail: r.fallbackReason ? `${f.detail}; ${r.fallbackReason}` : f.detail,
            detectMs: f.failedAtMs === null ? null : f.detectedAtMs - f.failedAtMs,
            detectedAtMs: f.detectedAtMs,
            recoverMs: now - (f.failedAtMs ?? f.detectedAtMs),
            handoverMs: f.handoverMs,
            lostSteps: r.completedAtFailure - fromStep,
            restoredStep: fromStep,
            caughtUpMs: null,
          };
          this.failedAt.set(failure, f.failedAtMs ?? f.detectedAtMs);
          this.recovered.push(failure);
          out.push({ type: 'recovered', failure });
          out.push({ type: 'log', level: 'info', msg: 'recovered', fields: { ...failure } });
        }
        this.recovery = null;
      } else {
        out.push({ type: 'training-started', fromStep, toStep: this.toStep, resumedFromCheckpoint: restoreCheckpointStep >= 0, atMs: now });
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

  /**
   * Places a node on each vacant stage. The node that held it comes back when only its worker
   * died (its snapshot manager still answers) and restores locally; when the whole node is gone,
   * a spare or newly joined node takes the stage and rebuilds it from erasure shards.
   */
  private fillVacancies(out: Action[]): void {
    const r = this.recovery;
    if (!r) return;
    // Until every failed node's snapshot manager has been probed, the shards that survive are unknown.
    const probing = [...this.nodes.values()].some((n) => n.state === NodeState.lost && n.smpAddress !== '' && !this.smpState.has(n.nodeId));
    for (const [stage, formerId] of [...r.vacant]) {
      const candidates = [...this.nodes.values()]
        .filter((n) => n.commandsOpen && (n.state === NodeState.registered || n.state === NodeState.spare))
        .sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }));
      const former = this.nodes.get(formerId);
      const formerGone = this.smpState.get(formerId) === 'lost' || !former || former.smpAddress === '';
      // Snapshots play no part when the policy does not use them: any node will do at once.
      const anyNode = this.job.snapshotEvery === 0 || this.job.recovery === 'checkfree' || this.job.recovery === 'checkfree-plus' || this.job.recovery === 'checkpoint';
      const node =
        candidates.find((n) => n.nodeId === formerId) ??
        candidates.find((n) => n.snapshots?.stage === stage) ??
        ((formerGone && !probing) || anyNode ? candidates[0] : undefined);
      if (!node) {
        if ((formerGone && !probing) || anyNode) {
          if (!r.waitingSaid.has(stage)) {
            r.waitingSaid.add(stage);
            out.push({ type: 'notice', level: 'warn', msg: `stage ${stage} is vacant and no spare is left: waiting for a node to join (ftrain node --coordinator HOST:PORT)` });
          }
        }
        continue;
      }
      r.vacant.delete(stage);
      node.stage = stage;
      node.state = transition(node.nodeId, node.state, NodeState.recovering);
      this.stages[stage]!.nodeId = node.nodeId;
      const local = node.snapshots?.stage === stage ? node.snapshots.steps : [];
      const rebuildable = new Map([...this.rebuildableVersions(stage)].filter(([step]) => !local.includes(step)));
      r.rebuild.set(stage, rebuildable);
      r.snapshotSteps.set(stage, [...local, ...rebuildable.keys()]);
      out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid });
      if (node.nodeId !== formerId) {
        out.push({
          type: 'log',
          level: 'info',
          msg: `stage ${stage} moves from lost node ${formerId} to ${node.nodeId}`,
          fields: { local, rebuildable: [...rebuildable.keys()] },
        });
      }
    }
    this.maybeRestore(out);
  }

  /** Once every stage has a node and a list of snapshots, roll all back to the newest common step. */
  private maybeRestore(out: Action[]): void {
    const r = this.recovery;
    if (!r || r.restoreStep !== null || r.toDisk || r.vacant.size > 0 || r.snapshotSteps.size < this.job.stages) return;
    const lists = this.stages.map((_, s) => new Set(r.snapshotSteps.get(s) ?? []));
    const common = [...lists[0]!].filter((step) => lists.every((l) => l.has(step)));
    this.replan(out, false);
    const nodes = this.stages.map((s) => this.nodes.get(s.nodeId!)!);
    for (const node of nodes) node.state = transition(node.nodeId, node.state, NodeState.assigned);
    this.phase = RunPhase.starting;
    const policy = this.job.recovery;
    const lost = [...new Set([r.failure, ...r.others].map((f) => f.stage))].sort((a, b) => a - b);
    const toDisk = (why: string) => {
      if (!this.job.checkpointDir) {
        this.failRun({ nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; ${why}; no disk checkpoint to fall back to (--checkpoint-dir)`, detectedAtMs: r.failure.detectedAtMs }, out);
        return;
      }
      r.toDisk = true;
      r.fallbackReason = why;
      out.push({ type: 'notice', level: 'error', msg: `${why}: falling back to the newest disk checkpoint (epoch ${this.epoch})` });
      this.sendAssignments(nodes, -1, out);
    };
    if (policy === 'checkpoint') {
      toDisk('--recovery checkpoint');
      return;
    }
    if (policy === 'checkfree' || policy === 'checkfree-plus' || (common.length === 0 && policy === 'auto')) {
      const cannot = this.checkfreeObstacle(lost);
      if (cannot === null) {
        this.startCheckfree(r, lost, nodes, out);
        return;
      }
      if (policy !== 'auto') {
        toDisk(cannot);
        return;
      }
    }
    if (common.length === 0) {
      const have = this.stages.map((_, s) => `stage ${s}: [${[...lists[s]!].join(', ')}]`).join('; ');
      const checkfree = policy === 'auto' ? `; ${this.checkfreeObstacle(lost)}` : '';
      const why = `no snapshot step is held by every stage, locally or in enough erasure shards (${have})${this.lostShardsDetail()}${checkfree}`;
      if (policy === 'snapshot') {
        this.failRun({ nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; ${why} (--recovery snapshot)`, detectedAtMs: r.failure.detectedAtMs }, out);
        return;
      }
      toDisk(why);
      return;
    }
    const step = Math.max(...common);
    r.restoreStep = step;
    this.restorePoints.push({ epoch: this.epoch, step });
    for (const s of this.stages) {
      s.lastStep = step - 1;
      s.snapshotStep = step;
      for (const old of [...s.protectedVersions.keys()]) if (old > step) s.protectedVersions.delete(old);
    }
    this.losses.length = step;
    const orders = new Map<number, RebuildOrder>();
    for (const [stage, versions] of r.rebuild) {
      const v = versions.get(step);
      if (!v || !this.erasure.code) continue;
      orders.set(stage, { stage, step, epoch: v.epoch, code: this.erasure.code, sources: this.shardHolders().map((h) => h.address) });
    }
    for (const stage of orders.keys()) r.rebuilt.add(stage);
    this.sendAssignments(nodes, step, out, orders);
    const how = orders.size > 0 ? `; stage(s) ${[...orders.keys()].join(', ')} rebuilt from erasure shards` : '';
    out.push({ type: 'log', level: 'info', msg: `restoring every stage to step ${step} (epoch ${this.epoch})${how}` });
  }

  /** Why CheckFree cannot rebuild these lost stages, or null when it can. */
  private checkfreeObstacle(lost: readonly number[]): string | null {
    if (this.job.recovery === 'checkfree-plus') {
      for (const stage of lost) {
        const partner = swapPartner(this.job.stages, stage);
        const sources = partner === null ? [stage - 1, stage + 1] : [partner];
        const gone = sources.find((s) => lost.includes(s));
        if (gone !== undefined) {
          return partner === null
            ? `CheckFree+ cannot rebuild stage ${stage}: it averages stages ${stage - 1} and ${stage + 1}, and stage ${gone} is lost too`
            : `CheckFree+ cannot rebuild stage ${stage}: it copies its swap partner, stage ${partner}, which is lost too`;
        }
        const unknown = partner === null ? sources.find((s) => this.stages[s]!.lastReport === null) : undefined;
        if (unknown !== undefined) return `CheckFree+ needs the gradient norm of stage ${unknown}, which has not reported a step yet`;
      }
      return null;
    }
    const last = this.job.stages - 1;
    const edge = lost.filter((s) => s === 0 || s === last);
    if (edge.length > 0) return `CheckFree cannot rebuild ${edge.map((s) => (s === 0 ? 'stage 0 (the embedding)' : `stage ${s} (the last, with the head)`)).join(' or ')}: it averages the two neighbours of an intermediate stage`;
    const adjacent = lost.find((s) => lost.includes(s + 1));
    if (adjacent !== undefined) return `CheckFree cannot rebuild neighbouring stages ${adjacent} and ${adjacent + 1} together: each needs the other's weights`;
    const unknown = lost.find((s) => this.stages[s - 1]!.lastReport === null || this.stages[s + 1]!.lastReport === null);
    if (unknown !== undefined) return `CheckFree needs the gradient norms of stage ${unknown}'s neighbours, which have not reported a step yet`;
    return null;
  }

  /**
   * CheckFree: each lost stage is rebuilt on its new node from its neighbours' weights; the other
   * stages keep theirs, and training goes on from the step after the newest one any stage finished.
   */
  private startCheckfree(r: Recovery, lost: readonly number[], nodes: readonly NodeRecord[], out: Action[]): void {
    const fromStep = r.completedAtFailure;
    r.restoreStep = fromStep;
    // The snapshots and shards of before belong to another timeline now.
    this.restorePoints.push({ epoch: this.epoch, step: -1 });
    for (const s of this.stages) {
      s.lastStep = fromStep - 1;
      s.snapshotStep = -1;
      s.protectedVersions.clear();
    }
    this.losses.length = Math.min(this.losses.length, fromStep);
    const orders = new Map<number, CheckfreeOrder>();
    const plus = this.job.recovery === 'checkfree-plus';
    for (const stage of lost) {
      const partner = plus ? swapPartner(this.job.stages, stage) : null;
      if (partner !== null) {
        orders.set(stage, { kind: 'copy', from: { stage: partner, address: this.nodes.get(this.stages[partner]!.nodeId!)!.address }, learningRateScale: this.job.checkfreeLrScale });
        r.checkfree.add(stage);
        const edge = stage === 0 ? ' and its embedding from the copy stage 1 keeps' : stage === this.job.stages - 1 ? ` and its head from the copy stage ${partner} keeps` : '';
        out.push({
          type: 'notice',
          level: 'warn',
          msg: `CheckFree+: stage ${stage} rebuilt with the blocks of its swap partner (stage ${partner})${edge}, learning rate x${this.job.checkfreeLrScale}; the other stages keep their weights; training goes on from step ${fromStep}`,
        });
        continue;
      }
      const prev = this.stages[stage - 1]!;
      const next = this.stages[stage + 1]!;
      const weights = checkfreeWeights(next.lastReport!.clippedGradNorm ?? next.lastReport!.gradNorm, prev.lastReport!.clippedGradNorm ?? prev.lastReport!.gradNorm);
      orders.set(stage, {
        kind: 'average',
        prev: { stage: stage - 1, address: this.nodes.get(prev.nodeId!)!.address },
        next: { stage: stage + 1, address: this.nodes.get(next.nodeId!)!.address },
        weights,
        learningRateScale: this.job.checkfreeLrScale,
      });
      r.checkfree.add(stage);
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `${plus ? 'CheckFree+' : 'CheckFree'}: stage ${stage} rebuilt from stages ${stage - 1} and ${stage + 1} (weights ${weights.b.toFixed(4)} : ${weights.a.toFixed(4)}), learning rate x${this.job.checkfreeLrScale}; the other stages keep their weights; training goes on from step ${fromStep}`,
      });
    }
    this.sendAssignments(nodes, -1, out, new Map(), orders);
  }

  /** For a failure message: each vacant-then-filled stage's shard count at its newest version. */
  private lostShardsDetail(): string {
    const code = this.erasure.code;
    if (!code) return `; erasure coding is off (${this.erasure.disabledReason ?? 'not chosen yet'})`;
    const parts: string[] = [];
    this.stages.forEach((st, stage) => {
      const newest = [...st.protectedVersions.values()].at(-1);
      if (!newest) return;
      const alive = newest.holders.filter((h) => this.holderAlive(h)).length;
      if (alive < code.dataShards) parts.push(`stage ${stage} step ${newest.step}: ${alive} of the ${code.dataShards} shards needed survive`);
    });
    return parts.length > 0 ? `; ${parts.join('; ')}` : '';
  }

  /** Whether a protected version belongs to the timeline training continues on. */
  private versionValid(v: ProtectedVersion): boolean {
    return this.restorePoints.every((p) => p.epoch <= v.epoch || v.step <= p.step);
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
      const commit: SnapshotCommit = {
        stage: r.stage,
        step: r.snapshotStep,
        atMs: now,
        stallMs: r.snapshotStallMs ?? 0,
        copyMs: r.snapshotCopyMs ?? 0,
        bytes: r.snapshotBytes ?? 0,
      };
      if (this.snapshotLog.length < MAX_TIMELINE) this.snapshotLog.push(commit);
      out.push({ type: 'snapshot-committed', snapshot: commit });
    }
    if (r.protection) this.updateProtection(r.stage, r.nodeId, r.protection);
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
      this.stepDoneAtMs[s] ??= now;
      if (this.timeline.length < MAX_TIMELINE) this.timeline.push({ atMs: now, step: s, loss: this.losses[s] ?? null });
      for (const f of this.recovered) {
        if (f.caughtUpMs === null && s === f.step) f.caughtUpMs = now - this.failedAt.get(f)!;
      }
    }
    if (after > before) this.fireCoordinatorInjections(after, now, out);
    this.maybeMoveDepartures(now, out);
    if (this.toStep !== null && after >= this.toStep) {
      this.phase = RunPhase.complete;
      out.push({ type: 'training-complete', steps: after });
    }
    return OK;
  }

  /**
   * Injections of whole-node events (node-kill, freeze, preempt) of step `step` fire once every
   * stage has finished the step before: the coordinator tells all their nodes in the same
   * instant, so the events of one step happen at once (a stage that waited to reach the step
   * itself might be halted by another's failure first).
   */
  private fireCoordinatorInjections(step: number, now: number, out: Action[]): void {
    const due = this.pendingInjections.filter((i) => COORDINATOR_FIRED.has(i.kind) && i.step === step);
    if (due.length === 0) return;
    this.pendingInjections = this.pendingInjections.filter((i) => !due.includes(i));
    for (const i of due) {
      const nodeId = this.stages[i.stage]!.nodeId;
      if (!nodeId) continue;
      // A preemption is not a failure until its notice arrives (Leave); the others are one now.
      if (i.kind !== 'preempt') this.injected.set(i.stage, { step, kind: i.kind, atMs: now });
      out.push({ type: 'log', level: 'warn', msg: `injecting ${i.kind} on stage ${i.stage} (${nodeId}) in step ${step}` });
      out.push({ type: 'send', nodeId, command: { kind: 'inject', injection: i } });
    }
  }

  /**
   * A node leaves with notice. A spare just goes. A stage's node keeps training while stage 0
   * pauses at the next step boundary; once every stage has finished that step and the leaving
   * stage's snapshot of it is erasure-coded on other nodes, the stage moves (maybeMoveDepartures):
   * nothing computed is lost.
   */
  private onLeave(nodeId: string, graceMs: number, reason: string, now: number, out: Action[]): Reply {
    const node = this.nodes.get(nodeId);
    if (!node || !isLive(node.state)) return this.notLive(nodeId);
    if (!Number.isFinite(graceMs) || graceMs < 0) return { ok: false, code: 'invalid-argument', message: `grace of ${graceMs} ms is not a duration` };
    if (this.departures.has(nodeId)) return OK;
    const stage = node.stage;
    const why = reason || 'preemption notice';
    if (stage === null || this.phase !== RunPhase.training) {
      // Nothing to hand over at a step boundary: a spare, or a run that is not training.
      out.push({ type: 'notice', level: 'warn', msg: `node ${nodeId}${stage === null ? '' : ` (stage ${stage})`} is leaving (${why})` });
      this.smpState.set(nodeId, 'lost');
      if (stage !== null) this.injected.set(stage, { step: this.completedSteps, kind: 'preempt', atMs: now });
      out.push({ type: 'send', nodeId, command: { kind: 'stop', reason: `leave granted (${why})`, failed: false } });
      this.nodeFailed(nodeId, `left with notice (${why})`, now, out);
      return OK;
    }
    const pausing = [...this.departures.values()][0]?.pauseAt;
    const pauseAt = pausing ?? this.stages[0]!.lastStep + 2;
    this.departures.set(nodeId, { nodeId, stage, reason: why, noticeAtMs: now, deadlineMs: now + graceMs, pauseAt });
    if (pausing === undefined) out.push({ type: 'send', nodeId: this.stages[0]!.nodeId!, command: { kind: 'limit', toStep: pauseAt, pause: true } });
    out.push({
      type: 'notice',
      level: 'warn',
      msg: `node ${nodeId} (stage ${stage}) is leaving within ${(graceMs / 1000).toFixed(0)} s (${why}): pausing after step ${pauseAt - 1} to move stage ${stage}`,
    });
    this.maybeMoveDepartures(now, out);
    return OK;
  }

  /** Moves the stage of each leaving node once it can go without loss, or when time is up. */
  private maybeMoveDepartures(now: number, out: Action[]): void {
    for (const d of [...this.departures.values()]) {
      const node = this.nodes.get(d.nodeId);
      if (!node || !isLive(node.state) || node.stage !== d.stage) {
        this.departures.delete(d.nodeId);
        continue;
      }
      // Paused: every stage has finished the same steps, at least up to the pause (stage 0 may have
      // started one more step before the pause reached it).
      const done = this.completedSteps;
      const paused = this.phase === RunPhase.training && done >= d.pauseAt && this.stages.every((st) => st.lastStep === done - 1);
      const coded = this.stages[d.stage]!.protectedVersions.has(done);
      // Without erasure coding there is nothing to wait for: the other tiers take over.
      const ready = paused && (coded || this.erasure.code === null);
      const late = now >= d.deadlineMs - DEPARTURE_MARGIN_MS;
      if (!ready && !late) continue;
      this.departures.delete(d.nodeId);
      this.smpState.set(d.nodeId, 'lost');
      this.injected.set(d.stage, { step: done, kind: 'preempt', atMs: now, handoverMs: now - d.noticeAtMs });
      if (late && !ready) out.push({ type: 'notice', level: 'warn', msg: `node ${d.nodeId} is about to go before stage ${d.stage} could be handed over at step ${d.pauseAt}: moving it now` });
      out.push({ type: 'send', nodeId: d.nodeId, command: { kind: 'stop', reason: `leave granted (${d.reason}): stage ${d.stage} moves`, failed: false } });
      this.nodeFailed(d.nodeId, `left with notice (${d.reason})`, now, out);
    }
  }

  /** The failure a recovery under way is for (the first, when several nodes went at once); null when none is. */
  recovering(): { stage: number; nodeId: string; detail: string; atMs: number } | null {
    const f = this.recovery?.failure;
    return f ? { stage: f.stage, nodeId: f.nodeId, detail: f.detail, atMs: f.detectedAtMs } : null;
  }

  /** The nodes as the coordinator knows them, for status tools. */
  nodeList(): NodeSummary[] {
    return [...this.nodes.values()].map((n) => ({ nodeId: n.nodeId, state: n.state, stage: n.stage, pid: n.pid, smpPid: n.smpPid, agentPid: n.agentPid, hostname: n.hostname, address: n.address }));
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

  /** `kind` names the failure in the report when no injection explains it. */
  private nodeFailed(nodeId: string, detail: string, now: number, out: Action[], kind = 'worker-crash'): void {
    const node = this.nodes.get(nodeId);
    if (!node || !isLive(node.state)) return;
    const wasPlaced = node.stage !== null;
    node.state = transition(nodeId, node.state, NodeState.lost);
    const failure: Failure = { nodeId, stage: node.stage, detail, detectedAtMs: now };
    out.push({ type: 'log', level: wasPlaced ? 'error' : 'warn', msg: 'node failed', fields: { ...failure } });
    if (node.smpAddress !== '' && !this.smpState.has(nodeId)) out.push({ type: 'probe-smp', nodeId, address: node.smpAddress });
    if (!wasPlaced) {
      // A spare or an unassigned node: the run goes on; shards it held are placed elsewhere.
      if (node.smpAddress === '') return;
      this.smpState.set(nodeId, 'lost');
      this.replanIfTraining(out);
      return;
    }
    if (this.phase === RunPhase.finished || this.phase === RunPhase.failed || this.phase === RunPhase.stopped) return;
    // With snapshots off, only CheckFree (an intermediate stage) or the disk tier can bring it back.
    const stage = node.stage!;
    const checkfreeCan =
      this.job.recovery === 'checkfree-plus' || (this.job.recovery !== 'snapshot' && this.job.recovery !== 'checkpoint' && stage > 0 && stage < this.job.stages - 1);
    const underWay = this.phase === RunPhase.training || this.phase === RunPhase.recovering || (this.phase === RunPhase.starting && this.recovery !== null);
    if (!underWay) {
      this.failRun(failure, out);
      return;
    }
    if (this.job.snapshotEvery === 0 && this.job.checkpointDir === null && !checkfreeCan) {
      const checkfree =
        this.job.recovery === 'auto' || this.job.recovery === 'checkfree'
          ? (this.checkfreeObstacle([stage]) ?? 'CheckFree cannot rebuild it')
          : `--recovery ${this.job.recovery} rules out CheckFree`;
      this.failRun({ ...failure, detail: `${detail}; nothing can bring stage ${stage} back: snapshots are off (--snapshot-every 0), there is no disk checkpoint (--checkpoint-dir), and ${checkfree}` }, out);
      return;
    }
    this.beginRecovery(node, detail, now, out, kind);
  }

  private beginRecovery(node: NodeRecord, detail: string, now: number, out: Action[], kind: string): void {
    const stage = node.stage!;
    node.stage = null;
    this.stages[stage]!.nodeId = null;
    const injected = this.injected.get(stage) ?? null;
    this.injected.delete(stage);
    const info: FailureInfo = {
      stage,
      nodeId: node.nodeId,
      kind: injected?.kind ?? kind,
      detail,
      failedAtMs: injected?.atMs ?? null,
      detectedAtMs: now,
      handoverMs: injected?.handoverMs ?? null,
    };
    if (!this.recovery) {
      this.epoch += 1;
      this.recovery = {
        epoch: this.epoch,
        vacant: new Map(),
        snapshotSteps: new Map(),
        rebuild: new Map(),
        toDisk: false,
        fallbackReason: null,
        failure: info,
        others: [],
        rebuilt: new Set(),
        checkfree: new Set(),
        completedAtFailure: Math.max(...this.stages.map((s) => s.lastStep)) + 1,
        restoreStep: null,
        waitingSaid: new Set(),
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
      this.recovery.others.push(info);
      this.recovery.snapshotSteps.delete(stage);
      this.recovery.rebuild.delete(stage);
      if (this.recovery.restoreStep !== null || this.recovery.toDisk) {
        this.recovery.toDisk = false;
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
