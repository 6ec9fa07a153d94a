// Membership: the nodes the coordinator knows, their life cycle, leases and command streams, and
// what is known of failed nodes' snapshot managers. It refuses what a node may not do in its
// state; what a failure means for the run is the recovery's business.

import type { Registration } from '../../domain/node-reports.ts';
import { RefusalReason, type Refusal } from '../../domain/refusal.ts';
import type { NodeSummary } from '../../domain/run-status.ts';
import { NodeState, isLive, transition } from './node-lifecycle.ts';

/** How long a node that has registered may take to send its first heartbeat. */
export const FIRST_HEARTBEAT_GRACE_MS = 15_000;

export interface NodeRecord {
  readonly nodeId: string;
  readonly address: string;
  readonly pid: number;
  readonly hostname: string;
  /** Its failure domain (`ftrain node --zone`); empty: none given. */
  readonly zone: string;
  state: NodeState;
  stage: number | null;
  commandsOpen: boolean;
  leaseUntilMs: number;
  /** Snapshots its snapshot manager holds, as it said when registering. */
  readonly snapshots: { readonly stage: number; readonly steps: readonly number[] } | null;
  /** Its snapshot manager's address, or '' when it runs none. */
  readonly smpAddress: string;
  /** Process ids of its snapshot manager and node agent; 0: none or unknown. */
  readonly smpPid: number;
  readonly agentPid: number;
}

/** A node as the coordinator's store keeps it: no lease, no stream (a new leader hears them anew). */
export type DurableNode = Omit<NodeRecord, 'commandsOpen' | 'leaseUntilMs'> & { readonly smp: 'alive' | 'lost' | null };

/** `localeCompare(b, 'en', { numeric: true })`, made once: a compare then costs no locale lookup. */
const NODE_ORDER = new Intl.Collator('en', { numeric: true });

/** Node ids in node order ("n2" before "n10"). */
export function byNodeId(a: { nodeId: string }, b: { nodeId: string }): number {
  return NODE_ORDER.compare(a.nodeId, b.nodeId);
}

export class Membership {
  private readonly nodes = new Map<string, NodeRecord>();
  /** What is known of failed nodes' snapshot managers: alive (the worker comes back) or lost. */
  private readonly smpState = new Map<string, 'alive' | 'lost'>();
  /**
   * Every node id in node order (byNodeId), ids that compare equal in the order they came:
   * `available` reads nodes in this order, as a stable sort of the nodes would give them, without
   * sorting a thousand nodes at every join.
   */
  private readonly order: string[] = [];

  constructor(private readonly leaseMs: number) {}

  get(nodeId: string): NodeRecord | undefined {
    return this.nodes.get(nodeId);
  }

  /** The node, if it is live. */
  live(nodeId: string): NodeRecord | undefined {
    const node = this.nodes.get(nodeId);
    return node && isLive(node.state) ? node : undefined;
  }

  all(): IterableIterator<NodeRecord> {
    return this.nodes.values();
  }

  /**
   * The refusal for a node that is not live. FENCED: the node stops at once with EXIT_FENCED. A
   * node this coordinator told to stop is not fenced: its Stop is on the way.
   */
  notLive(nodeId: string): Refusal {
    if (this.nodes.get(nodeId)?.state === NodeState.stopped) {
      return { reason: RefusalReason.stopping, message: `no training is under way: node ${nodeId} has been told to stop` };
    }
    return { reason: RefusalReason.fenced, message: `node ${nodeId} is not registered` };
  }

  /** A live node under this id refuses a new registration; otherwise the id is free (again). */
  duplicate(reg: Registration): Refusal | null {
    const existing = this.live(reg.nodeId);
    if (!existing) return null;
    return {
      reason: RefusalReason.duplicate,
      message: `node id ${reg.nodeId} is already registered by a live node at ${existing.address}; give each node a unique --node-id`,
    };
  }

  /** Records a registration (a returning node replaces its old record). */
  register(reg: Registration, now: number): NodeRecord {
    if (this.nodes.has(reg.nodeId)) this.smpState.delete(reg.nodeId);
    else this.addToOrder(reg.nodeId);
    const node: NodeRecord = {
      nodeId: reg.nodeId,
      smpAddress: reg.smpAddress ?? '',
      smpPid: reg.smpPid ?? 0,
      agentPid: reg.agentPid ?? 0,
      address: reg.address,
      pid: reg.pid,
      hostname: reg.hostname,
      zone: reg.zone ?? '',
      state: NodeState.registered,
      stage: null,
      commandsOpen: false,
      // Until its first heartbeat, a node is starting (its heartbeat thread loads gRPC, on a
      // machine where every other node may be starting too): give it longer than the lease.
      leaseUntilMs: now + Math.max(this.leaseMs, FIRST_HEARTBEAT_GRACE_MS),
      snapshots: reg.snapshots ?? null,
    };
    this.nodes.set(reg.nodeId, node);
    return node;
  }

