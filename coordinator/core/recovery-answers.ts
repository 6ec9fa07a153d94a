// The answers a recovery waits for. Each node placed in a recovery is asked to halt (and say what
// it holds) or to apply its assignment (and say it is ready); the recovery goes on only once each
// has answered. A node that has not answered within the bound is treated as lost, like one whose
// lease ran out: its slot is filled again (a spare, or a node that joins), and the recovery goes
// on without it. A slot no node can fill still fails the run as before.
//
// The bound is --recovery-timeout-ms, counted from each ask. The lease cannot serve: it counts
// from a node's last heartbeat, so it never catches a node that beats but does not answer, and
// with slow heartbeats (a long lease) a recovery that waits on thousands of nodes under churn
// always has one among them that went silent after its last beat and is not yet found; a lease
// is also too short for an answer to an assignment, which carries the restore (a rebuild from
// shards or a copy from a replica) and at real sizes takes longer than a few heartbeats. The
// recovery timeout is the job's own bound on how long a recovery may take, restore included: an
// answer not given within it will not come in time, and it used to fail the whole run. Under
// churn it also sets how fast a recovery converges: each round may wait that long for a node
// lost since it last answered, so it pays to keep it short against the time between losses among
// the nodes a recovery waits on (the coordinator simulation sets it to ten of its ticks).

import type { Action } from './core-events.ts';

/** What a node placed in a recovery was asked: to halt, or to apply its assignment. */
export type Ask = 'halt' | 'assign';

/** A question a node has not answered yet. */
export interface Unanswered {
  readonly slot: number;
  readonly nodeId: string;
  readonly ask: Ask;
  readonly epoch: number;
  readonly atMs: number;
}

/** The questions of the recovery under way that wait for an answer, by slot (one each: a newer ask replaces an older). */
export class RecoveryAnswers {
  private readonly waiting = new Map<number, Unanswered>();

  ask(slot: number, nodeId: string, ask: Ask, epoch: number, atMs: number): void {
    this.waiting.set(slot, { slot, nodeId, ask, epoch, atMs });
  }

  /** The slot's node answered, or the slot has no node to answer any more. */
  answered(slot: number): void {
    this.waiting.delete(slot);
  }

  /** How many questions wait for an answer. */
  get size(): number {
    return this.waiting.size;
  }

  /** The questions older than `boundMs` at `now`, oldest slot first. */
  overdue(now: number, boundMs: number): Unanswered[] {
    const out: Unanswered[] = [];
    for (const u of this.waiting.values()) if (now - u.atMs > boundMs) out.push(u);
    return out.sort((a, b) => a.slot - b.slot);
  }
}

/** The log line that says why a node is given up. */
export function unansweredLog(u: Unanswered, slotName: string, boundMs: number, now: number): Action {
  const what = u.ask === 'halt' ? 'halt' : 'assignment';
  return {
    type: 'log',
    level: 'warn',
    msg: `${slotName}: node ${u.nodeId} did not answer its ${what} of epoch ${u.epoch} within ${boundMs} ms (--recovery-timeout-ms): it is treated as lost, and its stage is filled again`,
    fields: { nodeId: u.nodeId, askedAtMs: u.atMs, waitedMs: now - u.atMs },
  };
}

/**
 * A recovery starts over (every survivor halts again in a new epoch) when a node is lost after its
 * plan went out, and giving up an unanswered node is such a loss: a node that never answers, then
 * the spare that takes its place, and so on, would start it over without end. Each start over
 * follows a loss; past this many in a row without training going on, nodes are lost faster than a
 * recovery completes, and the run fails saying so. In the coordinator simulation's day of churn
 * (a loss every 18 s, a round of a few seconds) a recovery started over at most 4 times.
 */
export const MAX_RECOVERY_RESTARTS = 20;
