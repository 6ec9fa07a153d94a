// The recovery choice: one pure function from what survives to the cheapest lossless tier, with
// the reason in words. Nothing here changes state; recovery.ts carries the plan out.
//
//   local-snapshot   every stage holds a common step in its snapshot manager
//   replica-copy     the same, some lost stages copied from a live replica's snapshot (--replicas)
//   erasure-rebuild  the same, some lost stages rebuilt from erasure shards on peers
//   checkfree        lost intermediate stages averaged from their neighbours (no rollback)
//   checkfree-plus   lost stages copied from their swap partner, edges included (no rollback)
//   disk-checkpoint  every stage back to the newest disk checkpoint (or to step 0)
//   fail             nothing can bring the run back

import { swapPartner } from '../../domain/pipeline-route.ts';
import type { RecoveryPolicy } from '../../domain/job-options.ts';
import type { SnapshotEvery } from '../../domain/snapshot-schedule.ts';

/** What the choice looks at, once every stage has a node and a list of restorable steps. */
export interface RecoveryView {
  readonly policy: RecoveryPolicy;
  readonly stages: number;
  /** Replicas of the pipeline: with more than one, the lists below are by slot (domain/replica-slots.ts). */
  readonly replicas: number;
  /** Stages whose node was lost, in order. */
  readonly lost: readonly number[];
  /** Per stage: the snapshot steps it can restore, locally or from enough erasure shards. */
  readonly restorable: readonly (readonly number[])[];
  /** Per stage: the steps of `restorable` that only erasure shards hold, with the live shard count. */
  readonly fromShards: readonly ReadonlyMap<number, number>[];
  /**
   * Per stage slot: the steps of `restorable` it does not hold itself that a live replica of the
   * stage holds, with that replica's slot (copied, not decoded: preferred to shards). Empty lists
   * with one replica.
   */
  readonly fromReplicas: readonly ReadonlyMap<number, number>[];
  /** k of the erasure code, or null without erasure coding. */
  readonly dataShards: number | null;
  /** Per stage: whether it has reported a step (CheckFree needs its gradient norm). */
  readonly reported: readonly boolean[];
  /** A disk checkpoint directory is set. */
  readonly diskTier: boolean;
  /** Why shards fall short, for the failure message (`; stage 1 step 4: 1 of the 2 shards needed survive`). */
  readonly shardShortfall: string;
}

export type RecoveryPlan =
  /**
   * Every stage restores `step`; `rebuilt` lists the stages that rebuild it from shards first,
   * `copied` those that copy it from a live replica first (with the replica's slot).
   */
  | {
      readonly tier: 'local-snapshot' | 'replica-copy' | 'erasure-rebuild';
      readonly step: number;
      readonly rebuilt: readonly number[];
      readonly copied: ReadonlyMap<number, number>;
    }
  | { readonly tier: 'checkfree' | 'checkfree-plus'; readonly lost: readonly number[] }
  | { readonly tier: 'disk-checkpoint' }
  | { readonly tier: 'fail' };

export const ReasonKind = {
  /** Every stage holds the step (the reason says from where). */
  commonSnapshot: 'common-snapshot',
  /** `--recovery` forces this tier. */
  policy: 'policy',
  /** No snapshot step is held by every stage. */
  noCommonSnapshot: 'no-common-snapshot',
  /** CheckFree can rebuild the lost stages. */
  checkfreeCan: 'checkfree-can',
  /** CheckFree cannot, and the policy allows nothing else. */
  checkfreeCannot: 'checkfree-cannot',
  /** A lost stage's node is gone and nothing is left to rebuild it from, whichever node takes it. */
  nothingToRebuild: 'nothing-to-rebuild',
} as const;
export type ReasonKind = (typeof ReasonKind)[keyof typeof ReasonKind];

export interface RecoveryDecision {
  readonly plan: RecoveryPlan;
  readonly reason: { readonly kind: ReasonKind; readonly text: string };
  /** For disk-checkpoint and fail: why the snapshot tiers could not be used (the report shows it). */
  readonly fallback: string | null;
}

