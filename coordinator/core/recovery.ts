// A recovery under way, from the first failure to training again: halt the survivors, put a node
// on each vacant stage (the node that held it when only its worker died, else a spare or a newly
// joined node), collect what every stage can restore, let the policy choose the tier
// (recovery-policy.ts), send the assignments, and, once every stage is ready, say how each
// failure was recovered.

import type { ProtectedVersion, RebuildOrder, ReplicaCopyOrder } from '../../domain/erasure-protection.ts';
import type { RestoreTrace } from '../../domain/node-reports.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { NodeState, RunPhase, type Failure, type RecoveredFailure } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { FailureInfo, FailureLog } from './failure-log.ts';
import type { Membership, NodeRecord } from './membership.ts';
import { planRecovery, recoveryOutlook, type RecoveryDecision } from './recovery-policy.ts';
import { recoveredRecord } from './recovery-outcome.ts';
import { checkfreeOrders } from './checkfree-orders.ts';
import type { ShardPlacement } from './shard-placement.ts';
import type { StagePlacement } from './stage-placement.ts';
import { slotCount, slotName, slotsOfStage, stageOfSlot } from '../../domain/replica-slots.ts';
import { pickForSlot } from '../../domain/zones.ts';
import { shareViews, withMemory } from './share-layouts.ts';
import { ReplicaAwayFlow, replicaAway } from './replica-away.ts';
import { freshRecoveryState, type RecoveryContext, type RecoveryState } from './recovery-state.ts';
import type { Unanswered } from './recovery-answers.ts';
import { durableRecovery, reattachHalt, resumedRecovery } from './recovery-takeover.ts';

