// A recovery under way, from the first failure to training again: halt the survivors, put a node
// on each vacant stage (the node that held it when only its worker died, else a spare or a newly
// joined node), collect what every stage can restore, let the policy choose the tier
// (recovery-policy.ts), send the assignments, and, once every stage is ready, say how each
// failure was recovered.

import { checkfreeWeights, type CheckfreeOrder } from '../../domain/checkfree.ts';
import type { ProtectedVersion, RebuildOrder, ReplicaCopyOrder } from '../../domain/erasure-protection.ts';
import type { RestoreTrace } from '../../domain/node-reports.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { swapPartner } from '../../domain/pipeline-route.ts';
import { NodeState, RunPhase, type Failure, type RecoveredFailure, type RecoveryMethod, type RecoveryPhases } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { FailureInfo, FailureLog } from './failure-log.ts';
import type { Membership, NodeRecord } from './membership.ts';
import { planRecovery, recoveryOutlook, type RecoveryDecision } from './recovery-policy.ts';
import type { ShardPlacement } from './shard-placement.ts';
import type { StagePlacement } from './stage-placement.ts';
import { slotCount, slotsOfStage, stageOfSlot } from '../../domain/replica-slots.ts';
import { pickForSlot } from '../../domain/zones.ts';

/** What the recovery needs from the rest of the core. */
export interface RecoveryContext {
  readonly phase: RunPhase;
  setPhase(to: RunPhase): void;
  readonly epoch: number;
  /** Starts a new epoch: traffic of the old one is refused from now on. */
  nextEpoch(): number;
  failRun(failure: Failure, out: Action[]): void;
}

interface RecoveryState {
  epoch: number;
  /** Stages without a node, and the node that held each. */
  readonly vacant: Map<number, string>;
  /**
   * Stages placed on a node of their own (a returning worker or a node that takes over), with the
   * snapshot steps that node holds locally. What shards can rebuild is worked out when the plan is
   * chosen: holders found lost meanwhile no longer count.
   */
  readonly filled: Map<number, readonly number[]>;
  /** What each stage can restore: its halted report, or its new node's snapshots and shards. */
  readonly snapshotSteps: Map<number, readonly number[]>;
  readonly failure: FailureInfo;
  /** Further failures during the same recovery (several nodes lost at once). */
  readonly others: FailureInfo[];
  readonly completedAtFailure: number;
  /** The plan in force once chosen; null while stages are still vacant or unreported. */
  decision: RecoveryDecision | null;
  /** Vacant stages for which the run has said it waits for a node. */
  readonly waitingSaid: Set<number>;
  /** When the assignments of the plan went out; null before. */
  assignedAtMs: number | null;
  /** Each stage's worker trace from its assignment to ready. */
  readonly traces: Map<number, RestoreTrace>;
}

