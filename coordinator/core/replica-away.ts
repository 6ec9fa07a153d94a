// A replica out while one of its stages is rebuilt (`--on-replica-loss keep` or `shrink`): the
// other replicas train on instead of waiting. Under keep a live replica, the host, trains the
// lost replica's micro-batches as well as its own and plays its ranks in the rings, one partial
// gradient sum per replica reduced in the usual order, so the maths is that of a run without the
// loss; under shrink the step trains the live replicas' micro-batches only. Once a node holds
// every slot of the replica again, the live replicas pause at a snapshot step and every slot of
// the replica copies that step from a live replica (the replica-copy tier): it joins at a step
// boundary. `replicaAway` and `awayResumeStep` are pure; `ReplicaAwayFlow` carries the flow out
// on the recovery's state (recovery.ts owns it).

import type { JobOptions } from '../../domain/job-options.ts';
import { replicaOfSlot, slotName, slotOf, slotsOfStage, stageOfSlot } from '../../domain/replica-slots.ts';
import { NodeState, RunPhase } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { Membership, NodeRecord } from './membership.ts';
import type { AwayReplica, RecoveryContext, RecoveryState } from './recovery-state.ts';
import type { ShardPlacement } from './shard-placement.ts';
import { restorableShares } from './share-layouts.ts';
import type { StagePlacement } from './stage-placement.ts';


/** The node of each slot, as the coordinator knows it: its state, or null without a node. */
export type SlotStates = readonly (NodeState | null)[];

/**
 * Whether the other replicas can train on without the replica of `slot`, and how: null when the
 * job wants every replica to wait (one replica, `--on-replica-loss stop`, `--recovery checkpoint`,
 * snapshots off: the live replicas could not go back to the step they all hold) or no other
 * replica trains whole.
 */
export function replicaAway(job: JobOptions, slot: number, states: SlotStates): AwayReplica | null {
  // `--recovery checkpoint` sends every stage back to the disk tier, whatever else survives.
  if (job.replicas < 2 || job.onReplicaLoss === 'stop' || job.snapshotEvery === 0 || job.recovery === 'checkpoint') return null;
  const replica = replicaOfSlot(job, slot);
  const whole = (r: number) => Array.from({ length: job.stages }, (_, stage) => states[slotOf(job, r, stage)]).every((s) => s === NodeState.training);
  // The host: the first whole replica after the lost one in ring order.
  let host: number | null = null;
  for (let k = 1; k < job.replicas && host === null; k++) {
    const r = (replica + k) % job.replicas;
    if (whole(r)) host = r;
  }
  if (host === null) return null;
  const slots = Array.from({ length: job.stages }, (_, stage) => slotOf(job, replica, stage));
  return { replica, host: job.onReplicaLoss === 'keep' ? host : null, slots, resumed: null, joinAt: null, restoringSinceMs: null, caughtUpAtMs: null };
}

/**
 * The step the live slots go on from: the newest step every one of them holds, in a snapshot or
 * in its tensors (a live replica's stage may have finished the step under way, another not), or
 * null when they hold none in common.
 */
export function awayResumeStep(held: readonly (readonly number[])[]): number | null {
  if (held.length === 0) return null;
  const common = held[0]!.filter((step) => held.every((h) => h.includes(step)));
  return common.length === 0 ? null : Math.max(...common);
}

/** What the flow reads of the recovery it belongs to. */
export interface AwayRecovery {
  state(): RecoveryState | null;
  /** The live replicas train on while the replica that is out waits to join. */
  trainingOn(): boolean;
  /** The newest state of a slot whose snapshots are trusted (a replica that diverged: not after it). */
  trustedUpTo(slot: number): number;
  /** The time of the event being handled. */
  nowMs(): number;
}

