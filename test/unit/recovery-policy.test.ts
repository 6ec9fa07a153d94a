// The recovery choice on its own: what survives in, the tier and its reason out.

import { describe, expect, it } from 'vitest';
import { ReasonKind, checkfreeObstacle, planRecovery, recoveryOutlook, unrecoverable, type OutlookView, type RecoveryView } from '../../coordinator/core/recovery-policy.ts';

/** Four stages, stage 1 lost; every stage reported a step. */
function view(over: Partial<RecoveryView> = {}): RecoveryView {
  return {
    policy: 'auto',
    stages: 4,
    replicas: 1,
    lost: [1],
    restorable: [[3, 4], [3, 4], [3, 4], [3, 4]],
    fromShards: [new Map(), new Map(), new Map(), new Map()],
    fromReplicas: [new Map(), new Map(), new Map(), new Map()],
    dataShards: 2,
    reported: [true, true, true, true],
    diskTier: false,
    shardShortfall: '',
    ...over,
  };
}

describe('planRecovery', () => {
  it('restores the newest step every stage holds, locally', () => {
    const d = planRecovery(view());
    expect(d.plan).toEqual({ tier: 'local-snapshot', step: 4, rebuilt: [], copied: new Map() });
    expect(d.reason.kind).toBe(ReasonKind.commonSnapshot);
    expect(d.fallback).toBeNull();
  });

  it('rebuilds from erasure shards the stages whose node is gone, and says how many shards live', () => {
    const d = planRecovery(view({ restorable: [[3, 4], [3, 4], [3, 4], [3, 4]], fromShards: [new Map(), new Map([[3, 3], [4, 2]]), new Map(), new Map()] }));
    expect(d.plan).toEqual({ tier: 'erasure-rebuild', step: 4, rebuilt: [1], copied: new Map() });
    expect(d.reason.text).toContain('stage 1 from 2 live shards (k=2)');
  });

  it('copies from a live replica rather than decoding shards, and only where the step is not held locally', () => {
    // Two replicas of two stages: slot 1 (stage 1 of replica 0) lost with its node; slot 3 is its replica.
    const replicas = {
      stages: 2,
      replicas: 2,
      lost: [1],
      restorable: [[4], [4], [4], [4]],
      fromShards: [new Map(), new Map([[4, 2]]), new Map(), new Map()],
      fromReplicas: [new Map(), new Map([[4, 3]]), new Map(), new Map()],
    };
    const d = planRecovery(view(replicas));
    expect(d.plan).toEqual({ tier: 'replica-copy', step: 4, rebuilt: [], copied: new Map([[1, 3]]) });
    expect(d.reason.text).toContain('stage 1 copied from its replica, stage 3');
    // A replica that holds only an older step: the newest common step comes from shards.
    const older = planRecovery(view({ ...replicas, restorable: [[3, 4], [3, 4], [3, 4], [3, 4]], fromReplicas: [new Map(), new Map([[3, 3]]), new Map(), new Map()] }));
    expect(older.plan).toEqual({ tier: 'erasure-rebuild', step: 4, rebuilt: [1], copied: new Map() });
    // With a replica and no shards at all (a whole zone lost), the copy alone brings it back.
    const noShards = planRecovery(view({ ...replicas, fromShards: [new Map(), new Map(), new Map(), new Map()] }));
    expect(noShards.plan).toMatchObject({ tier: 'replica-copy', step: 4 });
  });

  it('falls to CheckFree under auto when no step is common, and to the disk tier when CheckFree cannot', () => {
    const none = { restorable: [[4], [], [4], [4]] };
    expect(planRecovery(view(none)).plan).toEqual({ tier: 'checkfree', lost: [1] });
    expect(planRecovery(view(none)).reason.kind).toBe(ReasonKind.checkfreeCan);
    const edge = planRecovery(view({ ...none, lost: [0], restorable: [[], [4], [4], [4]], diskTier: true }));
    expect(edge.plan).toEqual({ tier: 'disk-checkpoint' });
    expect(edge.reason.kind).toBe(ReasonKind.noCommonSnapshot);
    expect(edge.fallback).toMatch(/CheckFree cannot rebuild stage 0 \(the embedding\)/);
    const fail = planRecovery(view({ ...none, lost: [0], restorable: [[], [4], [4], [4]] }));
    expect(fail.plan).toEqual({ tier: 'fail' });
    expect(fail.reason.text).toMatch(/no disk checkpoint to fall back to \(--checkpoint-dir\)$/);
  });

  it('obeys a forced policy', () => {
    expect(planRecovery(view({ policy: 'checkpoint', diskTier: true })).plan).toEqual({ tier: 'disk-checkpoint' });
    expect(planRecovery(view({ policy: 'checkpoint', diskTier: true })).reason.kind).toBe(ReasonKind.policy);
    expect(planRecovery(view({ policy: 'checkfree' })).plan).toEqual({ tier: 'checkfree', lost: [1] });
    expect(planRecovery(view({ policy: 'checkfree-plus', lost: [0] })).plan).toEqual({ tier: 'checkfree-plus', lost: [0] });
    // --recovery snapshot never goes past the snapshot tiers.
    const snap = planRecovery(view({ policy: 'snapshot', restorable: [[4], [], [4], [4]], diskTier: true }));
    expect(snap.plan).toEqual({ tier: 'fail' });
    expect(snap.reason.text).toMatch(/\(--recovery snapshot\)$/);
    // A forced CheckFree that cannot: to the disk tier.
    const cannot = planRecovery(view({ policy: 'checkfree', lost: [1, 2], diskTier: true }));
    expect(cannot.plan).toEqual({ tier: 'disk-checkpoint' });
    expect(cannot.reason.kind).toBe(ReasonKind.checkfreeCannot);
  });

  it('matches a naive search for the newest common step over many random cases', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let trial = 0; trial < 500; trial++) {
      const stages = 2 + rand(4);
      const restorable = Array.from({ length: stages }, () => [...new Set(Array.from({ length: rand(4) }, () => rand(6)))]);
      let naive = -1;
      for (let step = 0; step < 6; step++) if (restorable.every((r) => r.includes(step))) naive = step;
      const d = planRecovery(view({ stages, lost: [0], restorable, reported: restorable.map(() => true), policy: 'snapshot', fromShards: restorable.map(() => new Map()) }));
      if (naive < 0) expect(d.plan.tier).toBe('fail');
      else expect(d.plan).toEqual({ tier: 'local-snapshot', step: naive, rebuilt: [] });
    }
  });
});

