// What a job survives, said before it starts: how many worker crashes and whole-node losses at
// once it recovers whichever nodes they hit, by which tier, and what ends it. Worked out by asking
// the recovery policy itself (planRecovery, unrecoverable) about the losses that hurt most, on
// a cluster in steady training laid out as the coordinator lays it out (stage i on the i-th node,
// the erasure code of chooseErasureCode, the shards where placeShards puts them), so the
// statement cannot drift from what the coordinator does. It lives beside the policy it asks
// (domain/ may not import the coordinator's core); `ftrain run`, `ftrain coordinator` and the
// core's own notice at the first assignment print it.

import { chooseErasureCode, describeCode, placeShards, type ErasureCode, type Placement } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { slotCount, slotsOfStage, stageOfSlot, type ReplicaShape } from '../../domain/replica-slots.ts';
import { snapshotsOn } from '../../domain/snapshot-schedule.ts';
import { ReasonKind, planRecovery, unrecoverable, type RecoveryDecision } from './recovery-policy.ts';

/** The options the statement depends on. */
export type SurvivalJob = Pick<JobOptions, 'stages' | 'replicas' | 'spares' | 'snapshotEvery' | 'ec' | 'recovery' | 'checkpointDir' | 'checkpointEvery' | 'recoveryTimeoutMs'>;

/** How many losses at once are always recovered: a count, or any number. */
export type LossCount = number | 'any';

/** A loss that ends the run: which nodes, and the policy's decision about it. */
export interface FatalLoss {
  /** Node indices; node i < stages holds stage i, the others are spares. */
  readonly nodes: readonly number[];
  /** Which nodes, in words (`the node of stage 0 and 2 of the nodes holding its shards`). */
  readonly what: string;
  readonly decision: RecoveryDecision;
}

export interface Survivability {
  /** Nodes the statement is for: stages + spares, or the nodes that registered. */
  readonly nodes: number;
  readonly code: ErasureCode | null;
  /** Why there is no erasure code, when there is none. */
  readonly noCodeReason: string | null;
  /** Worker crashes at once (each node's snapshot manager lives on) recovered wherever they hit. */
  readonly workerCrashes: LossCount;
  /** Whole-node losses at once (worker and snapshot manager) recovered whichever nodes they hit. */
  readonly nodeLosses: LossCount;
  /** The same without the disk tier: what the snapshot tiers and CheckFree recover alone. */
  readonly nodeLossesWithoutDisk: LossCount;
  /** The smallest whole-node loss that ends the run, or null when none does. */
  readonly fatal: FatalLoss | null;
  /** Stages whose node's loss alone ends the run. */
  readonly fatalNodeLoss: readonly number[];
  /** Stages whose worker's crash alone ends the run. */
  readonly fatalWorkerCrash: readonly number[];
}

/** The step every stage has snapshotted and protected in the steady state the statement assumes. */
const STEADY_STEP = 1;

/** Stage i on node i, every stage reported and snapshotted, its newest snapshot's shards placed. */
interface SteadyCluster {
  /** The job with every slot a stage of its own (domain/replica-slots.ts); `pipeline`: its real shape. */
  readonly job: SurvivalJob;
  readonly pipeline: ReplicaShape;
  readonly nodes: number;
  readonly code: ErasureCode | null;
  readonly placement: Placement | null;
}

function steadyCluster(job: SurvivalJob, pipeline: ReplicaShape, nodes: number, code: ErasureCode | null): SteadyCluster {
  const ids = Array.from({ length: nodes }, (_, i) => ({ nodeId: `n${i}`, address: `n${i}` }));
  const owners = new Map(Array.from({ length: job.stages }, (_, s) => [s, `n${s}`] as const));
  return { job, pipeline, nodes, code, placement: code ? placeShards(owners, ids, code) : null };
}

/**
 * What the recovery policy decides when the nodes `lost` fail at once: `worker` crashes keep the
 * node's snapshot manager (the stage comes back on its own node, with its own snapshots), `node`
 * losses take it along. Null when no stage is lost (a spare's loss needs no recovery).
 */