/** The steps of a replica that is out: the others train on, then it joins (see the top of this file). */
export class ReplicaAwayFlow {
  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly placement: StagePlacement,
    private readonly shards: ShardPlacement,
    private readonly ctx: RecoveryContext,
    private readonly rec: AwayRecovery,
  ) {}

  /**
   * The first part of a recovery the other replicas do not wait for: once every live slot has
   * said what it holds, they go on from the newest step they all hold and train on without the
   * replica that is out (its slots get nothing; under keep the host trains its micro-batches
   * too). False when they hold no step in common: then every replica waits after all.
   */
  trainOnWithout(r: RecoveryState, away: AwayReplica, out: Action[]): boolean {
    // Every live slot has said what it holds: counted, not searched, as each halted report asks
    // (every key of snapshotSteps is a slot).
    const saidAway = away.slots.filter((s) => r.snapshotSteps.has(s)).length;
    if (r.snapshotSteps.size - saidAway < this.commits.stages.length - away.slots.length) return true;
    const live = this.commits.stages.flatMap((_, s) => (away.slots.includes(s) ? [] : [s]));
    // A live slot goes on from a step its tensors hold as they are, or from a snapshot it holds:
    // where the snapshots lag (their commits were slow, or a step's was skipped), no step is
    // trained again.
    const trustedOf = (s: number, steps: readonly number[]) => steps.filter((step) => step >= 0 && step <= this.rec.trustedUpTo(s));
    // Sharded snapshots: a snapshot step serves only where every share of it is held locally: by a
    // live slot (its halted report), or by the node of a slot that is out (what it holds itself;
    // nothing is rebuilt for the others to go on). A node of the replica that is out may not have
    // said yet: the others wait for it only where what it holds could change the step.
    const own = away.slots.map((p) => this.heldByOwnNode(r, p));
    const snapshotsIf = (unsaid: readonly number[]) => (s: number) => {
      if (!this.shards.sharesSnapshots) return trustedOf(s, r.snapshotSteps.get(s)!);
      const reported = (p: number) => (away.slots.includes(p) ? (own[away.slots.indexOf(p)] ?? unsaid) : (r.snapshotSteps.get(p) ?? []));
      return trustedOf(s, restorableShares((step) => this.ctx.shareLayout(stageOfSlot(this.job, s), step), reported(s), reported, () => new Set()));
    };
    const resumeIf = (snapshots: (s: number) => number[]) => awayResumeStep(live.map((s) => [...snapshots(s), ...trustedOf(s, [r.memorySteps.get(s) ?? -1])]));
    const snapshots = snapshotsIf([]);
    const step = resumeIf(snapshots);
    if (own.some((steps) => steps === null) && resumeIf(snapshotsIf([...new Set([...r.snapshotSteps.values()].flat())])) !== step) return true;
    if (step === null) {
      out.push({ type: 'log', level: 'warn', msg: `replica ${away.replica} is out, but the live replicas hold no step in common: every replica waits for the recovery` });
      r.away = null;
      return false;
    }
    const plan = { tier: 'local-snapshot', step, rebuilt: [], copied: new Map() } as const;
    r.decision = { plan, reason: { kind: 'common-snapshot', text: `the live replicas hold step ${step}` }, fallback: null };
    // The newest snapshot every live slot holds up to that step stays the commit step.
    this.commits.rollBack(this.ctx.epoch, step, awayResumeStep(live.map((s) => snapshots(s).filter((x) => x <= step))) ?? -1);
    this.commits.park(away.slots);
    // Shards go to live nodes only (the lost node held some).
    this.shards.replan(out, false);
    const nodes: NodeRecord[] = [];
    for (const s of live) {
      nodes[s] = this.members.get(this.commits.stage(s).nodeId!)!;
      this.members.move(nodes[s]!, NodeState.assigned);
    }
    this.ctx.setPhase(RunPhase.starting);
    const inMemory = new Set(live.filter((s) => r.memorySteps.get(s) === step));
    this.placement.sendAssignments(nodes, step, out, new Map(), new Map(), new Map(), { replica: away.replica, host: away.host }, inMemory);
    r.assignedAtMs = this.rec.nowMs();
    for (const s of live) r.answers.ask(s, nodes[s]!.nodeId, 'assign', r.epoch, r.assignedAtMs);
    const how = away.host === null ? 'the others train on with their own micro-batches (--on-replica-loss shrink)' : `replica ${away.host} trains its micro-batches as well as its own (--on-replica-loss keep)`;
    out.push({ type: 'notice', level: 'warn', msg: `replica ${away.replica} is out until ${slotName(this.job, r.failure.stage)} is back: ${how}, from step ${step}` });
    return true;
  }

  /**
   * What the node of a slot that is out holds in its own snapshot manager, or null until it says:
   * a node that stayed, by its halted report; a node whose worker died beside a snapshot manager
   * that answers (or is not yet probed), once the worker registers again; a node that took the
   * slot, at once. A node whose snapshot manager is gone holds nothing.
   */
  private heldByOwnNode(r: RecoveryState, slot: number): readonly number[] | null {
    const filled = r.filled.get(slot);
    if (filled) return filled;
    const formerId = r.vacant.get(slot);
    if (formerId === undefined) return r.snapshotSteps.get(slot) ?? null;
    const former = this.members.get(formerId);
    return !former || former.smpAddress === '' || this.members.smpLost(formerId) ? [] : null;
  }

  /** Every replica restores the same step now, a replica that is out copying it from a live one (its join, or a further failure). */
  restoreAll(r: RecoveryState, why: string, out: Action[]): void {
    const away = r.away!;
    away.restoringSinceMs = this.rec.nowMs();
    for (const s of away.slots) {
      // Its answer to a halt is not waited for: it holds nothing of its own to restore (a node
      // placed on it meanwhile has no stage yet to halt).
      r.answers.answered(s);
      if (r.vacant.has(s)) continue;
      r.filled.set(s, []);
      r.snapshotSteps.set(s, []);
    }
    out.push({ type: 'log', level: 'info', msg: `${why}: every replica restores the same step, replica ${away.replica} copying it from a live replica` });
  }

  /**
   * While the others train on: once a node holds every slot of the replica that is out, they
   * pause at the next step boundary whose snapshot every stage takes (`limit`), and there the
   * replica joins.
   */
  scheduleJoin(out: Action[]): void {
    const r = this.rec.state();
    const away = r?.away;
    if (!r || !away || !this.rec.trainingOn() || away.joinAt !== null || r.vacant.size > 0) return;
    const joinAt = this.ctx.nextSnapshotStep(this.commits.stepUnderWay + 1);
    away.joinAt = joinAt;
    for (const slot of slotsOfStage(this.job, 0)) {
      if (!away.slots.includes(slot)) out.push({ type: 'send', nodeId: this.commits.stage(slot).nodeId!, command: { kind: 'limit', toStep: joinAt, pause: true } });
    }
    out.push({ type: 'log', level: 'info', msg: `replica ${away.replica} has a node for each stage again: it joins after step ${joinAt}` });
  }

  /** After step reports: once the live replicas have paused at the join step, every replica restores it. */
  maybeJoin(out: Action[]): void {
    const r = this.rec.state();
    const away = r?.away;
    if (!r || !away || !this.rec.trainingOn() || away.joinAt === null || r.vacant.size > 0) return;
    const live = this.commits.activeSlots();
    if (!this.commits.allAtLastStep(away.joinAt - 1)) return;
    this.restoreAll(r, `replica ${away.replica} joins after step ${away.joinAt}`, out);
    r.decision = null;
    r.epoch = this.ctx.nextEpoch();
    this.ctx.setPhase(RunPhase.recovering);
    for (const s of live) {
      const n = this.members.get(this.commits.stage(s).nodeId!)!;
      this.members.move(n, NodeState.recovering);
      r.snapshotSteps.delete(s);
      out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch: r.epoch, reason: `replica ${away.replica} joins after step ${away.joinAt}`, resumeAtMost: away.joinAt } });
      r.answers.ask(s, n.nodeId, 'halt', r.epoch, this.rec.nowMs());
    }
  }
}
