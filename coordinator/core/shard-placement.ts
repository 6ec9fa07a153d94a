// Erasure coding in a run: the code chosen at the first assignment, where each stage's shards go
// (re-placed when membership changes), which versions of a stage enough live holders can still
// rebuild, and the shard memory each node's snapshot manager holds for others.

import { chooseErasureCode, describeCode, placeShards, shardsPlaced, type ErasureCode, type Placement, type ProtectedVersion, type ProtectionPlan } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import type { Action } from './core-events.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Membership, NodeRecord } from './membership.ts';
import { survivability } from './survivability.ts';

export class ShardPlacement {
  code: ErasureCode | null = null;
  placement: Placement | null = null;
  /** Why there is no code (`--ec off`, too few nodes, snapshots off). */
  disabledReason: string | null = null;
  /** Bytes held for other nodes' stages, by node id, as their managers last said. */
  readonly heldBytes = new Map<string, number>();

  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
  ) {}

  /** The plan of a stage, or null without erasure coding. */
  plan(stage: number): ProtectionPlan | null {
    return this.placement?.plans.get(stage) ?? null;
  }

  /** The code chosen (the placement follows from it and the membership), as the store keeps it. */
  durable(): { code: ErasureCode | null; disabledReason: string | null } {
    return { code: this.code, disabledReason: this.disabledReason };
  }

  /** Takes a stored code over and places the shards again from the membership restored beside it. */
  restore(d: { readonly code: ErasureCode | null; readonly disabledReason: string | null }): void {
    this.code = d.code;
    this.disabledReason = d.disabledReason;
    this.placement = null;
    if (this.code) this.replan([], false);
  }

  /**
   * Whether each replica snapshots only its share of its stage (`--snapshot-shares`): only with
   * an erasure code, which is what rebuilds a lost node's share.
   */
  get sharesSnapshots(): boolean {
    return this.job.snapshotShares && this.code !== null;
  }

  chooseCode(nodes: readonly NodeRecord[], out: Action[]): void {
    const withSmp = nodes.filter((n) => n.smpAddress !== '');
    const choice = chooseErasureCode(this.job.ec, this.job.snapshotEvery, nodes.length, nodes.length - withSmp.length);
    this.code = choice.code;
    this.disabledReason = choice.reason;
    if (this.code) {
      const { dataShards: k, parityShards: m } = this.code;
      const losses = survivability(this.job, nodes.length).nodeLossesWithoutDisk;
      out.push({
        type: 'notice',
        level: 'info',
        msg: `erasure coding ${describeCode(this.code)} over ${nodes.length} nodes: each snapshot in ${k + m} shards on ${k + m} other nodes, ${((k + m) / k).toFixed(2)}x its size in peers' RAM; ${losses === 'any' ? 'any number of node losses at once are' : `any ${losses} node loss${losses === 1 ? ' at once is' : 'es at once are'}`} recovered from memory`,
      });
    } else {
      out.push({ type: 'notice', level: 'warn', msg: `no erasure coding: ${this.disabledReason}; ${withoutShards(this.job)}` });
    }
  }

  /** Recomputes where each stage's shards go; `send` also tells the stage nodes whose plan changed. */
  replan(out: Action[], send: boolean): void {
    const code = this.code;
    if (!code) return;
    const owners = new Map<number, string>();
    this.commits.stages.forEach((st, stage) => {
      if (st.nodeId) owners.set(stage, st.nodeId);
    });
    const before = this.placement;
    const holders = this.members.shardHolders();
    const placement = placeShards(owners, holders, code, (nodeId) => this.members.get(nodeId)?.zone ?? '');
    this.placement = placement;
    if (placement.unspread.length > 0 && JSON.stringify(placement.unspread) !== JSON.stringify(before?.unspread ?? [])) {
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `too few zones to spread every snapshot's shards: a zone holds more than ${code.parityShards} of the ${code.dataShards + code.parityShards} shards of stage(s) ${placement.unspread.join(', ')}, so losing that zone leaves erasure coding unable to rebuild them (a live replica or an older tier still can)`,
      });
    }
    const n = code.dataShards + code.parityShards;
    if (placement.degraded && !before?.degraded) {
      const others = holders.length - 1;
      const placed = shardsPlaced(code, others);
      const parity = placed - code.dataShards;
      const where =
        others >= code.dataShards
          ? `each snapshot in ${placed} shard${placed === 1 ? '' : 's'} on as many distinct nodes, ${parity > 0 ? `${parity} of them parity` : 'no parity'}`
          : `each snapshot's ${code.dataShards} data shards on ${others} node${others === 1 ? '' : 's'}, some two on one, no parity`;
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `erasure protection degraded: ${describeCode(code)} needs ${n} other nodes per stage, only ${others} ${others === 1 ? 'is' : 'are'} left: ${where}; until nodes join, ${lossesAtOnce(Math.max(1, placed - code.dataShards + 1))} recovered from memory (${code.parityShards + 1} at once with every shard placed)`,
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

  /** Versions of a stage's snapshot that enough live holders can rebuild, by step. */
  rebuildableVersions(stage: number): Map<number, ProtectedVersion> {
    const code = this.code;
    const out = new Map<number, ProtectedVersion>();
    if (!code) return out;
    for (const [step, v] of this.commits.stage(stage).protectedVersions) {
      if (v.holders.filter((h) => this.members.holderAlive(h)).length >= code.dataShards) out.set(step, v);
    }
    return out;
  }

  /** For a failure message: each stage's shard count at its newest version, where too few survive. */
  lostShardsDetail(): string {
    const code = this.code;
    if (!code) return `; erasure coding is off (${this.disabledReason ?? 'not chosen yet'})`;
    const parts: string[] = [];
    this.commits.stages.forEach((st, stage) => {
      const newest = [...st.protectedVersions.values()].at(-1);
      if (!newest) return;
      const alive = newest.holders.filter((h) => this.members.holderAlive(h)).length;
      if (alive < code.dataShards) parts.push(`stage ${stage} step ${newest.step}: ${alive} of the ${code.dataShards} shards needed survive`);
    });
    return parts.length > 0 ? `; ${parts.join('; ')}` : '';
  }
}

function lossesAtOnce(t: number): string {
  return t === 1 ? 'any one node loss at a time is' : `any ${t} node losses at once are`;
}

/** What can still bring a lost node's stage back when no shards are kept, under the job's policy. */
export function withoutShards(job: Pick<JobOptions, 'stages' | 'replicas' | 'recovery' | 'checkpointDir'>): string {
  const ways: string[] = [];
  if (job.replicas > 1) {
    // CheckFree is off with replicas.
  } else if (job.recovery === 'checkfree-plus') ways.push('by CheckFree+ (any stage whose swap partner survives, a middle stage whose two neighbours do)');
  else if ((job.recovery === 'auto' || job.recovery === 'checkfree') && job.stages >= 3) ways.push('by CheckFree (an intermediate stage whose two neighbours survive)');
  if (job.checkpointDir !== null && job.recovery !== 'snapshot') ways.push('from a disk checkpoint');
  return ways.length > 0 ? `a lost node's stage can come back only ${ways.join(' or ')}` : 'a lost node ends the run (no CheckFree for this job and no --checkpoint-dir)';
}