describe('checkfreeObstacle and unrecoverable', () => {
  it('names what stands in CheckFree\'s way', () => {
    expect(checkfreeObstacle('auto', 4, [2], [true, true, true, true])).toBeNull();
    expect(checkfreeObstacle('auto', 4, [1, 2], [true, true, true, true])).toMatch(/neighbouring stages 1 and 2/);
    expect(checkfreeObstacle('auto', 4, [2], [true, false, true, true])).toMatch(/gradient norms of stage 2's neighbours/);
    expect(checkfreeObstacle('checkfree-plus', 4, [2, 3], [true, true, true, true])).toMatch(/copies its swap partner, stage 3, which is lost too/);
  });

  it('says at once when nothing can bring a stage back', () => {
    const job = { snapshotEvery: 0, checkpointDir: null, recovery: 'auto' as const, stages: 4, replicas: 1 };
    expect(unrecoverable(job, 1, [true, true, true, true])).toBeNull();
    expect(unrecoverable(job, 0, [true, true, true, true])).toMatch(/^nothing can bring stage 0 back: snapshots are off/);
    expect(unrecoverable({ ...job, snapshotEvery: 1 }, 0, [true, true, true, true])).toBeNull();
  });
});

describe('recoveryOutlook: fail at once or wait for a node', () => {
  /** Two stages, stage 1's node and snapshot manager gone, no erasure code, no disk tier. */
  function outlook(over: Partial<OutlookView> = {}): OutlookView {
    return {
      policy: 'auto',
      stages: 2,
      replicas: 1,
      lost: [1],
      restorable: [null, []],
      dataShards: null,
      reported: [true, true],
      diskTier: false,
      shardShortfall: '; erasure coding is off (2 node(s): too few other nodes to hold shards (3 nodes or more needed))',
      ...over,
    };
  }

  it('gives up when no node that joins could bring the stage back, saying why and what would have saved the run', () => {
    const r = recoveryOutlook(outlook());
    expect(r?.kind).toBe(ReasonKind.nothingToRebuild);
    expect(r?.text).toMatch(/^nothing can bring stage 1 back, whichever node joins: no snapshot of stage 1 is left to restore or rebuild: erasure coding is off/);
    expect(r?.text).toMatch(/CheckFree cannot rebuild stage 1 \(the last, with the head\)/);
    expect(r?.text).toMatch(/there is no disk checkpoint \(--checkpoint-dir\); erasure shards on other nodes .* or a disk checkpoint \(--checkpoint-dir DIR\) would have saved the run$/);
  });

  it('waits while a node that joins could still recover: shards, CheckFree, the disk tier, or a node that may come back', () => {
    // Enough live shards of a step: a node that joins rebuilds it.
    expect(recoveryOutlook(outlook({ restorable: [null, [4]], dataShards: 1 }))).toBeNull();
    // An intermediate stage whose neighbours reported: CheckFree.
    expect(recoveryOutlook(outlook({ stages: 3, lost: [1], restorable: [null, [], null], reported: [true, true, true] }))).toBeNull();
    expect(recoveryOutlook(outlook({ diskTier: true }))).toBeNull();
    // Nothing known to be gone yet (a probe under way, or a node without a snapshot manager of its own).
    expect(recoveryOutlook(outlook({ restorable: [null, null] }))).toBeNull();
  });

  it('judges as planRecovery does: no step common to every stage, or a policy that rules the tier out', () => {
    // Two lost stages whose shards rebuild different steps: no common step, and CheckFree cannot.
    expect(recoveryOutlook(outlook({ stages: 3, lost: [0, 2], restorable: [[3], null, [4]], dataShards: 1, reported: [true, true, true] }))?.kind).toBe(ReasonKind.nothingToRebuild);
    // --recovery snapshot never reaches for the disk tier.
    expect(recoveryOutlook(outlook({ policy: 'snapshot', diskTier: true }))?.text).toMatch(/--recovery snapshot rules out CheckFree; --recovery snapshot rules out the disk tier/);
    // Forced CheckFree on an edge stage, with shards it would not use.
    expect(recoveryOutlook(outlook({ policy: 'checkfree', stages: 3, restorable: [null, null, [4]], lost: [2], dataShards: 1, reported: [true, true, true] }))?.text).toMatch(/--recovery checkfree uses no snapshots; CheckFree cannot rebuild stage 2/);
  });
});
