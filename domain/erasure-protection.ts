// Erasure protection of snapshots across nodes: the code chosen for a cluster, where each
// stage's shards go, and the messages that describe them. Pure: the coordinator plans with it,
// the snapshot managers and workers carry the plans out.

import type { SnapshotHeader } from './snapshot-slots.ts';
import { snapshotsOn, type SnapshotEvery } from './snapshot-schedule.ts';

/** `--ec`: a Reed-Solomon code, `auto` (chosen from the number of nodes) or `off`. */
export type ErasureSetting = { readonly dataShards: number; readonly parityShards: number } | 'auto' | 'off';

export interface ErasureCode {
  /** k: shards that carry the data. */
  readonly dataShards: number;
  /** m: parity shards; up to m lost shards of a snapshot are survived. */
  readonly parityShards: number;
}

/** Most shards `auto` spreads a snapshot over (k + m). */
export const AUTO_MAX_SHARDS = 6;

/**
 * The code `auto` picks for a cluster of `nodes` nodes (stages and spares): as many shards as
 * there are other nodes, at most 6; two parity shards from 5 shards up, else one. 4 nodes give
 * RS(2,1) (1.5x the state in peers' RAM), 5 RS(3,1), 6 RS(3,2), 7 and more RS(4,2) (1.5x).
 * Null below 3 nodes: fewer than two other nodes to spread shards over.
 */
export function autoErasureCode(nodes: number): ErasureCode | null {
  const n = Math.min(nodes - 1, AUTO_MAX_SHARDS);
  if (n < 2) return null;
  const m = n >= 5 ? 2 : 1;
  return { dataShards: n - m, parityShards: m };
}

export function resolveErasureCode(setting: ErasureSetting, nodes: number): ErasureCode | null {
  if (setting === 'off') return null;
  if (setting === 'auto') return autoErasureCode(nodes);
  return setting;
}

/** The code a job gets, or null with the reason there is none. */
export type ErasureChoice = { readonly code: ErasureCode; readonly reason: null } | { readonly code: null; readonly reason: string };

/**
 * The code the coordinator uses for a cluster of `nodes` nodes (stages and spares), of which
 * `withoutSmp` run no snapshot manager: what it picks at the first assignment, and what the job's
 * survivability statement is worked out from.
 */
export function chooseErasureCode(setting: ErasureSetting, snapshotEvery: SnapshotEvery, nodes: number, withoutSmp = 0): ErasureChoice {
  if (!snapshotsOn(snapshotEvery)) return { code: null, reason: 'snapshots are off' };
  if (setting === 'off') return { code: null, reason: '--ec off' };
  if (withoutSmp > 0) return { code: null, reason: `${withoutSmp} node(s) run no snapshot manager (started with \`ftrain worker\`, not \`ftrain node\`)` };
  const code = resolveErasureCode(setting, nodes);
  return code ? { code, reason: null } : { code: null, reason: `${nodes} node(s): too few other nodes to hold shards (3 nodes or more needed)` };
}

/**
 * Why an explicit code cannot be placed on `nodes` nodes, or null when it can: each stage's
 * k + m shards go on k + m distinct nodes other than the stage's own, so k + m may be at most
 * nodes - 1. The message names the largest code of about the same ratio that fits.
 */
export function codeDoesNotFit(code: ErasureCode, nodes: number, given = `${nodes} node(s)`): string | null {
  const n = code.dataShards + code.parityShards;
  const others = nodes - 1;
  if (n <= others) return null;
  const needs = `${code.dataShards},${code.parityShards} needs ${n} other nodes to hold the shards; ${given} gives ${others}`;
  if (others < 2) return `${needs}, too few for any code (K + M >= 2): use --ec off, or add --spares ${3 - nodes} for RS(1,1)`;
  const k = Math.min(others - 1, Math.max(1, Math.round((code.dataShards * others) / n)));
  return `${needs}: the largest code that fits has K + M = ${others} (e.g. --ec ${k},${others - k}); or add --spares`;
}