export class Recovery {
  private r: RecoveryState | null = null;
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
  ) {}

  get active(): boolean {
    return this.r !== null;
  }

  /** The recovery restores from the disk tier (the start must load checkpoints). */
  get toDisk(): boolean {
    return this.r?.decision?.plan.tier === 'disk-checkpoint';
  }

  /** The failure a recovery under way is for (the first, when several nodes went at once); null when none is. */
  current(): { stage: number; nodeId: string; detail: string; atMs: number } | null {
    const f = this.r?.failure;
    return f ? { stage: f.stage, nodeId: f.nodeId, detail: f.detail, atMs: f.detectedAtMs } : null;
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

  /** A placed node failed: its stage is vacant; every survivor halts (again, if a restore was under way). */
  begin(node: NodeRecord, detail: string, now: number, out: Action[], kind: string): void {
    const stage = node.stage!;
    node.stage = null;
    this.commits.stage(stage).nodeId = null;
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
    if (!this.r) {
      const epoch = this.ctx.nextEpoch();
      this.r = {
        epoch,
        vacant: new Map(),
        snapshotSteps: new Map(),
        filled: new Map(),
        failure: info,
        others: [],
        completedAtFailure: this.commits.stepUnderWay,
        decision: null,
        waitingSaid: new Set(),
        assignedAtMs: null,
        traces: new Map(),
      };
      if (this.ctx.phase === RunPhase.training) {
        for (const n of this.members.all()) {
          if (n.stage === null || n.state === NodeState.lost || n.state === NodeState.stopped || n.state === NodeState.recovering) continue;
          this.members.move(n, NodeState.recovering);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch, reason: `stage ${stage} failed`, resumeAtMost: this.resumeAtMost() } });
        }
      }
    } else {
      // Another failure while recovering: start the restore over, with every survivor halted
      // again in a new epoch (some may have been restoring already).
      const r = this.r;
      r.others.push(info);
      r.snapshotSteps.delete(stage);
      r.filled.delete(stage);
      if (r.decision !== null) {
        r.decision = null;
        r.epoch = this.ctx.nextEpoch();
        for (const n of this.members.all()) {
          if (n.stage === null || n.state === NodeState.lost || n.state === NodeState.stopped) continue;
          if (n.state !== NodeState.recovering) this.members.move(n, NodeState.recovering);
          r.snapshotSteps.delete(n.stage);
          out.push({ type: 'send', nodeId: n.nodeId, command: { kind: 'halt', epoch: r.epoch, reason: `stage ${stage} failed`, resumeAtMost: this.resumeAtMost() } });
        }
      }
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
    return Math.min(...[r.failure, ...r.others].map((f) => this.commits.stage(f.stage).lastStep + 1));
  }

  /** A halted survivor says which snapshots it holds; false when no recovery of that epoch is under way. */
  halted(stage: number, epoch: number, snapshotSteps: readonly number[], out: Action[]): boolean {
    if (!this.r || epoch !== this.r.epoch) return false;
    this.r.snapshotSteps.set(stage, snapshotSteps);
    this.maybeRestore(out);
    return true;
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
    for (const [stage, formerId] of [...r.vacant]) {
      const candidates = this.members.available(NodeState.registered, NodeState.spare);
      const former = this.members.get(formerId);
      const formerGone = this.members.smpLost(formerId) || !former || former.smpAddress === '';
      // Snapshots play no part when the policy does not use them: any node will do at once.
      const anyNode = this.job.snapshotEvery === 0 || this.job.recovery === 'checkfree' || this.job.recovery === 'checkfree-plus' || this.job.recovery === 'checkpoint';
      const node =
        candidates.find((n) => n.nodeId === formerId) ??
        candidates.find((n) => n.snapshots?.stage === stage) ??
        ((formerGone && !probing) || anyNode ? pickForSlot(candidates, this.replicaZones(stage)) : undefined);
      if (!node) {
        if ((formerGone && !probing) || anyNode) waiting.push(stage);
        continue;
      }
      r.vacant.delete(stage);
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
      out.push({ type: 'notice', level: 'warn', msg: `stage ${stage} is vacant and no spare is left: waiting for a node to join (ftrain node --coordinator HOST:PORT)` });
    }
    this.maybeRestore(out);
  }

  /**
   * Before waiting for a node to join: fails the run at once when no node could bring the lost
   * stages back (recoveryOutlook), and says so. Stages whose node may still come back, and
   * survivors that have not said what they hold, count at their best.
   */
  private failIfHopeless(r: RecoveryState, probing: boolean, out: Action[]): boolean {
    const lost = [...new Set([r.failure, ...r.others].map((f) => f.stage))].sort((a, b) => a - b);
    const restorable = this.commits.stages.map((_, s): readonly number[] | null => {
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
    if (!r || r.decision !== null || r.vacant.size > 0 || r.snapshotSteps.size < slotCount(this.job)) return;
    this.shards.replan(out, false);
    const nodes = this.commits.stages.map((s) => this.members.get(s.nodeId!)!);
    for (const node of nodes) this.members.move(node, NodeState.assigned);
    this.ctx.setPhase(RunPhase.starting);
    const lost = [...new Set([r.failure, ...r.others].map((f) => f.stage))].sort((a, b) => a - b);
    const aliveShards = (v: ProtectedVersion) => v.holders.filter((h) => this.members.holderAlive(h)).length;
    // Every stage restores what its node holds locally, or what enough live shards rebuild. A
    // survivor's own snapshot of a step can be gone while its shards live on: a worker reuses the
    // slot of a snapshot it does not yet know to be protected everywhere (its shards were still
    // being placed), and then the survivor rebuilds that step from its shards like a lost stage.
    // A replica caught with weights unlike its replicas' restores nothing it took after they last agreed.
    const trusted = (s: number, step: number) => step <= (this.distrusted.get(s) ?? Infinity);
    const held = (s: number) => (r.filled.get(s) ?? r.snapshotSteps.get(s) ?? []).filter((step) => trusted(s, step));
    const fromShards = this.commits.stages.map((_, s) => {
      const local = held(s);
      return new Map([...this.shards.rebuildableVersions(s)].filter(([step]) => !local.includes(step) && trusted(s, step)));
    });
    // A lost slot can copy what a live replica of its stage holds (that replica was not lost, so
    // its node and snapshot manager are the ones that reported): steps it does not hold itself.
    const fromReplicas = this.commits.stages.map((_, s) => {
      const found = new Map<number, number>();
      if (!lost.includes(s)) return found;
      for (const p of slotsOfStage(this.job, stageOfSlot(this.job, s))) {
        if (p === s || lost.includes(p) || !this.members.get(this.commits.stage(p).nodeId ?? '')?.smpAddress) continue;
        for (const step of held(p)) if (!held(s).includes(step) && !found.has(step)) found.set(step, p);
      }
      return found;
    });
    const restorable = this.commits.stages.map((_, s) => [...new Set([...held(s), ...fromShards[s]!.keys(), ...fromReplicas[s]!.keys()])]);
    const decision = planRecovery({
      policy: this.job.recovery,
      stages: this.job.stages,
      replicas: this.job.replicas,
      lost,
      restorable,
      fromShards: fromShards.map((m) => new Map([...m].map(([step, v]) => [step, aliveShards(v)]))),
      fromReplicas,
      dataShards: this.shards.code?.dataShards ?? null,
      reported: this.commits.stages.map((s) => s.lastNorms !== null),
      diskTier: this.job.checkpointDir !== null,
      shardShortfall: this.shards.lostShardsDetail(),
    });
    const plan = decision.plan;
    out.push({ type: 'log', level: plan.tier === 'fail' ? 'error' : 'info', msg: `recovery by ${plan.tier} (${decision.reason.kind}): ${decision.reason.text}`, fields: { epoch: this.ctx.epoch } });
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
          const v = fromShards[stage]!.get(step)!;
          orders.set(stage, { stage, step, epoch: v.epoch, code: this.shards.code!, sources: this.members.shardHolders().map((h) => h.address) });
        }
        const copies = new Map<number, ReplicaCopyOrder>();
        for (const [stage, from] of plan.copied) {
          copies.set(stage, { stage, step, fromStage: from, fromAddress: this.members.get(this.commits.stage(from).nodeId!)!.smpAddress });
        }
        this.placement.sendAssignments(nodes, step, out, orders, new Map(), copies);
        r.assignedAtMs = this.nowMs;
        const how =
          (orders.size > 0 ? `; stage(s) ${[...orders.keys()].join(', ')} rebuilt from erasure shards` : '') +
          (copies.size > 0 ? `; stage(s) ${[...copies.keys()].join(', ')} copied from a live replica` : '');
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
    const orders = new Map<number, CheckfreeOrder>();
    const plus = this.job.recovery === 'checkfree-plus';
    const scale = this.job.checkfreeLrScale;
    const source = (stage: number) => ({ stage, address: this.members.get(this.commits.stage(stage).nodeId!)!.address });
    for (const stage of lost) {
      const partner = plus ? swapPartner(this.job.stages, stage) : null;
      if (partner !== null) {
        orders.set(stage, { kind: 'copy', from: source(partner), learningRateScale: scale });
        const edge = stage === 0 ? ' and its embedding from the copy stage 1 keeps' : stage === this.job.stages - 1 ? ` and its head from the copy stage ${partner} keeps` : '';
        out.push({
          type: 'notice',
          level: 'warn',
          msg: `CheckFree+: stage ${stage} rebuilt with the blocks of its swap partner (stage ${partner})${edge}, learning rate x${scale}; the other stages keep their weights; training goes on from step ${fromStep}`,
        });
        continue;
      }
      const prev = this.commits.stage(stage - 1).lastNorms!;
      const next = this.commits.stage(stage + 1).lastNorms!;
      const weights = checkfreeWeights(next.clippedGradNorm, prev.clippedGradNorm);
      orders.set(stage, { kind: 'average', prev: source(stage - 1), next: source(stage + 1), weights, learningRateScale: scale });
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `${plus ? 'CheckFree+' : 'CheckFree'}: stage ${stage} rebuilt from stages ${stage - 1} and ${stage + 1} (weights ${weights.b.toFixed(4)} : ${weights.a.toFixed(4)}), learning rate x${scale}; the other stages keep their weights; training goes on from step ${fromStep}`,
      });
    }
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

  /** A stage's worker is ready after an assignment of this recovery, having spent `trace`. */
  stageReady(stage: number, trace: RestoreTrace): void {
    this.r?.traces.set(stage, trace);
  }

  /** The phases of one failure of the recovery now complete, from the workers' traces; null without them. */
  private phases(r: RecoveryState, f: FailureInfo, now: number): RecoveryPhases | null {
    const own = r.traces.get(f.stage);
    if (r.assignedAtMs === null || !own) return null;
    const failedAt = f.failedAtMs ?? f.detectedAtMs;
    const others = [...r.traces].filter(([stage]) => stage !== f.stage).map(([, t]) => t.restoreMs);
    return {
      detectMs: f.detectedAtMs - failedAt,
      replaceMs: r.assignedAtMs - f.detectedAtMs,
      readyMs: now - r.assignedAtMs,
      buildMs: own.buildMs,
      fetchMs: own.rebuildFetchMs,
      decodeMs: own.rebuildDecodeMs,
      commitMs: Math.max(0, own.rebuildMs - own.rebuildFetchMs - own.rebuildDecodeMs),
      restoreMs: own.restoreMs,
      prepareMs: own.prepareMs,
      connectMs: own.connectMs,
      rollbackMs: others.length > 0 ? Math.max(...others) : 0,
      firstStepMs: null,
    };
  }

  /** Training resumed from `fromStep` at `now`: each failure of this recovery is recovered. */
  complete(fromStep: number, now: number, out: Action[]): void {
    const r = this.r;
    if (!r) return;
    const plan = r.decision?.plan;
    for (const f of [r.failure, ...r.others]) {
      const method: RecoveryMethod =
        plan?.tier === 'disk-checkpoint'
          ? 'disk-checkpoint'
          : plan?.tier === 'checkfree' || plan?.tier === 'checkfree-plus'
            ? plan.tier
            : plan?.tier === 'erasure-rebuild' && plan.rebuilt.includes(f.stage)
              ? 'erasure-rebuild'
              : (plan?.tier === 'erasure-rebuild' || plan?.tier === 'replica-copy') && plan.copied.has(f.stage)
                ? 'replica-copy'
                : 'local-snapshot';
      const fallback = r.decision?.fallback ?? null;
      const phases = this.phases(r, f, now);
      const failure: RecoveredFailure = this.failures.recover(
        {
          step: r.completedAtFailure,
          stage: f.stage,
          nodeId: f.nodeId,
          kind: f.kind,
          method,
          detail: fallback ? `${f.detail}; ${fallback}` : f.detail,
          detectMs: f.failedAtMs === null ? null : f.detectedAtMs - f.failedAtMs,
          detectedAtMs: f.detectedAtMs,
          recoverMs: now - (f.failedAtMs ?? f.detectedAtMs),
          handoverMs: f.handoverMs,
          lostSteps: r.completedAtFailure - fromStep,
          restoredStep: fromStep,
          ...(phases ? { phases } : {}),
        },
        f.failedAtMs ?? f.detectedAtMs,
        now,
      );
      out.push({ type: 'recovered', failure });
      out.push({ type: 'log', level: 'info', msg: 'recovered', fields: { ...failure } });
    }
    this.r = null;
    this.distrusted.clear();
  }
}