export class Recovery {
  private r: RecoveryState | null = null;
  private readonly awayFlow: ReplicaAwayFlow;
  /** Slots whose snapshots after a step are not trusted (a replica that diverged), until the recovery completes. */
  private readonly distrusted = new Map<number, number>();
  /** The time of the event being handled (the core sets it): when the plan's assignments go out. */
  nowMs = 0;

  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly shards: ShardPlacement,
    private readonly placement: StagePlacement,
    private readonly failures: FailureLog,
    private readonly ctx: RecoveryContext,
  ) {
    const self = this;
    this.awayFlow = new ReplicaAwayFlow(job, members, commits, placement, shards, ctx, {
      state: () => self.r,
      trainingOn: () => self.trainingOn,
      trustedUpTo: (slot) => self.distrusted.get(slot) ?? Infinity,
      nowMs: () => self.nowMs,
    });
  }

  /** After step reports: once the live replicas have paused where a replica that is out joins, every replica restores that step. */
  maybeJoin(out: Action[]): void {
    this.awayFlow.maybeJoin(out);
  }

  /** A recovery holds the run: the replicas wait for it (not while they train on without one). */
  get active(): boolean {
    return this.r !== null && !this.trainingOn;
  }

  /** The live replicas train on while a replica that is out waits to join (replica-away.ts). */
  get trainingOn(): boolean {
    const a = this.r?.away;
    return !!a && a.resumed !== null && a.restoringSinceMs === null;
  }

  /**
   * Since when the recovery under way has held the run (a join counts from its pause) with
   * nothing new to recover: a further failure counts as its start; null when none holds it.
   */
  heldSinceMs(): number | null {
    if (!this.active) return null;
    const r = this.r!;
    return Math.max(r.away?.restoringSinceMs ?? r.failure.detectedAtMs, r.others.at(-1)?.detectedAtMs ?? -Infinity);
  }

  /**
   * Since when a vacant slot has waited for a node while the recovery holds the run: from the
   * failure that left it vacant (the latest, when it was filled and lost again), or from the
   * restore of a join when it waited before while the others trained on.
   */
  vacantSinceMs(slot: number): number {
    const r = this.r!;
    let since = r.failure.detectedAtMs;
    for (let i = r.others.length - 1; i >= 0; i--) {
      if (r.others[i]!.stage === slot) {
        since = r.others[i]!.detectedAtMs;
        break;
      }
    }
    return Math.max(since, r.away?.restoringSinceMs ?? -Infinity);
  }

  /** The recovery restores from the disk tier (the start must load checkpoints). */
  get toDisk(): boolean {
    return this.r?.decision?.plan.tier === 'disk-checkpoint';
  }

  /** The failure a recovery under way is for (the first, when several nodes went at once); null when none is. */
  current(): { stage: number; nodeId: string; detail: string; atMs: number; othersTrainOn?: boolean } | null {
    const f = this.r?.failure;
    return f ? { stage: f.stage, nodeId: f.nodeId, detail: f.detail, atMs: f.detectedAtMs, ...(this.trainingOn ? { othersTrainOn: true } : {}) } : null;
  }

  /** Stages still without a node, with the node that held each. */
  vacancies(): [number, string][] {
    return [...(this.r?.vacant ?? [])];
  }

  abandon(): void {
    this.r = null;
    this.distrusted.clear();
  }

  /**
   * A slot whose weights were found unlike its replicas': its snapshots (local or as shards) of
   * states after `upTo` steps are not restored, until the recovery under way completes.
   */
  distrust(slot: number, upTo: number): void {
    this.distrusted.set(slot, Math.min(upTo, this.distrusted.get(slot) ?? Infinity));
  }

  /** The snapshot step a stage that is being rebuilt from shards (or copied from a replica) was to restore, and from what, if any. */
  rebuildingAt(stage: number): { step: number; from: string } | null {
    const r = this.r;
    const plan = r?.decision?.plan;
    if ((plan?.tier === 'erasure-rebuild' || plan?.tier === 'replica-copy') && plan.copied.has(stage)) return { step: plan.step, from: `a copy from its replica, stage ${plan.copied.get(stage)}` };
    return plan?.tier === 'erasure-rebuild' && plan.rebuilt.includes(stage) ? { step: plan.step, from: 'erasure shards' } : null;
  }

  /** The first failure's detail and detection, for a run that fails during the recovery. */
  failureDetail(): { nodeId: string; stage: number; detail: string; detectedAtMs: number } {
    const f = this.r!.failure;
    return { nodeId: f.nodeId, stage: f.stage, detail: f.detail, detectedAtMs: f.detectedAtMs };
  }

  /** What a new leader needs of the recovery under way (recovery-takeover.ts); null when none is. */
  durable(): readonly FailureInfo[] | null {
    return durableRecovery(this.r);
  }

  /** A new leader's: the recovery the old leader had under way starts again (recovery-takeover.ts). */
  resume(failures: readonly FailureInfo[], now: number): void {
    this.r = resumedRecovery(this.job, this.members, this.commits, this.ctx, failures) ?? this.r;
    this.nowMs = now;
  }

  /** A placed node re-attached to a new leader during a recovery it has not reported on: it halts in the recovery's epoch. */
  reattached(node: NodeRecord, out: Action[]): void {
    if (this.r) reattachHalt(this.r, node, () => this.resumeAtMost(), this.nowMs, out);
  }

  /** A placed node failed: its stage is vacant; every survivor halts (again, if a restore was under way). */
  begin(node: NodeRecord, detail: string, now: number, out: Action[], kind: string): void {
    const stage = node.stage!;
    node.stage = null;
    this.commits.stage(stage).nodeId = null;
    this.r?.answers.answered(stage);
    const announced = this.failures.take(stage);
    const info: FailureInfo = {
      stage,
      nodeId: node.nodeId,
      kind: announced?.kind ?? kind,
      detail,
      failedAtMs: announced?.atMs ?? null,
      detectedAtMs: now,
      handoverMs: announced?.handoverMs ?? null,
    };
    const away = this.r?.away;
    if (this.r && away && away.restoringSinceMs === null && away.slots.includes(stage)) {
      // Another slot of the replica that is out (before or after the others went on): one more to
      // fill before it joins; the others do not wait for it.
      this.r.others.push(info);
      this.r.filled.delete(stage);
      this.r.snapshotSteps.delete(stage);
      this.r.vacant.set(stage, node.nodeId);
      out.push({ type: 'recovery-started', stage, nodeId: node.nodeId, detail });
      out.push({ type: 'log', level: 'warn', msg: `${slotName(this.job, stage)} lost while its replica is out: it joins once a node holds each of its stages`, fields: { nodeId: node.nodeId, detail } });
      this.fillVacancies(out);
      return;
    }
    if (!this.r) {
      const epoch = this.ctx.nextEpoch();
      const away = this.ctx.phase === RunPhase.training ? replicaAway(this.job, stage, this.commits.stages.map((s) => this.members.get(s.nodeId ?? '')?.state ?? null)) : null;
      this.r = freshRecoveryState(epoch, info, this.commits.stepUnderWay, away);
      if (this.ctx.phase === RunPhase.training) {
        for (const n of this.members.all()) {
          if (n.stage === null || n.state === NodeState.lost || n.state === NodeState.stopped || n.state === NodeState.recovering) continue;
          this.members.move(n, NodeState.recovering);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch, reason: `stage ${stage} failed`, resumeAtMost: this.resumeAtMost() } });
          this.r.answers.ask(n.stage, n.nodeId, 'halt', epoch, now);
        }
      }
    } else {
      // Another failure while recovering: start the restore over, with every survivor halted
      // again in a new epoch (some may have been restoring already).
      const r = this.r;
      r.others.push(info);
      r.snapshotSteps.delete(stage);
      r.filled.delete(stage);
      // A live replica lost too while one is out: every replica restores the same step now, the
      // one that is out copying it from a live replica where one is left.
      const restoreAll = r.away !== null && r.away.resumed !== null && r.away.restoringSinceMs === null;
      // Before the others trained on, the replica that was to go out is a survivor like any.
      if (r.away?.resumed === null) r.away = null;
      if (r.decision !== null) {
        r.decision = null;
        r.epoch = this.ctx.nextEpoch();
        r.restarts += 1;
        for (const n of this.members.all()) {
          if (n.stage === null || n.state === NodeState.lost || n.state === NodeState.stopped) continue;
          // A node this recovery placed that has had no assignment since has no stage to halt: it
          // does not answer, and what it holds is known already.
          const unassigned = n.state === NodeState.recovering && r.filled.has(n.stage);
          if (n.state !== NodeState.recovering) this.members.move(n, NodeState.recovering);
          if (!unassigned) r.snapshotSteps.delete(n.stage);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch: r.epoch, reason: `stage ${stage} failed`, resumeAtMost: this.resumeAtMost() } });
          if (!unassigned) r.answers.ask(n.stage, n.nodeId, 'halt', r.epoch, now);
        }
      }
      if (restoreAll) this.awayFlow.restoreAll(r, `${slotName(this.job, stage)} lost while replica ${r.away!.replica} is out`, out);
    }
    this.ctx.setPhase(RunPhase.recovering);
    this.r.vacant.set(stage, node.nodeId);
    out.push({ type: 'recovery-started', stage, nodeId: node.nodeId, detail });
    out.push({ type: 'log', level: 'warn', msg: `recovering stage ${stage} from snapshots`, fields: { nodeId: node.nodeId, detail } });
    this.fillVacancies(out);
  }

  /**
   * The latest step training can resume from: no stage goes on past what a failed stage had
   * completed (its later snapshots were never reported, so never committed).
   */
  private resumeAtMost(): number {
    const r = this.r!;
    // A slot of a replica the others trained on without is not what they wait for.
    const waitedFor = [r.failure, ...r.others].filter((f) => !(r.away?.resumed && r.away.slots.includes(f.stage)));
    if (waitedFor.length === 0) return this.commits.stepUnderWay;
    return Math.min(...waitedFor.map((f) => this.commits.stage(f.stage).lastStep + 1));
  }

  /** A halted survivor says which snapshots it holds and the step its tensors hold; false when no recovery of that epoch is under way. */
  halted(stage: number, epoch: number, snapshotSteps: readonly number[], memoryStep: number, out: Action[]): boolean {
    if (!this.r || epoch !== this.r.epoch) return false;
    this.r.answers.answered(stage);
    this.r.snapshotSteps.set(stage, snapshotSteps);
    this.r.memorySteps.set(stage, memoryStep);
    this.maybeRestore(out);
    return true;
  }

  /** Whether a replica of a slot's stage lives (it is not lost, and its snapshot manager answers). */
  private liveReplicaOf(slot: number, lost: readonly number[]): boolean {
    const away = this.r?.away?.resumed ? this.r.away.slots : [];
    // Slot by slot, not a list of them: this runs for every lost slot at every vacancy filled.
    for (let p = stageOfSlot(this.job, slot); p < this.commits.stages.length; p += this.job.stages) {
      if (p !== slot && !lost.includes(p) && !away.includes(p) && !!this.members.get(this.commits.stage(p).nodeId ?? '')?.smpAddress) return true;
    }
    return false;
  }

  /** The zones of the nodes that hold the other replicas of a slot's stage. */
  private replicaZones(slot: number): Set<string> {
    const others = slotsOfStage(this.job, stageOfSlot(this.job, slot)).filter((s) => s !== slot);
    return new Set(others.map((s) => this.members.get(this.commits.stage(s).nodeId ?? '')?.zone ?? '').filter((z) => z !== ''));
  }

  /**
   * Places a node on each vacant stage. The node that held it comes back when only its worker
   * died (its snapshot manager still answers) and restores locally; when the whole node is gone,
   * a spare or newly joined node takes the stage and rebuilds it from erasure shards.
   */
  fillVacancies(out: Action[]): void {
    const r = this.r;
    if (!r) return;
    // Until every failed node's snapshot manager has been probed, the shards that survive are unknown.
    const probing = this.members.probing();
    /** Vacant stages that wait for a node to join. */
    const waiting: number[] = [];
    // Listed once: a node placed below leaves the list, as it leaves the states listed.
    const candidates = this.members.available(NodeState.registered, NodeState.spare);
    for (const [stage, formerId] of [...r.vacant]) {
      const former = this.members.get(formerId);
      const formerGone = this.members.smpLost(formerId) || !former || former.smpAddress === '';
      // Snapshots play no part when the policy does not use them: any node will do at once.
      const anyNode = this.job.snapshotEvery === 0 || this.job.recovery === 'checkfree' || this.job.recovery === 'checkfree-plus' || this.job.recovery === 'checkpoint';
      const node =
        candidates.find((n) => n.nodeId === formerId) ??
        candidates.find((n) => n.snapshots?.stage === stage) ??
        (((formerGone && !probing) || anyNode) && candidates.length > 0 ? pickForSlot(candidates, this.replicaZones(stage)) : undefined);
      if (!node) {
        if ((formerGone && !probing) || anyNode) waiting.push(stage);
        continue;
      }
      r.vacant.delete(stage);
      candidates.splice(candidates.indexOf(node), 1);
      node.stage = stage;
      this.members.move(node, NodeState.recovering);
      this.commits.stage(stage).nodeId = node.nodeId;
      const local = node.snapshots?.stage === stage ? node.snapshots.steps : [];
      const rebuildable = [...this.shards.rebuildableVersions(stage).keys()].filter((step) => !local.includes(step));
      r.filled.set(stage, local);
      r.snapshotSteps.set(stage, [...local, ...rebuildable]);
      out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid });
      if (node.nodeId !== formerId) {
        out.push({ type: 'log', level: 'info', msg: `stage ${stage} moves from lost node ${formerId} to ${node.nodeId}`, fields: { local, rebuildable } });
      }
    }
    if (waiting.length > 0 && this.failIfHopeless(r, probing, out)) return;
    for (const stage of waiting) {
      if (r.waitingSaid.has(stage)) continue;
      r.waitingSaid.add(stage);
      const meanwhile = r.away ? ' (the other replicas train on meanwhile)' : '';
      out.push({ type: 'notice', level: 'warn', msg: `${slotName(this.job, stage)} is vacant and no spare is left: waiting for a node to join (ftrain node --coordinator HOST:PORT)${meanwhile}` });
    }
    this.maybeRestore(out);
    this.awayFlow.scheduleJoin(out);
    // The others may have paused for the join already, waiting for this slot.
    this.awayFlow.maybeJoin(out);
  }

  /**
   * Before waiting for a node to join: fails the run at once when no node could bring the lost
   * stages back (recoveryOutlook), and says so. Stages whose node may still come back, and
   * survivors that have not said what they hold, count at their best.
   */
  private failIfHopeless(r: RecoveryState, probing: boolean, out: Action[]): boolean {
    const lost = [...new Set([r.failure, ...r.others].map((f) => f.stage))].sort((a, b) => a - b);
    const away = r.away?.resumed ? r.away.slots : [];
    const restorable = this.commits.stages.map((_, s): readonly number[] | null => {
      // A lost slot (or one of a replica that was out) with a live replica: it copies whatever that one holds.
      if ((lost.includes(s) || away.includes(s)) && this.liveReplicaOf(s, lost)) return null;
      const filled = r.filled.get(s);
      if (filled) return [...filled, ...[...this.shards.rebuildableVersions(s).keys()].filter((step) => !filled.includes(step))];
      const formerId = r.vacant.get(s);
      if (formerId === undefined) return null;
      // Only a snapshot manager known lost is gone: a node without one (\`ftrain worker\`) may
      // come back with the snapshots it keeps.
      return !probing && this.members.smpLost(formerId) ? [...this.shards.rebuildableVersions(s).keys()] : null;
    });
    const hopeless = recoveryOutlook({
      policy: this.job.recovery,
      stages: this.job.stages,
      replicas: this.job.replicas,
      lost,
      restorable,
      dataShards: this.shards.code?.dataShards ?? null,
      reported: this.commits.stages.map((s) => s.lastNorms !== null),
      diskTier: this.job.checkpointDir !== null,
      shardShortfall: this.shards.lostShardsDetail(),
    });
    if (hopeless === null) return false;
    out.push({ type: 'log', level: 'error', msg: `recovery by fail (${hopeless.kind}): ${hopeless.text}`, fields: { epoch: this.ctx.epoch } });
    this.ctx.failRun({ nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; ${hopeless.text}`, detectedAtMs: r.failure.detectedAtMs }, out);
    return true;
  }

  /** Once every stage has a node and a list of snapshots, the policy chooses how to go on. */
  private maybeRestore(out: Action[]): void {
    const r = this.r;
    if (!r || r.decision !== null) return;
    if (r.away && r.away.resumed === null && this.awayFlow.trainOnWithout(r, r.away, out)) return;
    if (r.vacant.size > 0 || r.snapshotSteps.size < slotCount(this.job)) return;
    // A replica that was out has nothing of its own to restore: it copies the step from a live replica.
    const awaySlots = r.away?.resumed ? r.away.slots : [];
    this.commits.park([]);
    this.shards.replan(out, false);
    const nodes = this.commits.stages.map((s) => this.members.get(s.nodeId!)!);
    for (const node of nodes) this.members.move(node, NodeState.assigned);
    this.ctx.setPhase(RunPhase.starting);
    const lost = [...new Set([...[r.failure, ...r.others].map((f) => f.stage), ...awaySlots])].sort((a, b) => a - b);
    const aliveShards = (v: ProtectedVersion) => v.holders.filter((h) => this.members.holderAlive(h)).length;
    // Every stage restores what its node holds locally, or what enough live shards rebuild. A
    // survivor's own snapshot of a step can be gone while its shards live on: a worker reuses the
    // slot of a snapshot it does not yet know to be protected everywhere (its shards were still
    // being placed), and then the survivor rebuilds that step from its shards like a lost stage.
    // A replica caught with weights unlike its replicas' restores nothing it took after they last agreed.
    const trusted = (s: number, step: number) => step <= (this.distrusted.get(s) ?? Infinity);
    const held = (s: number) => (awaySlots.includes(s) ? [] : (r.filled.get(s) ?? r.snapshotSteps.get(s) ?? []).filter((step) => trusted(s, step)));
    const fromShards = this.commits.stages.map((_, s) => {
      const local = held(s);
      return new Map([...this.shards.rebuildableVersions(s)].filter(([step]) => !local.includes(step) && trusted(s, step)));
    });
    // A lost slot can copy what a replica of its stage holds in its snapshot manager, steps it does
    // not hold itself: a replica that was not lost (its node and snapshot manager are the ones that
    // reported), or one whose worker came back beside its snapshot manager (what it holds locally).
    const copyable = (p: number) => !awaySlots.includes(p) && (!lost.includes(p) || (r.filled.get(p)?.length ?? 0) > 0);
    const fromReplicas = this.commits.stages.map((_, s) => {
      const found = new Map<number, number>();
      if (!lost.includes(s)) return found;
      for (const p of slotsOfStage(this.job, stageOfSlot(this.job, s))) {
        if (p === s || !copyable(p) || !this.members.get(this.commits.stage(p).nodeId ?? '')?.smpAddress) continue;
        for (const step of held(p)) if (!held(s).includes(step) && !found.has(step)) found.set(step, p);
      }
      return found;
    });
    // Sharded snapshots: a step needs every share, each from the slot that wrote it, or a live
    // replica's tensors (the survivors' memory steps) copied whole.
    const stageSlots = Array.from({ length: this.job.stages }, (_, st) => slotsOfStage(this.job, st));
    const memory = (s: number) => (awaySlots.includes(s) || !trusted(s, r.memorySteps.get(s) ?? -1) ? -1 : (r.memorySteps.get(s) ?? -1));
    const { views, fromMemory } = this.shards.sharesSnapshots
      ? withMemory(shareViews(stageSlots, this.ctx.shareLayout, held, fromShards, lost), stageSlots, memory, lost)
      : { views: { restorable: this.commits.stages.map((_, s) => [...new Set([...held(s), ...fromShards[s]!.keys(), ...fromReplicas[s]!.keys()])]), fromShards, fromReplicas }, fromMemory: new Map<number, ReadonlyMap<number, number>>() };
    const restorable = views.restorable;
    const decision = planRecovery({
      policy: this.job.recovery,
      stages: this.job.stages,
      replicas: this.job.replicas,
      lost,
      restorable,
      fromShards: views.fromShards.map((m) => new Map([...m].map(([step, v]) => [step, aliveShards(v)]))),
      fromReplicas: views.fromReplicas,
      dataShards: this.shards.code?.dataShards ?? null,
      reported: this.commits.stages.map((s) => s.lastNorms !== null),
      diskTier: this.job.checkpointDir !== null,
      shardShortfall: this.shards.lostShardsDetail(),
    });
    const plan = decision.plan;
    out.push({ type: 'log', level: plan.tier === 'fail' ? 'error' : 'info', msg: `recovery by ${plan.tier} (${decision.reason.kind}): ${decision.reason.text}`, fields: { epoch: this.ctx.epoch } });
    if (plan.tier !== 'fail') for (const node of nodes) r.answers.ask(node.stage!, node.nodeId, 'assign', r.epoch, this.nowMs);
    switch (plan.tier) {
      case 'fail':
        this.ctx.failRun({ nodeId: r.failure.nodeId, stage: r.failure.stage, detail: `${r.failure.detail}; ${decision.reason.text}`, detectedAtMs: r.failure.detectedAtMs }, out);
        return;
      case 'disk-checkpoint':
        r.decision = decision;
        out.push({ type: 'notice', level: 'error', msg: `${decision.reason.text} (epoch ${this.ctx.epoch})` });
        this.placement.sendAssignments(nodes, -1, out);
        return;
      case 'checkfree':
      case 'checkfree-plus':
        r.decision = decision;
        this.startCheckfree(r, plan.lost, nodes, out);
        return;
      case 'local-snapshot':
      case 'replica-copy':
      case 'erasure-rebuild': {
        r.decision = decision;
        const step = plan.step;
        this.commits.rollBack(this.ctx.epoch, step, step);
        const orders = new Map<number, RebuildOrder>();
        for (const stage of plan.rebuilt) {
          const v = views.fromShards[stage]!.get(step)!;
          orders.set(stage, { stage, step, epoch: v.epoch, code: this.shards.code!, sources: this.members.shardHolders().map((h) => h.address) });
        }
        const copies = new Map<number, ReplicaCopyOrder>();
        // Shares are gathered by the restoring workers themselves (stage-placement.ts); a state
        // copied from a live replica's tensors comes from its worker.
        for (const [stage, from] of plan.copied) {
          const node = this.members.get(this.commits.stage(from).nodeId!)!;
          if (!this.shards.sharesSnapshots) copies.set(stage, { stage, step, fromStage: from, fromAddress: node.smpAddress });
          else if (fromMemory.get(stage)?.get(step) === from) copies.set(stage, { stage, step, fromStage: from, fromAddress: node.address });
        }
        const inMemory = new Set(this.commits.stages.flatMap((_, s) => (!lost.includes(s) && memory(s) === step ? [s] : [])));
        this.placement.sendAssignments(nodes, step, out, orders, new Map(), copies, null, inMemory);
        r.assignedAtMs = this.nowMs;
        const how =
          (orders.size > 0 ? `; stage(s) ${[...orders.keys()].join(', ')} rebuilt from erasure shards` : '') +
          (copies.size > 0 ? `; stage(s) ${[...copies.keys()].join(', ')} copied from a live replica${this.shards.sharesSnapshots ? "'s tensors" : ''}` : '') +
          (plan.copied.size > copies.size ? `; stage(s) ${[...plan.copied.keys()].filter((s) => !copies.has(s)).join(', ')} gathered from the live replicas' shares` : '');
        out.push({ type: 'log', level: 'info', msg: `restoring every stage to step ${step} (epoch ${this.ctx.epoch})${how}` });
        return;
      }
    }
  }

  /**
   * CheckFree: each lost stage is rebuilt on its new node from its neighbours' weights (or its
   * swap partner's under CheckFree+); the other stages keep theirs, and training goes on from the
   * step after the newest one any stage finished.
   */
  private startCheckfree(r: RecoveryState, lost: readonly number[], nodes: readonly NodeRecord[], out: Action[]): void {
    const fromStep = r.completedAtFailure;
    this.commits.continueWithoutRollBack(this.ctx.epoch, fromStep);
    const { orders, notices } = checkfreeOrders(
      {
        stages: this.job.stages,
        plus: this.job.recovery === 'checkfree-plus',
        learningRateScale: this.job.checkfreeLrScale,
        fromStep,
        source: (stage) => ({ stage, address: this.members.get(this.commits.stage(stage).nodeId!)!.address }),
        clippedGradNorm: (stage) => this.commits.stage(stage).lastNorms!.clippedGradNorm,
      },
      lost,
    );
    for (const msg of notices) out.push({ type: 'notice', level: 'warn', msg });
    this.placement.sendAssignments(nodes, -1, out, new Map(), orders);
  }

  /** The disk tier's rollback, once every stage is ready: to the newest common checkpoint, or to step 0. */
  rollBackToDisk(resume: number | null, out: Action[]): void {
    if (resume === null) {
      out.push({ type: 'notice', level: 'warn', msg: 'no disk checkpoint is held for every stage yet: every stage starts again from its initial weights' });
    }
    const step = resume ?? 0;
    this.commits.rollBack(this.ctx.epoch, step, -1);
    out.push({ type: 'log', level: 'warn', msg: resume === null ? 'every stage starts again from step 0' : `every stage goes back to the disk checkpoint of step ${resume}` });
  }

  /** The run ended (`steps` done) while the others trained on without a replica: its failures are told as survived, the replica out. */
  endedWhileOut(steps: number, now: number, out: Action[]): void {
    if (this.trainingOn) this.complete(steps, now, out, true);
  }

  /** Step `step` completed at `now`: the others training on without a replica have caught up once it is the step under way at the failure. */
  stepCompleted(step: number, now: number): void {
    const away = this.r?.away;
    if (away?.resumed && away.caughtUpAtMs === null && step >= this.r!.completedAtFailure) away.caughtUpAtMs = now;
  }

  /** A stage's worker is ready after an assignment of this recovery, having spent `trace` (when it says). */
  stageReady(stage: number, trace: RestoreTrace | undefined): void {
    this.r?.answers.answered(stage);
    if (trace) this.r?.traces.set(stage, trace);
  }

  /**
   * The halts and assignments of the recovery under way that their node has not answered within
   * `boundMs` (recovery-answers.ts), whose node still holds the slot.
   */
  unanswered(now: number, boundMs: number): Unanswered[] {
    if (!this.r || !this.active) return [];
    return this.r.answers.overdue(now, boundMs).filter((u) => this.commits.stage(u.slot).nodeId === u.nodeId && this.members.live(u.nodeId) !== undefined);
  }

  /** How many halts and assignments of the recovery under way wait for their node's answer. */
  get awaitedAnswers(): number {
    return this.r?.answers.size ?? 0;
  }

  /** Times the recovery under way started over after its plan went out (a node lost before every stage was ready); 0 when none is. */
  get restarts(): number {
    return this.r?.restarts ?? 0;
  }

  /** Training resumed from `fromStep` at `now`: each failure of this recovery is recovered. */
  complete(fromStep: number, now: number, out: Action[], endedOut = false): void {
    const r = this.r;
    if (!r) return;
    const away = r.away;
    if (away && away.resumed === null && !endedOut) {
      // The others train on; the failure is recovered once the replica that is out joins.
      away.resumed = { step: fromStep, atMs: now };
      r.restarts = 0;
      out.push({ type: 'log', level: 'info', msg: `training goes on from step ${fromStep} without replica ${away.replica}`, fields: { resumedAfterMs: now - (r.failure.failedAtMs ?? r.failure.detectedAtMs) } });
      this.awayFlow.scheduleJoin(out);
      return;
    }
    const end = { decision: r.decision, completedAtFailure: r.completedAtFailure, traces: r.traces, assignedAtMs: r.assignedAtMs, away, fromStep, now, endedOut };
    for (const f of [r.failure, ...r.others]) {
      const { record, failedAtMs, resumedAtMs } = recoveredRecord(end, f);
      const caughtUpAtMs = record.trainedOn ? away?.caughtUpAtMs : undefined;
      const failure: RecoveredFailure = this.failures.recover(record, failedAtMs, resumedAtMs, caughtUpAtMs ?? undefined);
      out.push({ type: 'recovered', failure });
      out.push({ type: 'log', level: 'info', msg: 'recovered', fields: { ...failure } });
    }
    this.r = null;
    this.distrusted.clear();
  }
}