/** Why CheckFree (or CheckFree+ under that policy) cannot rebuild these lost stages, or null when it can. */
export function checkfreeObstacle(policy: RecoveryPolicy, stages: number, lost: readonly number[], reported: readonly boolean[], replicas = 1): string | null {
  if (replicas > 1) return 'CheckFree would rebuild a stage unlike its live replicas (--replicas)';
  if (policy === 'checkfree-plus') {
    for (const stage of lost) {
      const partner = swapPartner(stages, stage);
      const sources = partner === null ? [stage - 1, stage + 1] : [partner];
      const gone = sources.find((s) => lost.includes(s));
      if (gone !== undefined) {
        return partner === null
          ? `CheckFree+ cannot rebuild stage ${stage}: it averages stages ${stage - 1} and ${stage + 1}, and stage ${gone} is lost too`
          : `CheckFree+ cannot rebuild stage ${stage}: it copies its swap partner, stage ${partner}, which is lost too`;
      }
      const unknown = partner === null ? sources.find((s) => !reported[s]) : undefined;
      if (unknown !== undefined) return `CheckFree+ needs the gradient norm of stage ${unknown}, which has not reported a step yet`;
    }
    return null;
  }
  const last = stages - 1;
  const edge = lost.filter((s) => s === 0 || s === last);
  if (edge.length > 0) return `CheckFree cannot rebuild ${edge.map((s) => (s === 0 ? 'stage 0 (the embedding)' : `stage ${s} (the last, with the head)`)).join(' or ')}: it averages the two neighbours of an intermediate stage`;
  const adjacent = lost.find((s) => lost.includes(s + 1));
  if (adjacent !== undefined) return `CheckFree cannot rebuild neighbouring stages ${adjacent} and ${adjacent + 1} together: each needs the other's weights`;
  const unknown = lost.find((s) => !reported[s - 1] || !reported[s + 1]);
  if (unknown !== undefined) return `CheckFree needs the gradient norms of stage ${unknown}'s neighbours, which have not reported a step yet`;
  return null;
}

/**
 * Whether a lost stage can come back at all when snapshots are off: only CheckFree (an
 * intermediate stage, or any under CheckFree+) or a disk checkpoint can. Null when it can; else
 * why not, for the failure message.
 */
export function unrecoverable(
  job: { readonly snapshotEvery: SnapshotEvery; readonly checkpointDir: string | null; readonly recovery: RecoveryPolicy; readonly stages: number; readonly replicas: number },
  stage: number,
  reported: readonly boolean[],
): string | null {
  const checkfreeCan = job.replicas === 1 && (job.recovery === 'checkfree-plus' || (job.recovery !== 'snapshot' && job.recovery !== 'checkpoint' && stage > 0 && stage < job.stages - 1));
  if (job.snapshotEvery !== 0 || job.checkpointDir !== null || checkfreeCan) return null;
  const checkfree =
    job.recovery === 'auto' || job.recovery === 'checkfree'
      ? (checkfreeObstacle(job.recovery, job.stages, [stage], reported, job.replicas) ?? 'CheckFree cannot rebuild it')
      : `--recovery ${job.recovery} rules out CheckFree`;
  return `nothing can bring stage ${stage} back: snapshots are off (--snapshot-every 0), there is no disk checkpoint (--checkpoint-dir), and ${checkfree}`;
}

/** The cheapest tier that brings every lost stage back without loss, and why. */
export function planRecovery(v: RecoveryView): RecoveryDecision {
  const lists = v.restorable.map((steps) => new Set(steps));
  const common = [...lists[0]!].filter((step) => lists.every((l) => l.has(step)));
  const toDisk = (kind: ReasonKind, why: string): RecoveryDecision =>
    v.diskTier
      ? { plan: { tier: 'disk-checkpoint' }, reason: { kind, text: `${why}: falling back to the newest disk checkpoint` }, fallback: why }
      : { plan: { tier: 'fail' }, reason: { kind, text: `${why}; no disk checkpoint to fall back to (--checkpoint-dir)` }, fallback: why };
  if (v.policy === 'checkpoint') return toDisk(ReasonKind.policy, '--recovery checkpoint');
  if (v.policy === 'checkfree' || v.policy === 'checkfree-plus' || (common.length === 0 && v.policy === 'auto')) {
    const cannot = checkfreeObstacle(v.policy, v.stages, v.lost, v.reported, v.replicas);
    if (cannot === null) {
      const tier = v.policy === 'checkfree-plus' ? 'checkfree-plus' : 'checkfree';
      const why = v.policy === 'auto' ? 'no snapshot step is held by every stage, and CheckFree can rebuild the lost stages' : `--recovery ${v.policy}`;
      return { plan: { tier, lost: v.lost }, reason: { kind: v.policy === 'auto' ? ReasonKind.checkfreeCan : ReasonKind.policy, text: why }, fallback: null };
    }
    if (v.policy !== 'auto') return toDisk(ReasonKind.checkfreeCannot, cannot);
  }
  if (common.length === 0) {
    const have = lists.map((l, s) => `stage ${s}: [${[...l].join(', ')}]`).join('; ');
    const checkfree = v.policy === 'auto' ? `; ${checkfreeObstacle(v.policy, v.stages, v.lost, v.reported, v.replicas)}` : '';
    const why = `no snapshot step is held by every stage, locally or in enough erasure shards (${have})${v.shardShortfall}${checkfree}`;
    if (v.policy === 'snapshot') return { plan: { tier: 'fail' }, reason: { kind: ReasonKind.noCommonSnapshot, text: `${why} (--recovery snapshot)` }, fallback: why };
    return toDisk(ReasonKind.noCommonSnapshot, why);
  }
  const step = Math.max(...common);
  const copied = new Map(v.fromReplicas.flatMap((m, stage) => (m.has(step) ? [[stage, m.get(step)!] as const] : [])));
  const rebuilt = v.fromShards.flatMap((m, stage) => (m.has(step) && !copied.has(stage) ? [stage] : []));
  const from = [
    ...[...copied].map(([s, replica]) => `stage ${s} copied from its replica, stage ${replica}`),
    ...rebuilt.map((s) => `stage ${s} from ${v.fromShards[s]!.get(step)} live shards (k=${v.dataShards})`),
  ];
  const text = `every stage holds step ${step}${from.length > 0 ? `; ${from.join(', ')}` : ' in its snapshot manager'}`;
  const tier = rebuilt.length > 0 ? 'erasure-rebuild' : copied.size > 0 ? 'replica-copy' : 'local-snapshot';
  return { plan: { tier, step, rebuilt, copied }, reason: { kind: ReasonKind.commonSnapshot, text }, fallback: null };
}