  /** Renews a lease. A node told to stop may beat once more before the Stop reaches it: no lease to renew, no fencing. */
  heartbeat(nodeId: string, now: number): Refusal | null {
    const node = this.nodes.get(nodeId);
    if (node?.state === NodeState.stopped) return null;
    if (!node || !isLive(node.state)) return this.notLive(nodeId);
    node.leaseUntilMs = now + this.leaseMs;
    return null;
  }

  /** Every live node's lease runs `ms` longer: time the coordinator did not run, and so could not hear them. */
  extendLeases(ms: number): void {
    for (const n of this.nodes.values()) if (isLive(n.state)) n.leaseUntilMs += ms;
  }

  /** The live nodes whose lease has run out. */
  expired(now: number): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const n of this.nodes.values()) if (now > n.leaseUntilMs && isLive(n.state)) out.push(n);
    return out;
  }

  move(node: NodeRecord, to: NodeState): void {
    node.state = transition(node.nodeId, node.state, to);
  }

  /** Registered nodes with an open command stream, in node order: who can take a stage. */
  available(...states: NodeState[]): NodeRecord[] {
    const out: NodeRecord[] = [];
    for (const id of this.order) {
      const n = this.nodes.get(id)!;
      if (n.commandsOpen && states.includes(n.state)) out.push(n);
    }
    return out;
  }

  /** How many nodes `available(state)` would list. */
  countAvailable(state: NodeState): number {
    let count = 0;
    for (const n of this.nodes.values()) if (n.commandsOpen && n.state === state) count += 1;
    return count;
  }

  /** Puts a new id in `order`: after every id it does not come before (binary search). */
  private addToOrder(nodeId: string): void {
    let lo = 0;
    let hi = this.order.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (NODE_ORDER.compare(this.order[mid]!, nodeId) <= 0) lo = mid + 1;
      else hi = mid;
    }
    this.order.splice(lo, 0, nodeId);
  }

  smpLost(nodeId: string): boolean {
    return this.smpState.get(nodeId) === 'lost';
  }

  smpKnown(nodeId: string): boolean {
    return this.smpState.has(nodeId);
  }

  smpAlive(nodeId: string): boolean {
    return this.smpState.get(nodeId) === 'alive';
  }

  markSmp(nodeId: string, state: 'alive' | 'lost'): void {
    this.smpState.set(nodeId, state);
  }

  /** A failed node whose snapshot manager has not been probed yet: the shards that survive are unknown. */
  probing(): boolean {
    for (const n of this.nodes.values()) if (n.state === NodeState.lost && n.smpAddress !== '' && !this.smpState.has(n.nodeId)) return true;
    return false;
  }

  /** Live nodes whose snapshot manager can hold shards. */
  shardHolders(): { nodeId: string; address: string }[] {
    return [...this.nodes.values()]
      .filter((n) => isLive(n.state) && n.smpAddress !== '' && !this.smpLost(n.nodeId))
      .map((n) => ({ nodeId: n.nodeId, address: n.smpAddress }));
  }

  /** Whether a shard on this node can still be fetched: its snapshot manager answers. */
  holderAlive(nodeId: string): boolean {
    if (nodeId === '' || this.smpLost(nodeId)) return false;
    const node = this.nodes.get(nodeId);
    return !!node && (isLive(node.state) || this.smpAlive(nodeId));
  }

  /** Every node, in registration order, as the store keeps it. */
  durable(): DurableNode[] {
    return [...this.nodes.values()].map(({ commandsOpen: _open, leaseUntilMs: _lease, ...n }) => ({ ...n, smp: this.smpState.get(n.nodeId) ?? null }));
  }

  /**
   * Takes the nodes of a stored state over, at a leader's takeover: no command stream is open yet,
   * and each live node has as long as a node that just registered to be heard from again.
   */
  restore(nodes: readonly DurableNode[], now: number): void {
    this.nodes.clear();
    this.smpState.clear();
    this.order.length = 0;
    for (const { smp, ...n } of nodes) {
      if (!this.nodes.has(n.nodeId)) this.addToOrder(n.nodeId);
      this.nodes.set(n.nodeId, { ...n, commandsOpen: false, leaseUntilMs: now + Math.max(this.leaseMs, FIRST_HEARTBEAT_GRACE_MS) });
      if (smp) this.smpState.set(n.nodeId, smp);
    }
  }

  summaries(): NodeSummary[] {
    return [...this.nodes.values()].map((n) => ({ nodeId: n.nodeId, state: n.state, stage: n.stage, pid: n.pid, smpPid: n.smpPid, agentPid: n.agentPid, hostname: n.hostname, address: n.address, smpAddress: n.smpAddress, zone: n.zone }));
  }
}