export function describeCode(code: ErasureCode): string {
  return `RS(${code.dataShards},${code.parityShards})`;
}

export interface PlacedNode {
  readonly nodeId: string;
  /** host:port of its SnapshotManager service. */
  readonly address: string;
}

/** Where one stage's snapshot manager sends shard i of each snapshot: `holders[i]`. */
export interface ProtectionPlan {
  readonly stage: number;
  readonly code: ErasureCode;
  readonly holders: readonly PlacedNode[];
  /**
   * Fewer other nodes than k + m: only `holders.length` shards are placed (all k data shards and
   * the parity that fits, on distinct nodes; with fewer other nodes than k, some hold two).
   */
  readonly degraded: boolean;
}

export interface Placement {
  readonly plans: Map<number, ProtectionPlan>;
  /** Shards each node holds per snapshot version, by node id. */
  readonly load: Map<string, number>;
  readonly degraded: boolean;
  /** With zones: stages some zone holds more than m shards of (too few zones or nodes), so losing it loses the snapshot. */
  readonly unspread: readonly number[];
}

/**
 * Places the k + m shards of each stage's snapshots on k + m distinct nodes other than the
 * stage's own. Stages are placed in order; each takes the least-loaded other nodes, ties going
 * to the nearest after the owner in node order, so with every node holding a stage each node
 * ends up with the same number of shards. With too few other nodes (degraded) a stage places
 * only as many shards as it has other nodes, each on a distinct one: the data shards and as much
 * parity as fits, never two shards on one node. One node loss is still recovered from memory
 * (the stage's own node: its shards all survive; a holder: the stage's node lives on), and no
 * node holds more than in the full plan, which parity doubled onto nodes already holding a shard
 * of the same snapshot would have cost (a third more memory per version for RS(3,1) on four
 * nodes) for a second loss it only sometimes covered. With fewer other nodes than k, the k data
 * shards must double up: every stage first takes each other node once, and its remaining data
 * shards are placed after that, each on the least-loaded of its other nodes then, so that the
 * doubled shards spread over the nodes too.
 */
/**
 * Shards of each snapshot a stage places when it has `others` other nodes: all k + m when they are
 * enough, else one per other node (the k data shards first), and never fewer than k.
 */
export function shardsPlaced(code: ErasureCode, others: number): number {
  return Math.max(code.dataShards, Math.min(code.dataShards + code.parityShards, others));
}

export function placeShards(owners: ReadonlyMap<number, string>, nodes: readonly PlacedNode[], code: ErasureCode, zoneOf: (nodeId: string) => string = () => ''): Placement {
  const n = code.dataShards + code.parityShards;
  /**
   * The first `count` of `others` (in load order) such that no zone gets more than m shards, so a
   * whole zone lost leaves k (nodes without a zone count alone); then any, when that falls short.
   */
  const pick = (others: { node: PlacedNode; distance: number }[], count: number): PlacedNode[] => {
    const inZone = new Map<string, number>();
    const chosen: PlacedNode[] = [];
    spread = true;
    for (const { node } of others) {
      if (chosen.length === count) break;
      const zone = zoneOf(node.nodeId);
      if (zone !== '' && (inZone.get(zone) ?? 0) >= code.parityShards) continue;
      inZone.set(zone, (inZone.get(zone) ?? 0) + 1);
      chosen.push(node);
    }
    for (const { node } of others) {
      if (chosen.length < count && !chosen.includes(node)) {
        chosen.push(node);
        spread = false;
      }
    }
    return chosen;
  };
  let spread = true;
  const unspread: number[] = [];
  /** Shards a stage with `others` other nodes places (shardsPlaced). */
  const placed = (others: number) => shardsPlaced(code, others);
  const sorted = [...nodes].sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }));
  const load = new Map(sorted.map((node) => [node.nodeId, 0]));
  const placing: { stage: number; others: { node: PlacedNode; distance: number }[]; holders: PlacedNode[] }[] = [];
  const byLoad = (others: { node: PlacedNode; distance: number }[]) => others.sort((a, b) => load.get(a.node.nodeId)! - load.get(b.node.nodeId)! || a.distance - b.distance);
  for (const [stage, ownerId] of [...owners].sort((a, b) => a[0] - b[0])) {
    const ownerAt = sorted.findIndex((node) => node.nodeId === ownerId);
    const others = sorted
      .map((node, i) => ({ node, distance: (i - ownerAt + sorted.length) % sorted.length }))
      .filter(({ node }) => node.nodeId !== ownerId);
    if (others.length === 0) continue;
    const holders = pick(byLoad(others), placed(others.length));
    if (!spread) unspread.push(stage);
    for (const h of holders) load.set(h.nodeId, load.get(h.nodeId)! + 1);
    placing.push({ stage, others, holders });
  }
  for (const p of placing) {
    while (p.holders.length < placed(p.others.length)) {
      const node = byLoad(p.others)[0]!.node;
      p.holders.push(node);
      load.set(node.nodeId, load.get(node.nodeId)! + 1);
    }
  }
  const plans = new Map<number, ProtectionPlan>();
  let anyDegraded = false;
  for (const { stage, others, holders } of placing) {
    const degraded = others.length < n;
    anyDegraded ||= degraded;
    plans.set(stage, { stage, code, holders, degraded });
  }
  return { plans, load, degraded: anyDegraded, unspread };
}