/**
 * What a recovery still waiting for nodes could restore. Known lists are final (a stage whose
 * node is gone has only what enough live erasure shards rebuild, a returned node its own
 * snapshots); a stage not known yet (a survivor that has not said, a node that may come back) is
 * taken at its best: it could hold any step.
 */
export interface OutlookView {
  readonly policy: RecoveryPolicy;
  readonly stages: number;
  readonly replicas: number;
  /** Every stage lost in this recovery, in order. */
  readonly lost: readonly number[];
  /** Per stage: the steps it can restore once a node takes it, or null when not known yet. */
  readonly restorable: readonly (readonly number[] | null)[];
  /** k of the erasure code, or null without erasure coding. */
  readonly dataShards: number | null;
  readonly reported: readonly boolean[];
  readonly diskTier: boolean;
  /** Why shards fall short (`; stage 1 step 4: 1 of the 2 shards needed survive`, `; erasure coding is off (...)`). */
  readonly shardShortfall: string;
}

/**
 * Whether waiting for nodes can still end in a recovery: null when some outcome of the wait
 * lets planRecovery bring every stage back; else why not and what would have saved the run
 * (kind `nothing-to-rebuild`), so the run can fail at once instead of waiting for a node that
 * could not help. planRecovery is the judge, on the best case of every stage not known yet.
 */
export function recoveryOutlook(v: OutlookView): { readonly kind: ReasonKind; readonly text: string } | null {
  const known = v.restorable.filter((r): r is readonly number[] => r !== null);
  if (known.length === 0) return null;
  const any = [...new Set(known.flat())];
  const best = v.restorable.map((r) => r ?? any);
  const decision = planRecovery({
    policy: v.policy,
    stages: v.stages,
    replicas: v.replicas,
    lost: v.lost,
    restorable: best,
    fromShards: best.map(() => new Map()),
    fromReplicas: best.map(() => new Map()),
    dataShards: v.dataShards,
    reported: v.reported,
    diskTier: v.diskTier,
    shardShortfall: v.shardShortfall,
  });
  if (decision.plan.tier !== 'fail') return null;
  const gone = v.lost.filter((s) => v.restorable[s] !== null && v.restorable[s]!.length === 0);
  const which = gone.length > 0 ? gone : v.lost;
  const stages = `stage${which.length > 1 ? 's' : ''} ${which.join(', ')}`;
  const snapshots =
    v.policy === 'checkfree' || v.policy === 'checkfree-plus' || v.policy === 'checkpoint'
      ? `--recovery ${v.policy} uses no snapshots`
      : `no snapshot of ${stages} is left to restore or rebuild${v.shardShortfall === '' ? '' : `: ${v.shardShortfall.replace(/^; /, '')}`}`;
  const checkfree =
    v.policy === 'auto' || v.policy === 'checkfree' || v.policy === 'checkfree-plus'
      ? (checkfreeObstacle(v.policy, v.stages, v.lost, v.reported, v.replicas) ?? 'CheckFree cannot rebuild it')
      : `--recovery ${v.policy} rules out CheckFree`;
  const disk = v.policy === 'snapshot' ? '--recovery snapshot rules out the disk tier' : 'there is no disk checkpoint (--checkpoint-dir)';
  const saved = [
    v.dataShards === null ? 'erasure shards on other nodes (--ec, 3 or more nodes: add --spares)' : 'more parity shards (--ec K,M with a larger M)',
    v.policy === 'snapshot' ? '--recovery auto with --checkpoint-dir DIR' : 'a disk checkpoint (--checkpoint-dir DIR)',
  ];
  return {
    kind: ReasonKind.nothingToRebuild,
    text: `nothing can bring ${stages} back, whichever node joins: ${snapshots}; ${checkfree}; ${disk}; ${saved.join(' or ')} would have saved the run`,
  };
}
