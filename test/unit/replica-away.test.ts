// A replica out while it is rebuilt: whether the others can train on without it (and who trains
// its micro-batches), the step they go on from, and the commit tracking that leaves its slots out.

import { describe, expect, it } from 'vitest';
import { CommitTracker } from '../../coordinator/core/commit-tracker.ts';
import { awayResumeStep, replicaAway } from '../../coordinator/core/replica-away.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { NodeState } from '../../domain/run-status.ts';

const T = NodeState.training;
const R = NodeState.recovering;

describe('replicaAway', () => {
  // Three replicas of two stages: slots 0,1 | 2,3 | 4,5.
  const job = compileJobOptions({ nodes: '2', replicas: '3' });

  it('keeps by default: the first whole replica after the lost one in ring order hosts it', () => {
    expect(replicaAway(job, 3, [T, T, T, null, T, T])).toEqual({ replica: 1, host: 2, slots: [2, 3], resumed: null, joinAt: null, restoringSinceMs: null, caughtUpAtMs: null });
    // Replica 0 lost: replica 1 hosts it; if replica 1 is not whole, replica 2 does.
    expect(replicaAway(job, 0, [null, T, T, T, T, T])?.host).toBe(1);
    expect(replicaAway(job, 0, [null, T, T, R, T, T])?.host).toBe(2);
  });

  it('shrinks without a host, and none of it without a whole replica left, with stop, one replica or no snapshots', () => {
    expect(replicaAway(compileJobOptions({ nodes: '2', replicas: '3', onReplicaLoss: 'shrink' }), 3, [T, T, T, null, T, T])).toMatchObject({ replica: 1, host: null });
    expect(replicaAway(job, 3, [T, R, T, null, R, T])).toBeNull();
    expect(replicaAway(compileJobOptions({ nodes: '2', replicas: '3', onReplicaLoss: 'stop' }), 3, [T, T, T, null, T, T])).toBeNull();
    expect(replicaAway(compileJobOptions({ nodes: '2' }), 1, [T, null])).toBeNull();
    expect(replicaAway(compileJobOptions({ nodes: '2', replicas: '2', snapshotEvery: '0', ec: 'off' }), 3, [T, T, T, null])).toBeNull();
  });

  it('refuses an unknown policy, naming the flag and the choices', () => {
    expect(() => compileJobOptions({ replicas: '2', onReplicaLoss: 'wait' })).toThrow(/--on-replica-loss: must be one of keep, shrink, stop, got "wait"/);
  });
});

describe('awayResumeStep', () => {
  it('is the newest snapshot every live slot holds, or null', () => {
    expect(awayResumeStep([[2, 3], [3, 4], [1, 3]])).toBe(3);
    expect(awayResumeStep([[2], [3]])).toBeNull();
    expect(awayResumeStep([])).toBeNull();
  });
});

describe('CommitTracker with a replica out', () => {
  const report = (stage: number, step: number, loss = 1) => ({ nodeId: 'n', stage, step, loss, gradNorm: 0.5, clippedGradNorm: 0.5, computeMs: 1, waitMs: 1, stepMs: 2, tokens: 8, epoch: 0 });

  it('completes steps and commits on the slots that train; a host that trained two replicas weighs as both', () => {
    const c = new CommitTracker(4);
    c.park([2, 3]);
    expect(c.activeSlots()).toEqual([0, 1]);
    expect(c.recordStep(report(0, 0), null, 2, 4)).toEqual([]);
    // Replica 0's last stage trained 8 micro-batches (its own and replica 1's).
    expect(c.recordStep(report(1, 0, 3), 0, 2, 8)).toEqual([{ step: 0, loss: 3, microBatches: 8 }]);
    c.recordSnapshot(0, 1);
    c.recordSnapshot(1, 1);
    expect(c.globalCommitStep).toBe(1);
    expect(c.stepUnderWay).toBe(1);
    // Back together: the slots that were out count again (and hold nothing newer).
    c.park([]);
    expect(c.completedSteps).toBe(0);
    expect(c.globalCommitStep).toBe(-1);
  });

  it('averages replicas in replica order when each trained its own, and by micro-batches otherwise', () => {
    const c = new CommitTracker(2);
    c.recordStep(report(0, 0, 2), 0, 2, 4);
    expect(c.recordStep(report(1, 0, 5), 1, 2, 4)).toEqual([{ step: 0, loss: 3.5, microBatches: 8 }]);
    // Shrink-like: only replica 0 trained (4 micro-batches).
    c.park([1]);
    expect(c.recordStep(report(0, 1, 2), 0, 2, 4)).toEqual([{ step: 1, loss: 2, microBatches: 4 }]);
  });
});