/** How a snapshot was cut into shards: everything needed to rebuild it besides the shards. */
export interface ShardLayout {
  /** k: shards that carry the data. */
  readonly dataShards: number;
  /** m: parity shards. */
  readonly parityShards: number;
  /** Length of the original data. */
  readonly totalBytes: number;
  readonly stripeBytes: number;
  readonly stripes: number;
}

/** Describes shard i of the snapshot of `stage` after `step` steps, taken in `epoch`. */
export interface ShardHeader {
  readonly ownerNodeId: string;
  readonly stage: number;
  readonly step: number;
  readonly epoch: number;
  readonly index: number;
  readonly crc32: number;
  /** Length of this shard's bytes. */
  readonly bytes: number;
  readonly layout: ShardLayout;
  /** The snapshot's own header: what a rebuilt snapshot is committed with. */
  readonly snapshot: SnapshotHeader;
  /** The sender's newest protected commit step: older versions of the stage can be freed. */
  readonly protectedCommitStep: number;
}

/** A snapshot whose shards all reached their holders (k + m of them, fewer in a degraded plan). */
export interface ProtectedVersion {
  readonly step: number;
  readonly epoch: number;
  /** Node id of the holder of each shard, by shard index. */
  readonly holders: readonly string[];
}

/** What a node's snapshot manager says about protection, with each step report. */
export interface ProtectionStatus {
  /** The stage whose snapshots it protects, or null when it has no plan. */
  readonly stage: number | null;
  /** Versions of that stage fully placed on peers, oldest first. */
  readonly versions: readonly ProtectedVersion[];
  /** Bytes and shards it holds for other nodes' stages. */
  readonly heldBytes: number;
  readonly heldShards: number;
  /** Encode and placement times of its last protected snapshot (ms), or null. */
  readonly encodeMs: number | null;
  readonly placeMs: number | null;
  /** The last encode or placement error, if the last attempt failed. */
  readonly lastError: string | null;
}

/** Told to a node that takes over a lost stage: rebuild this snapshot from peers' shards. */
export interface RebuildOrder {
  readonly stage: number;
  readonly step: number;
  readonly epoch: number;
  readonly code: ErasureCode;
  /** SnapshotManager addresses of every live node; each sends whichever shards it holds. */
  readonly sources: readonly string[];
}

/**
 * Told to a node that takes over a lost stage whose replica lives (`--replicas`): copy that
 * replica's committed snapshot of `step` into its own slots, as the snapshot of `stage`.
 */
export interface ReplicaCopyOrder {
  /** The slot this node takes over. */
  readonly stage: number;
  readonly step: number;
  /** The live replica's slot, and its snapshot manager's address. */
  readonly fromStage: number;
  readonly fromAddress: string;
}
