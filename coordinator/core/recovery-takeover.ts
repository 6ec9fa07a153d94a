// A recovery across a change of leader: what of it a new leader needs (its failures, the first
// then the others), how the new leader starts it again in a new epoch, and how each placed node
// is halted as it re-attaches. Nothing else of it is kept: the survivors say again what they
// hold, and each question to a node counts from the new leader's asking.

import type { JobOptions } from '../../domain/job-options.ts';
import { slotCount } from '../../domain/replica-slots.ts';
import { NodeState, RunPhase } from '../../domain/run-status.ts';
import type { CommitTracker } from './commit-tracker.ts';
import type { Action } from './core-events.ts';
import type { FailureInfo } from './failure-log.ts';
import type { Membership, NodeRecord } from './membership.ts';
import { freshRecoveryState, type RecoveryContext, type RecoveryState } from './recovery-state.ts';

/** What a new leader needs of the recovery under way: its failures; null when none is. */
export function durableRecovery(r: RecoveryState | null): readonly FailureInfo[] | null {
  return r ? [r.failure, ...r.others] : null;
}

/**
 * A new leader's: the recovery the old leader had under way starts again in a new epoch, every
 * replica waiting for it (null when there was none). Its slots without a node are vacant; each
 * placed node is halted when it re-attaches (reattachHalt), and the recovery goes on as after any
 * failure.
 */
export function resumedRecovery(job: JobOptions, members: Membership, commits: CommitTracker, ctx: RecoveryContext, failures: readonly FailureInfo[]): RecoveryState | null {
  const [failure, ...others] = failures;
  if (!failure) return null;
  const r = freshRecoveryState(ctx.nextEpoch(), failure, commits.stepUnderWay, null);
  r.others.push(...others);
  for (let slot = 0; slot < slotCount(job); slot++) {
    if (commits.stage(slot).nodeId !== null) continue;
    const former = [...failures].reverse().find((f) => f.stage === slot);
    r.vacant.set(slot, former?.nodeId ?? '');
  }
  for (const n of members.all()) {
    if (n.stage !== null && n.state !== NodeState.lost && n.state !== NodeState.stopped && n.state !== NodeState.recovering) members.move(n, NodeState.recovering);
  }
  ctx.setPhase(RunPhase.recovering);
  return r;
}

/** A placed node re-attached during a resumed recovery it has not reported on: it halts in the recovery's epoch, and its answer is awaited. */
export function reattachHalt(r: RecoveryState, node: NodeRecord, resumeAtMost: () => number, nowMs: number, out: Action[]): void {
  if (r.decision !== null || node.stage === null || r.snapshotSteps.has(node.stage)) return;
  out.push({ type: 'send', nodeId: node.nodeId, command: { kind: 'halt', epoch: r.epoch, reason: 'a new coordinator leads the recovery', resumeAtMost: resumeAtMost() } });
  r.answers.ask(node.stage, node.nodeId, 'halt', r.epoch, nowMs);
}
