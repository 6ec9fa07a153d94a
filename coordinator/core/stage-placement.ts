// Stage placement: once enough nodes can take commands, stage slot i (replica * stages + stage,
// domain/replica-slots.ts) goes to the i-th of them by node id and the rest are spares; every
// assignment wires a stage to its neighbours' addresses in its replica and to its replicas, and
// carries its shard plan, and, in a recovery, what to restore or rebuild.

import type { CheckfreeOrder } from '../../domain/checkfree.ts';
import type { ShareSource } from '../../domain/commands.ts';
import type { RebuildOrder, ReplicaCopyOrder } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { replicaOfSlot, slotCount, slotName, slotOf, slotsOfStage, stageOfSlot } from '../../domain/replica-slots.ts';
import { placeSlots } from '../../domain/zones.ts';
import { NodeState } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { Membership, NodeRecord } from './membership.ts';
import type { ShardPlacement } from './shard-placement.ts';
import type { ShareLayouts } from './share-layouts.ts';

/**
 * A replica out while it is rebuilt (`--on-replica-loss`): its slots get no assignment. Under
 * keep, replica `host` trains its micro-batches too and plays its ranks in the rings; under
 * shrink (`host` null) the rings and the batch go without it.
 */
export interface ReplicaOut {
  readonly replica: number;
  readonly host: number | null;
}

