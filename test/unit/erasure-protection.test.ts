// Erasure protection: the placement rule and the shard store's versioning. The coordinator's
// recovery of a lost node from shards is scripted in test/scenario/coordinator/erasure-recovery.txt.

import { describe, expect, it } from 'vitest';
import { autoErasureCode, placeShards, shardsPlaced, type ShardHeader } from '../../domain/erasure-protection.ts';
import { ShardStore } from '../../snapshot-manager/shard-store.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ nodeId: `n${i}`, address: `smp${i}:1` }));

describe('shard placement', () => {
  it('never places a shard on its owner and spreads shards evenly', () => {
    for (const nodes of [4, 5, 6, 8]) {
      const code = autoErasureCode(nodes)!;
      const owners = new Map(Array.from({ length: nodes }, (_, s) => [s, `n${s}`] as const));
      const { plans, load, degraded } = placeShards(owners, ids(nodes), code);
      expect(degraded).toBe(false);
      for (const [stage, plan] of plans) {
        const holders = plan.holders.map((h) => h.nodeId);
        expect(holders).not.toContain(`n${stage}`);
        expect(new Set(holders).size).toBe(code.dataShards + code.parityShards);
      }
      // Every node owns a stage: each holds exactly k + m shards per version.
      expect(new Set(load.values())).toEqual(new Set([code.dataShards + code.parityShards]));
    }
  });

  it('picks RS(2,1) for 4 nodes, RS(3,2) for 6 and RS(4,2) for 8, and nothing for one node', () => {
    expect(autoErasureCode(4)).toEqual({ dataShards: 2, parityShards: 1 });
    expect(autoErasureCode(6)).toEqual({ dataShards: 3, parityShards: 2 });
    expect(autoErasureCode(8)).toEqual({ dataShards: 4, parityShards: 2 });
    expect(autoErasureCode(1)).toBeNull();
  });

  it('says it is degraded when there are fewer other nodes than shards, and places one shard per other node', () => {
    const owners = new Map([[0, 'n0'], [1, 'n1']]);
    const { plans, degraded } = placeShards(owners, ids(3), { dataShards: 2, parityShards: 1 });
    expect(degraded).toBe(true);
    const holders = plans.get(0)!.holders.map((h) => h.nodeId);
    expect(holders).not.toContain('n0');
    // Two other nodes: the two data shards, one on each; the parity shard is not placed.
    expect(holders).toHaveLength(2);
    expect(new Set(holders).size).toBe(2);
    expect(plans.get(0)!.degraded).toBe(true);
  });

  it('degraded, never holds more per node than the full plan: 4 stages in RS(3,1) on 4 nodes hold 3 shards each, on distinct nodes', () => {
    // A node lost from 4 stages and a spare: the spare (n4) took the lost node's stage over.
    const owners = new Map([[0, 'n0'], [1, 'n4'], [2, 'n2'], [3, 'n3']]);
    const nodes = ['n0', 'n2', 'n3', 'n4'].map((nodeId) => ({ nodeId, address: `${nodeId}:1` }));
    const { plans, load, degraded } = placeShards(owners, nodes, { dataShards: 3, parityShards: 1 });
    expect(degraded).toBe(true);
    expect([...load.values()]).toEqual([3, 3, 3, 3]);
    for (const [stage, plan] of plans) {
      const holders = plan.holders.map((h) => h.nodeId);
      expect(holders).not.toContain(owners.get(stage));
      // The three data shards, each on a distinct other node: the loss of any one node leaves
      // every stage whose node survives in place, and the lost node's stage all of its shards.
      expect(holders).toHaveLength(3);
      expect(new Set(holders).size).toBe(3);
    }
  });

  it('degraded below k other nodes, doubles up only the data shards, spread over the nodes', () => {
    // RS(3,1) with 3 stages on 3 nodes: 2 other nodes per stage for 3 data shards.
    const owners = new Map([[0, 'n0'], [1, 'n1'], [2, 'n2']]);
    const { plans, load } = placeShards(owners, ids(3), { dataShards: 3, parityShards: 1 });
    for (const [stage, plan] of plans) {
      const holders = plan.holders.map((h) => h.nodeId);
      expect(holders).toHaveLength(3);
      expect(holders).not.toContain(owners.get(stage));
      expect(new Set(holders).size).toBe(2);
    }
    expect([...load.values()].sort()).toEqual([3, 3, 3]);
  });

  it('places as many shards as shardsPlaced says', () => {
    const code = { dataShards: 3, parityShards: 2 };
    expect([1, 2, 3, 4, 5, 6].map((others) => shardsPlaced(code, others))).toEqual([3, 3, 3, 4, 5, 5]);
  });
});

