// Stage placement: once enough nodes can take commands, stage i goes to the i-th of them by node
// id and the rest are spares; every assignment wires a stage to its neighbours' addresses and
// carries its shard plan, and, in a recovery, what to restore or rebuild.

import type { CheckfreeOrder } from '../../domain/checkfree.ts';
import type { RebuildOrder } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { NodeState } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { Membership, NodeRecord } from './membership.ts';
import type { ShardPlacement } from './shard-placement.ts';

export class StagePlacement {
  constructor(
    private readonly job: JobOptions,
    private readonly members: Membership,
    private readonly commits: CommitTracker,
    private readonly shards: ShardPlacement,
    private readonly epoch: () => number,
  ) {}

  /**
   * Places the stages once stages + spares nodes have an open command stream; false while the
   * run still waits for nodes.
   */
  tryAssign(out: Action[]): boolean {
    const candidates = this.members.available(NodeState.registered);
    const wanted = this.job.stages + this.job.spares;
    if (candidates.length < wanted) {
      out.push({
        type: 'log',
        level: 'info',
        msg: `waiting for nodes: ${candidates.length} of ${wanted} connected${this.job.spares > 0 ? ` (${this.job.stages} stages + ${this.job.spares} spares)` : ''}`,
      });
      return false;
    }
    const placed = candidates.slice(0, this.job.stages);
    placed.forEach((node, stage) => {
      this.members.move(node, NodeState.assigned);
      node.stage = stage;
      this.commits.stage(stage).nodeId = node.nodeId;
    });
    for (const node of candidates.slice(this.job.stages)) this.members.move(node, NodeState.spare);
    placed.forEach((node, stage) => out.push({ type: 'stage-assigned', stage, nodeId: node.nodeId, address: node.address, pid: node.pid }));
    this.shards.chooseCode(candidates, out);
    this.shards.replan(out, false);
    this.sendAssignments(placed, -1, out);
    return true;
  }

  /** Assigns stage i to nodes[i], wiring each to its neighbours, in the current epoch. */
  sendAssignments(
    nodes: readonly NodeRecord[],
    restoreStep: number,
    out: Action[],
    rebuild: ReadonlyMap<number, RebuildOrder> = new Map(),
    checkfree: ReadonlyMap<number, CheckfreeOrder> = new Map(),
  ): void {
    nodes.forEach((node, stage) => {
      out.push({
        type: 'send',
        nodeId: node.nodeId,
        command: {
          kind: 'assign',
          stage,
          numStages: this.job.stages,
          prevAddress: stage > 0 ? nodes[stage - 1]!.address : '',
          nextAddress: stage < this.job.stages - 1 ? nodes[stage + 1]!.address : '',
          epoch: this.epoch(),
          restoreStep,
          plan: this.shards.plan(stage),
          rebuild: rebuild.get(stage) ?? null,
          ...(checkfree.has(stage) ? { checkfree: checkfree.get(stage)! } : {}),
        },
      });
    });
  }
}