function decideLoss(c: SteadyCluster, lost: readonly number[], kind: 'worker' | 'node', diskTier: boolean): RecoveryDecision | null {
  const { job, code } = c;
  const lostStages = lost.filter((n) => n < job.stages).sort((a, b) => a - b);
  const gone = new Set(lost);
  if (lostStages.length === 0) return null;
  const reported = Array.from({ length: job.stages }, () => true);
  const disk = { ...job, checkpointDir: diskTier ? (job.checkpointDir ?? 'disk') : null };
  // The coordinator asks this first, stage by stage, as each failure comes in.
  for (const stage of lostStages) {
    const cannot = unrecoverable(disk, stage, reported);
    if (cannot !== null) return { plan: { tier: 'fail' }, reason: { kind: ReasonKind.nothingToRebuild, text: cannot }, fallback: cannot };
  }
  const snapshots = snapshotsOn(job.snapshotEvery);
  const fromShards = Array.from({ length: job.stages }, () => new Map<number, number>());
  // A lost node's slot whose replica's node lives is copied from that replica's snapshot.
  const fromReplicas = Array.from({ length: job.stages }, (_, s) => {
    if (!(snapshots && kind === 'node' && gone.has(s))) return new Map<number, number>();
    const live = slotsOfStage(c.pipeline, stageOfSlot(c.pipeline, s)).find((p) => p !== s && !gone.has(p));
    return new Map<number, number>(live !== undefined ? [[STEADY_STEP, live]] : []);
  });
  const restorable = Array.from({ length: job.stages }, (_, s): number[] => {
    if (!snapshots) return [];
    if (!gone.has(s) || kind === 'worker' || fromReplicas[s]!.size > 0) return [STEADY_STEP];
    const plan = c.placement?.plans.get(s);
    if (!code || !plan) return [];
    const live = plan.holders.filter((h) => !gone.has(Number(h.nodeId.slice(1)))).length;
    if (live < code.dataShards) return [];
    fromShards[s]!.set(STEADY_STEP, live);
    return [STEADY_STEP];
  });
  return planRecovery({
    policy: job.recovery,
    stages: job.stages,
    replicas: job.replicas,
    lost: lostStages,
    restorable,
    fromShards,
    fromReplicas,
    dataShards: code?.dataShards ?? null,
    reported,
    diskTier,
    shardShortfall: '',
  });
}

/**
 * The losses that hurt most, smallest first: for each stage, its node with the nodes holding the
 * most of its shards (the first to leave it short of k); every one or two stages' nodes (what
 * CheckFree and CheckFree+ cannot cover); and every node at once. Generated lazily in order of
 * size (within a size, by stage, pairs before shard holders, then every stage's node, then every
 * node): a thousand slots make half a million pairs, asked about only until one is fatal.
 */
function* worstLosses(c: SteadyCluster, kind: 'worker' | 'node', pairs = true): Generator<{ nodes: number[]; what: string }> {
  const { stages } = c.job;
  // A worker crash is on a stage's node; a spare has no worker to crash.
  const hit = (nodes: number[]) => (kind === 'worker' ? nodes.filter((n) => n < stages) : nodes);
  const holderSets = Array.from({ length: stages }, (_, s) => {
    const counts = new Map<number, number>();
    for (const h of c.placement?.plans.get(s)?.holders ?? []) {
      const n = Number(h.nodeId.slice(1));
      counts.set(n, (counts.get(n) ?? 0) + 1);
    }
    const holders = [...counts].sort((a, b) => b[1] - a[1] || a[0] - b[0]).map(([n]) => n);
    return holders.map((_, i) => ({ nodes: hit([s, ...holders.slice(0, i + 1)]), what: `the node of stage ${s} and ${i + 1} of the ${holders.length} nodes holding its shards` }));
  });
  const everyStage = { nodes: Array.from({ length: stages }, (_, s) => s), what: 'every stage\'s node' };
  const everyNode = { nodes: hit(Array.from({ length: c.nodes }, (_, n) => n)), what: 'every node' };
  const sizes = [...new Set([1, ...(stages > 1 ? [2] : []), ...holderSets.flat().map((x) => x.nodes.length), stages, everyNode.nodes.length])].sort((a, b) => a - b);
  for (const size of sizes) {
    for (let s = 0; s < stages; s++) {
      if (size === 1) yield { nodes: [s], what: `the node of stage ${s}` };
      if (size === 2 && pairs) for (let t = s + 1; t < stages; t++) yield { nodes: [s, t], what: `the nodes of stages ${s} and ${t}` };
      for (const set of holderSets[s]!) if (set.nodes.length === size) yield set;
    }
    if (size === stages) yield everyStage;
    if (size === everyNode.nodes.length) yield everyNode;
  }
}

/**
 * Whether a loss is fatal, remembered by what decides it where that is known: without an erasure
 * code and with replicas (no CheckFree), only how many replicas of each stage a loss takes (a
 * stage with a live replica copies it), so the pairs of a thousand slots fall into a few classes.
 */