describe('shard store', () => {
  const header = (stage: number, step: number, epoch: number, index: number, commit: number): ShardHeader => ({
    ownerNodeId: 'n9',
    stage,
    step,
    epoch,
    index,
    crc32: 0,
    bytes: 4,
    layout: { dataShards: 2, parityShards: 1, totalBytes: 8, stripeBytes: 4, stripes: 1 },
    snapshot: { stage, step, tensors: [], scalars: {} },
    protectedCommitStep: commit,
  });

  it('frees versions older than the protected commit step, and abandoned timelines', () => {
    const store = new ShardStore();
    store.put(header(1, 5, 0, 0, -1), new Uint8Array(4));
    store.put(header(1, 6, 0, 0, 5), new Uint8Array(4));
    store.put(header(1, 7, 0, 0, 5), new Uint8Array(4));
    expect(store.heldShards).toBe(3);
    store.put(header(1, 8, 0, 0, 7), new Uint8Array(4));
    expect(store.get(1, 5, 0)).toHaveLength(0);
    expect(store.get(1, 6, 0)).toHaveLength(0);
    expect(store.get(1, 7, 0)).toHaveLength(1);
    // Epoch 1 rolled back to step 7: step 8 of epoch 0 is of an abandoned timeline.
    store.put(header(1, 8, 1, 0, 7), new Uint8Array(4));
    expect(store.get(1, 8, 0)).toHaveLength(0);
    expect(store.get(1, 8, 1)).toHaveLength(1);
    expect(store.get(1, 7, 0)).toHaveLength(1);
    expect(store.heldBytes).toBe(8);
  });

  it('keeps an older epoch\'s version when the newer epoch did not go back before it', () => {
    // A replica joined after step 9 (epoch 1 starts there, nothing rolled back): step 9 of epoch
    // 0 is the newest version a rebuild has until step 10 of epoch 1 is protected everywhere.
    const store = new ShardStore();
    store.put(header(1, 8, 0, 0, 7), new Uint8Array(4));
    store.put(header(1, 9, 0, 0, 7), new Uint8Array(4));
    store.put(header(1, 10, 1, 0, 7), new Uint8Array(4));
    expect(store.get(1, 8, 0)).toHaveLength(1);
    expect(store.get(1, 9, 0)).toHaveLength(1);
    expect(store.get(1, 10, 1)).toHaveLength(1);
    // Epoch 2 went back to step 8: its step 9 makes epoch 0's and epoch 1's later versions stale.
    store.put(header(1, 9, 2, 0, 7), new Uint8Array(4));
    expect(store.get(1, 9, 0)).toHaveLength(0);
    expect(store.get(1, 10, 1)).toHaveLength(0);
    expect(store.get(1, 8, 0)).toHaveLength(1);
    expect(store.get(1, 9, 2)).toHaveLength(1);
  });

  it('says how many bytes each rule freed', () => {
    const store = new ShardStore();
    expect(store.put(header(1, 5, 0, 0, -1), new Uint8Array(4))).toBe(0);
    expect(store.put(header(1, 6, 0, 0, -1), new Uint8Array(4))).toBe(0);
    expect(store.put(header(1, 7, 0, 0, 6), new Uint8Array(4))).toBe(4);
    expect(store.free({ stage: 1, step: 7, epoch: 0, protectedCommitStep: 7 })).toBe(4);
    expect(store.free({ stage: 1, step: 7, epoch: 0, protectedCommitStep: 7 })).toBe(0);
  });

  it('frees every stage\'s versions below the protected commit step as soon as it moves', () => {
    const store = new ShardStore();
    for (const stage of [0, 2]) for (const step of [3, 4]) store.put(header(stage, step, 0, 1, 3), new Uint8Array(4));
    expect(store.heldShards).toBe(4);
    expect(store.freeBelow(4)).toBe(8);
    expect(store.get(0, 3, 0)).toHaveLength(0);
    expect(store.get(2, 3, 0)).toHaveLength(0);
    expect(store.get(0, 4, 0)).toHaveLength(1);
    expect(store.get(2, 4, 0)).toHaveLength(1);
    expect(store.freeBelow(4)).toBe(0);
  });

  it('drops every version of the stage the node takes over, and only those', () => {
    const store = new ShardStore();
    store.put(header(1, 3, 0, 0, -1), new Uint8Array(4));
    store.put(header(1, 4, 0, 0, -1), new Uint8Array(4));
    store.put(header(2, 4, 0, 0, -1), new Uint8Array(4));
    expect(store.dropStage(1)).toBe(8);
    expect(store.heldShards).toBe(1);
    expect(store.get(2, 4, 0)).toHaveLength(1);
  });
});
