// Planned departures: a node leaving with notice (a spot preemption: SIGTERM, then Leave). A
// spare just goes. A stage's node keeps training while stage 0 pauses at the next step
// boundary; once every stage has finished that step and the leaving stage's snapshot of it is
// erasure-coded on other nodes, the stage moves: nothing computed is lost. If the node's time
// runs out first, the stage moves anyway.

import { RefusalReason, type Refusal } from '../../domain/refusal.ts';
import { RunPhase } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { FailureLog } from './failure-log.ts';
import type { Membership } from './membership.ts';
import { slotsOfStage, type ReplicaShape } from '../../domain/replica-slots.ts';

/** How long before a departing node's deadline its stage is moved even if not yet protected. */
export const DEPARTURE_MARGIN_MS = 2000;

/** A node leaving with notice, until its stage is moved. */
export interface Departure {
  readonly nodeId: string;
  readonly stage: number;
  readonly reason: string;
  readonly noticeAtMs: number;
  /** The node is gone by then: move the stage before, whatever its state. */
  readonly deadlineMs: number;
  /** Stage 0 starts no step from this one on, until the move: the steps done at the pause (the console's "step N"). */
  readonly pauseAt: number;
}

/** What departures need from the rest of the core. */
export interface DepartureContext {
  readonly phase: RunPhase;
  /** Whether snapshots are erasure-coded in this run. */
  readonly erasureCoded: boolean;
  /** The first step at or after `step` whose snapshot every stage takes (the interval may be over one step). */
  nextSnapshotStep(step: number): number;
  nodeFailed(nodeId: string, detail: string, now: number, out: Action[]): void;
}

export class Departures {
  /** Nodes leaving with notice whose stage has not moved yet, by node id. */
  private readonly leaving = new Map<string, Departure>();

  constructor(
    private readonly job: ReplicaShape,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly failures: FailureLog,
    private readonly ctx: DepartureContext,
  ) {}

  /** The departures under way, as the coordinator's store keeps them. */
  durable(): Departure[] {
    return [...this.leaving.values()];
  }

  restore(d: readonly Departure[]): void {
    this.leaving.clear();
    for (const x of d) this.leaving.set(x.nodeId, x);
  }

  /** Whether a stage's node is leaving and its stage has not moved yet (the snapshot interval then holds still). */
  get pending(): boolean {
    return this.leaving.size > 0;
  }

  leave(nodeId: string, graceMs: number, reason: string, now: number, out: Action[]): Refusal | null {
    const node = this.members.live(nodeId);
    if (!node) return this.members.notLive(nodeId);
    if (!Number.isFinite(graceMs) || graceMs < 0) return { reason: RefusalReason.invalid, message: `grace of ${graceMs} ms is not a duration` };
    if (this.leaving.has(nodeId)) return null;
    const stage = node.stage;
    const why = reason || 'preemption notice';
    if (stage === null || this.ctx.phase !== RunPhase.training || this.commits.isParked(stage)) {
      // Nothing to hand over at a step boundary: a spare, a run that is not training, or a slot
      // of a replica that is out (it copies its state from a live replica when it joins).
      out.push({ type: 'notice', level: 'warn', msg: `node ${nodeId}${stage === null ? '' : ` (stage ${stage})`} is leaving (${why})` });
      this.members.markSmp(nodeId, 'lost');
      if (stage !== null) this.failures.announce(stage, { step: this.commits.completedSteps, kind: 'preempt', atMs: now });
      out.push({ type: 'send', nodeId, command: { kind: 'stop', reason: `leave granted (${why})`, failed: false } });
      this.ctx.nodeFailed(nodeId, `left with notice (${why})`, now, out);
      return null;
    }
    const pausing = [...this.leaving.values()][0]?.pauseAt;
    const stage0 = this.commits.stage(0);
    // At a step boundary whose snapshot every stage takes, so the move loses nothing.
    const pauseAt = pausing ?? this.ctx.nextSnapshotStep(stage0.lastStep + 2);
    this.leaving.set(nodeId, { nodeId, stage, reason: why, noticeAtMs: now, deadlineMs: now + graceMs, pauseAt });
    if (pausing === undefined) {
      // A replica that is out (the others train on without it) starts no step anyway.
      for (const slot of slotsOfStage(this.job, 0)) {
        if (!this.commits.isParked(slot)) out.push({ type: 'send', nodeId: this.commits.stage(slot).nodeId!, command: { kind: 'limit', toStep: pauseAt, pause: true } });
      }
    }
    out.push({
      type: 'notice',
      level: 'warn',
      msg: `node ${nodeId} (stage ${stage}) is leaving within ${(graceMs / 1000).toFixed(0)} s (${why}): pausing after step ${pauseAt} to move stage ${stage}`,
    });
    this.maybeMove(now, out);
    return null;
  }

  /** Moves the stage of each leaving node once it can go without loss, or when time is up. */
  maybeMove(now: number, out: Action[]): void {
    for (const d of [...this.leaving.values()]) {
      const node = this.members.live(d.nodeId);
      if (!node || node.stage !== d.stage) {
        this.leaving.delete(d.nodeId);
        continue;
      }
      // Paused: every stage has finished the same steps, at least up to the pause (stage 0 may have
      // started one more step before the pause reached it).
      const done = this.commits.completedSteps;
      const paused = this.ctx.phase === RunPhase.training && done >= d.pauseAt && this.commits.allAtLastStep(done - 1);
      const coded = this.commits.stage(d.stage).protectedVersions.has(done);
      // Without erasure coding there is nothing to wait for: the other tiers take over.
      const ready = paused && (coded || !this.ctx.erasureCoded);
      const late = now >= d.deadlineMs - DEPARTURE_MARGIN_MS;
      if (!ready && !late) continue;
      this.leaving.delete(d.nodeId);
      this.members.markSmp(d.nodeId, 'lost');
      this.failures.announce(d.stage, { step: done, kind: 'preempt', atMs: now, handoverMs: now - d.noticeAtMs });
      if (late && !ready) out.push({ type: 'notice', level: 'warn', msg: `node ${d.nodeId} is about to go before stage ${d.stage} could be handed over at step ${d.pauseAt}: moving it now` });
      out.push({ type: 'send', nodeId: d.nodeId, command: { kind: 'stop', reason: `leave granted (${d.reason}): stage ${d.stage} moves`, failed: false } });
      this.ctx.nodeFailed(d.nodeId, `left with notice (${d.reason})`, now, out);
    }
  }
}