function fatalCheck(c: SteadyCluster, kind: 'worker' | 'node', diskTier: boolean): (lost: readonly number[]) => boolean {
  const memo = new Map<string, boolean>();
  const byClass = c.code === null && c.pipeline.replicas > 1;
  return (lost) => {
    const stageCounts = byClass ? lost.filter((n) => n < c.job.stages).reduce((m, n) => m.set(stageOfSlot(c.pipeline, n), (m.get(stageOfSlot(c.pipeline, n)) ?? 0) + 1), new Map<number, number>()) : null;
    const key = stageCounts ? [...stageCounts.values()].sort((a, b) => a - b).join(',') : null;
    const known = key === null ? undefined : memo.get(key);
    if (known !== undefined) return known;
    const fatal = decideLoss(c, lost, kind, diskTier)?.plan.tier === 'fail';
    if (key !== null) memo.set(key, fatal);
    return fatal;
  };
}

/** The most losses at once that are always recovered, and the smallest loss that is not. */
function worstCase(c: SteadyCluster, kind: 'worker' | 'node', diskTier: boolean): { count: LossCount; fatal: FatalLoss | null } {
  const fatal = fatalCheck(c, kind, diskTier);
  // Without a code and with replicas a pair is fatal by class alone (fatalCheck): when neither a
  // pair of one stage's replicas nor one of two stages is, the pairs need not be listed.
  const { stages } = c.pipeline;
  const pairsMatter = !(c.code === null && c.pipeline.replicas > 1) || (stages > 1 && fatal([0, 1])) || fatal([0, stages]);
  for (const { nodes, what } of worstLosses(c, kind, pairsMatter)) {
    if (fatal(nodes)) return { count: nodes.length - 1, fatal: { nodes, what, decision: decideLoss(c, nodes, kind, diskTier)! } };
  }
  return { count: 'any', fatal: null };
}

/** The stages whose loss alone ends the run. */
function fatalAlone(c: SteadyCluster, kind: 'worker' | 'node', diskTier: boolean): number[] {
  const fatal = fatalCheck(c, kind, diskTier);
  return Array.from({ length: c.job.stages }, (_, s) => s).filter((s) => fatal([s]));
}

/** What the job survives on `nodes` nodes (by default the stages and spares it waits for). */
export function survivability(job: SurvivalJob, nodes = slotCount(job) + job.spares): Survivability {
  const choice = chooseErasureCode(job.ec, job.snapshotEvery, nodes);
  // With replicas every slot is a stage of its own here: a node holds one, and CheckFree is off.
  const c = steadyCluster({ ...job, stages: slotCount(job) }, job, nodes, choice.code);
  const disk = job.checkpointDir !== null;
  const node = worstCase(c, 'node', disk);
  return {
    nodes,
    code: choice.code,
    noCodeReason: choice.reason,
    workerCrashes: worstCase(c, 'worker', disk).count,
    nodeLosses: node.count,
    nodeLossesWithoutDisk: disk ? worstCase(c, 'node', false).count : node.count,
    fatal: node.fatal,
    fatalNodeLoss: fatalAlone(c, 'node', disk),
    fatalWorkerCrash: fatalAlone(c, 'worker', disk),
  };
}

function losses(n: LossCount, what: string): string {
  return n === 'any' ? `any number of ${what}es at once` : `any ${n} ${what}${n === 1 ? '' : 'es'} at once`;
}

function listStages(stages: readonly number[]): string {
  const names = stages.map((st) => `${st}`);
  const list = names.length === 1 ? names[0]! : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
  return `stage ${list}`;
}

/** Why a lost node's stage cannot come back by the snapshot tiers or CheckFree, for "cannot survive". */
function whyNodeLossEnds(job: SurvivalJob, s: Survivability): string[] {
  const why: string[] = [];
  const snapshotTiers = job.recovery === 'auto' || job.recovery === 'snapshot';
  if (!snapshotTiers) why.push(`--recovery ${job.recovery} uses no snapshots`);
  else if (!s.code) {
    why.push(
      job.snapshotEvery === 0
        ? 'snapshots are off (--snapshot-every 0)'
        : job.ec === 'off'
          ? '--ec off keeps no erasure shards'
          : `${s.nodes} node${s.nodes === 1 ? '' : 's'} leave${s.nodes === 1 ? 's' : ''} too few other nodes for erasure shards (3 or more nodes needed)`,
    );
  }
  if (job.recovery === 'snapshot') why.push('--recovery snapshot rules out CheckFree');
  else if (job.replicas > 1) why.push('CheckFree is off with --replicas');
  else if (job.recovery === 'auto' || job.recovery === 'checkfree') {
    why.push(job.stages <= 2 ? 'CheckFree needs a neighbour on both sides of a stage' : 'CheckFree cannot rebuild stage 0 or the last stage');
  }
  return why;
}

