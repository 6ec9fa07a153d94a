// Sharded snapshots: which slots wrote the shares of a step (ShareLayouts), which steps a stage
// can restore from its shares, and what the recovery policy sees of each slot (shareViews); and
// `--snapshot-shares` as a job option.

import { describe, expect, it } from 'vitest';
import { ShareLayouts, restorableShares, shareViews, withMemory } from '../../coordinator/core/share-layouts.ts';
import { compileJobOptions } from '../../domain/job-options.ts';

describe('share layouts', () => {
  it('name the writers of each step, and a rollback drops the layouts of the steps left', () => {
    const l = new ShareLayouts(2);
    expect(l.of(0, 0)).toBeNull();
    l.begin(-1, [[0, 2], [1, 3]]);
    expect(l.of(0, 0)).toEqual([0, 2]);
    expect(l.of(1, 7)).toEqual([1, 3]);
    // Replica 1 out from step 4: snapshots after it are written by replica 0 alone.
    l.begin(4, [[0], [1]]);
    expect(l.of(0, 4)).toEqual([0, 2]);
    expect(l.of(0, 5)).toEqual([0]);
    // Joined at step 6.
    l.begin(6, [[0, 2], [1, 3]]);
    expect(l.of(1, 6)).toEqual([1]);
    expect(l.of(1, 7)).toEqual([1, 3]);
    // Rolled back to step 5: the layout that began at 6 belonged to the steps left.
    l.begin(5, [[0, 2], [1, 3]]);
    expect(l.of(0, 5)).toEqual([0]);
    expect(l.of(0, 6)).toEqual([0, 2]);
  });

  it('a step is restorable once every writer holds its share or can rebuild it', () => {
    const layout = (step: number) => (step <= 4 ? [0, 2] : [0]);
    const held: Record<number, number[]> = { 0: [3, 4, 5], 2: [3] };
    const shards: Record<number, number[]> = { 0: [], 2: [4] };
    const steps = restorableShares(layout, [3, 4, 5, 6], (p) => held[p] ?? [], (p) => new Set(shards[p] ?? []));
    expect(steps).toEqual([3, 4, 5]);
    // Without slot 2's shards, step 4 lacks its share.
    expect(restorableShares(layout, [3, 4, 5], (p) => held[p] ?? [], () => new Set())).toEqual([3, 5]);
  });

  it('give the policy one list per stage, own shares to rebuild, and joiners that gather from live replicas', () => {
    // Stage 0: slots 0 and 2. Slot 2 lost; steps up to 4 written by both, step 5 by slot 0 alone.
    const layoutOf = (_stage: number, step: number) => (step <= 4 ? [0, 2] : [0]);
    const held = (s: number) => (s === 0 ? [4, 5] : []);
    const fromShards = [new Map<number, string>(), new Map<number, string>(), new Map([[4, 'v4']]), new Map<number, string>()];
    const v = shareViews([[0, 2]], layoutOf, held, fromShards, [2]);
    expect(v.restorable[0]).toEqual([4, 5]);
    expect(v.restorable[2]).toEqual([4, 5]);
    // At 4, slot 2 rebuilds its own share; at 5 it wrote none: it gathers it from slot 0.
    expect([...v.fromShards[2]!]).toEqual([[4, 'v4']]);
    expect([...v.fromReplicas[2]!]).toEqual([[5, 0]]);
    expect(v.fromShards[0]!.size).toBe(0);
    expect(v.fromReplicas[0]!.size).toBe(0);
  });
});

describe("the survivors' tensors", () => {
  it('let a survivor keep its step and a lost slot copy a live replica whole, where no share gathering offers it', () => {
    // Stage 0 on slots 0 and 2, stage 1 on slots 1 and 3; slot 3 lost, the others hold step 5 in
    // their tensors; slot 3's share survives in erasure shards for step 4 only.
    const layoutOf = () => [0, 2];
    const layout1 = () => [1, 3];
    const held = (s: number) => (s === 3 ? [] : [3, 4]);
    const fromShards = [new Map<number, string>(), new Map<number, string>(), new Map<number, string>(), new Map([[4, 'v']])];
    const base = shareViews([[0, 2], [1, 3]], (st, step) => (st === 0 ? layoutOf() : layout1()) as readonly number[] | null, held, fromShards, [3]);
    expect(base.restorable).toEqual([[3, 4], [4], [3, 4], [4]]);
    const { views, fromMemory } = withMemory(base, [[0, 2], [1, 3]], (s) => (s === 3 ? -1 : 5), [3]);
    expect(views.restorable).toEqual([[3, 4, 5], [4, 5], [3, 4, 5], [4, 5]]);
    // Slot 3 copies step 5 from slot 1's tensors; at 4 it still rebuilds its share.
    expect([...fromMemory.get(3)!]).toEqual([[5, 1]]);
    expect(views.fromReplicas[3]!.get(5)).toBe(1);
    expect([...views.fromShards[3]!.keys()]).toEqual([4]);
    expect(fromMemory.has(0)).toBe(false);
    // A survivor without a whole state (torn) offers nothing.
    const none = withMemory(base, [[0, 2], [1, 3]], (s) => (s === 1 || s === 3 ? -1 : 5), [3]);
    expect(none.views.restorable[3]).toEqual([4]);
    expect(none.fromMemory.size).toBe(0);
  });
});

describe('--snapshot-shares', () => {
  it('is on by default with replicas, snapshots and erasure coding, and off otherwise', () => {
    expect(compileJobOptions({ nodes: '2', replicas: '2' }).snapshotShares).toBe(true);
    expect(compileJobOptions({ nodes: '2', replicas: '2', snapshotShares: 'off' }).snapshotShares).toBe(false);
    expect(compileJobOptions({ nodes: '2' }).snapshotShares).toBe(false);
    expect(compileJobOptions({ nodes: '2', replicas: '2', ec: 'off' }).snapshotShares).toBe(false);
    expect(compileJobOptions({ nodes: '2', replicas: '2', snapshotEvery: '0' }).snapshotShares).toBe(false);
  });

  it('refuses shares without erasure coding, and words other than on and off', () => {
    expect(() => compileJobOptions({ nodes: '2', replicas: '2', ec: 'off', snapshotShares: 'on' })).toThrow(/--snapshot-shares: on needs erasure coding/);
    expect(() => compileJobOptions({ nodes: '2', replicas: '2', snapshotShares: 'yes' })).toThrow(/--snapshot-shares: must be on or off, got "yes"/);
  });
});