export class StagePlacement {
  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly shards: ShardPlacement,
    private readonly epoch: () => number,
    private readonly layouts: ShareLayouts,
  ) {}

  /**
   * Places the stages once stages + spares nodes have an open command stream; false while the
   * run still waits for nodes.
   */
  tryAssign(out: Action[]): boolean {
    const slots = slotCount(this.job);
    const wanted = slots + this.job.spares;
    // Counted first: this runs at every node's join until enough have joined.
    const connected = this.members.countAvailable(NodeState.registered);
    if (connected < wanted) {
      const stages = this.job.replicas > 1 ? `${this.job.replicas} replicas x ${this.job.stages} stages` : `${this.job.stages} stages`;
      out.push({
        type: 'log',
        level: 'info',
        msg: `waiting for nodes: ${connected} of ${wanted} connected${this.job.spares > 0 || this.job.replicas > 1 ? ` (${stages}${this.job.spares > 0 ? ` + ${this.job.spares} spares` : ''})` : ''}`,
      });
      return false;
    }
    const candidates = this.members.available(NodeState.registered);
    const { placed, spares, together } = placeSlots(candidates.slice(0, wanted), this.job);
    placed.forEach((node, slot) => {
      this.members.move(node, NodeState.assigned);
      node.stage = slot;
      this.commits.stage(slot).nodeId = node.nodeId;
    });
    for (const node of [...spares, ...candidates.slice(wanted)]) this.members.move(node, NodeState.spare);
    if (together.length > 0) {
      const zones = new Set(candidates.map((n) => n.zone)).size;
      out.push({
        type: 'notice',
        level: 'warn',
        msg: `${together.map((s) => slotName(this.job, s)).join(', ')} share a zone with another replica of the same stage (${zones} zone(s) for ${this.job.replicas} replicas): losing that zone loses both`,
      });
    }
    placed.forEach((node, stage) => out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid }));
    this.shards.chooseCode(candidates, out);
    this.shards.replan(out, false);
    this.sendAssignments(placed, -1, out);
    return true;
  }

  /**
   * Assigns slot i to nodes[i] (domain/replica-slots.ts), wiring each stage to its neighbours in
   * its replica and to its replicas, in the current epoch. With a replica `away`, its slots are
   * holes in `nodes` and get nothing.
   */
  sendAssignments(
    nodes: readonly NodeRecord[],
    restoreStep: number,
    out: Action[],
    rebuild: ReadonlyMap<number, RebuildOrder> = new Map(),
    checkfree: ReadonlyMap<number, CheckfreeOrder> = new Map(),
    copies: ReadonlyMap<number, ReplicaCopyOrder> = new Map(),
    away: ReplicaOut | null = null,
    /** Sharded: slots whose tensors hold `restoreStep` (their halted reports said so): they keep them and gather nothing. */
    inMemory: ReadonlySet<number> = new Set(),
  ): void {
    const job = this.job;
    // Sharded snapshots: the slots that train write the shares, in slot order. A restore gathers
    // the step's shares from the slots that wrote them (their nodes' snapshot managers).
    const writers = Array.from({ length: job.stages }, (_, stage) => (this.shards.sharesSnapshots ? slotsOfStage(job, stage).filter((s) => replicaOfSlot(job, s) !== away?.replica) : []));
    const sources = (slot: number): ShareSource[] => {
      if (!this.shards.sharesSnapshots || restoreStep < 0 || checkfree.has(slot) || inMemory.has(slot)) return [];
      return (this.layouts.of(stageOfSlot(job, slot), restoreStep) ?? []).flatMap((p) => {
        const holder = this.members.get(this.commits.stage(p).nodeId ?? '');
        return p === slot || !holder?.smpAddress || holder.state === NodeState.lost ? [] : [{ slot: p, smpAddress: holder.smpAddress }];
      });
    };
    // A stage's ring, the same for each of its replicas: made once per stage, not once per slot
    // (a thousand slots of a stage would each list a thousand addresses).
    const rings = new Map<number, readonly string[]>();
    const ringOf = (stage: number): readonly string[] => {
      let ring = rings.get(stage);
      if (ring) return ring;
      const ringAddress = (s: number) => {
        if (replicaOfSlot(job, s) !== away?.replica) return nodes[s]!.address;
        return away.host === null ? '' : nodes[slotOf(job, away.host, stage)]!.address;
      };
      ring = slotsOfStage(job, stage).map(ringAddress);
      rings.set(stage, ring);
      return ring;
    };
    // The nodes of a stage's ring, made once per stage as the ring is.
    const ringNodes = new Map<number, readonly string[]>();
    const ringNodesOf = (stage: number): readonly string[] => {
      let ids = ringNodes.get(stage);
      if (ids) return ids;
      ids = slotsOfStage(job, stage).flatMap((s) => {
        if (replicaOfSlot(job, s) !== away?.replica) return [nodes[s]!.nodeId];
        return away.host === null ? [] : [nodes[slotOf(job, away.host, stage)]!.nodeId];
      });
      ringNodes.set(stage, ids);
      return ids;
    };
    nodes.forEach((node, slot) => {
      const stage = stageOfSlot(job, slot);
      const replica = replicaOfSlot(job, slot);
      if (away?.replica === replica) return;
      const neighbours = [...(stage > 0 ? [nodes[slot - 1]!.nodeId] : []), ...(stage < job.stages - 1 ? [nodes[slot + 1]!.nodeId] : [])];
      out.push({
        type: 'send',
        nodeId: node.nodeId,
        command: {
          kind: 'assign',
          stage,
          numStages: job.stages,
          prevAddress: stage > 0 ? nodes[slot - 1]!.address : '',
          nextAddress: stage < job.stages - 1 ? nodes[slot + 1]!.address : '',
          epoch: this.epoch(),
          restoreStep,
          plan: this.shards.plan(slot),
          rebuild: rebuild.get(slot) ?? null,
          ...(checkfree.has(slot) ? { checkfree: checkfree.get(slot)! } : {}),
          // Sharded: a copy is of a live replica's tensors, from its worker (fromAddress).
          ...(copies.has(slot) && !this.shards.sharesSnapshots ? { replicaCopy: copies.get(slot)! } : {}),
          ...(copies.has(slot) && this.shards.sharesSnapshots ? { stateSource: { slot: copies.get(slot)!.fromStage, address: copies.get(slot)!.fromAddress } } : {}),
          replica,
          replicaAddresses: job.replicas > 1 ? ringOf(stage) : [],
          ...(away && away.host === replica ? { guestReplicas: [away.replica] } : {}),
          ...(away && away.host === null ? { outReplicas: [away.replica] } : {}),
          ...(this.shards.sharesSnapshots ? { shareIndex: writers[stage]!.indexOf(slot), shareCount: writers[stage]!.length, shareSources: copies.has(slot) ? [] : sources(slot) } : {}),
          peerNodeIds: job.replicas > 1 ? [...new Set([...neighbours, ...ringNodesOf(stage)])] : neighbours,
        },
      });
    });
    if (this.shards.sharesSnapshots) this.layouts.begin(restoreStep, writers);
  }
}