/** What would let the job survive more: the flags to add. */
function advice(job: SurvivalJob, s: Survivability): string {
  const add: string[] = [];
  const snapshotTiers = job.recovery === 'auto' || job.recovery === 'snapshot';
  if (!snapshotTiers && job.recovery !== 'checkpoint') add.push('--recovery auto (snapshots and erasure shards first)');
  else if (!s.code && job.snapshotEvery === 0) add.push('drop --snapshot-every 0 (snapshots and erasure shards)');
  else if (!s.code && job.ec === 'off') add.push('drop --ec off (erasure shards)');
  else if (!s.code) add.push(`--spares ${Math.max(1, 3 - s.nodes)} or more nodes (erasure shards)`);
  else add.push('a larger M in --ec K,M');
  if (job.checkpointDir === null) add.push('--checkpoint-dir DIR (a disk tier)');
  return `; to survive more: ${add.join(', or ')}`;
}

/**
 * The statement, a few lines to print at start: what the job survives by tier, what ends it and
 * what would help, and who takes a lost node's stage.
 */
export function survivabilityLines(job: SurvivalJob, s: Survivability = survivability(job)): string[] {
  const tiers: string[] = [];
  const snapshotTiers = job.recovery === 'auto' || job.recovery === 'snapshot';
  if (snapshotsOn(job.snapshotEvery) && snapshotTiers) tiers.push(`local snapshot: ${losses(s.workerCrashes, 'worker crash')} (each stage restores its own snapshot)`);
  if (s.code && snapshotTiers) {
    const k = s.code.dataShards;
    const n = k + s.code.parityShards;
    tiers.push(`erasure rebuild: ${losses(s.nodeLossesWithoutDisk, 'node loss')} (${describeCode(s.code)}: a lost stage is rebuilt from any ${k} of its ${n} shards on other nodes)`);
  }
  if ((job.recovery === 'auto' || job.recovery === 'checkfree') && job.stages >= 3 && job.replicas === 1) {
    tiers.push(`CheckFree: the loss of an intermediate stage (${job.stages === 3 ? 'stage 1' : `1..${job.stages - 2}`}) whose two neighbours survive${job.recovery === 'auto' && snapshotsOn(job.snapshotEvery) ? ', when no snapshot is left to restore' : ''}`);
  }
  if (job.recovery === 'checkfree-plus') tiers.push(`CheckFree+: ${losses(s.nodeLossesWithoutDisk, 'node loss')}, any stage whose swap partner (or, in the middle, both neighbours) survives`);
  if (job.checkpointDir !== null && job.recovery !== 'snapshot') {
    const every = job.checkpointEvery > 0 ? `written every ${job.checkpointEvery} step(s)` : 'none written (--checkpoint-every 0): back to step 0 unless the directory has one';
    tiers.push(`disk checkpoint: any losses, every stage back to the newest checkpoint (${every})`);
  }
  const lines = tiers.length > 0 ? ['  survives, by tier:', ...tiers.map((t) => `    ${t}`)] : ['  survives: no failure'];
  const worker = s.fatalWorkerCrash.length === 0 ? '' : `; so does a worker crash on ${listStages(s.fatalWorkerCrash)}`;
  if (s.nodeLosses === 0) {
    const which = s.fatalNodeLoss.length === slotCount(job) ? 'a lost node ends the run' : `losing the node of ${listStages(s.fatalNodeLoss)} ends the run`;
    lines.push(`  cannot survive: ${which}: ${whyNodeLossEnds(job, s).join(', ')}${worker}${advice(job, s)}`);
  } else if (s.fatal) {
    lines.push(`  cannot survive: ${s.fatal.nodes.length} node losses at once, e.g. ${s.fatal.what}${worker}${advice(job, s)}`);
  }
  if (s.nodeLosses !== 0) {
    const timeout = `${Math.round(job.recoveryTimeoutMs / 1000)} s`;
    lines.push(
      job.spares > 0
        ? `  a lost node's stage goes to one of the ${job.spares} spare(s) at once; with none left it waits up to ${timeout} for a node to join`
        : `  a lost node's stage waits up to ${timeout} for a node to join (no spares: add --spares N to take over at once)`,
    );
  }
  return lines;
}
