// The README's memory formula and the model sizing the big-state preset and `bench scale` use.

import { describe, expect, it } from 'vitest';
import { memoryBudget } from '../../domain/memory-budget.ts';
import { MODEL_PRESETS, blockStateBytes, compileJobOptions, widthForStateMib } from '../../domain/job-options.ts';

const MiB = 2 ** 20;

describe('memory budget', () => {
  it('adds the parts: base, worker, two slots, two versions of the shards held, a shard being received', () => {
    const b = memoryBudget({ stateBytes: 300 * MiB, dataShards: 3, parityShards: 1, stages: 4, nodes: 5 });
    // Each of the 3 other stages spreads 4 shards over the 4 other nodes: 3 per version.
    expect(b.shardsHeldPerVersion).toBe(3);
    expect(b.shardBytes).toBe(2 * 3 * 100 * MiB);
    expect(b.slotBytes).toBe(600 * MiB);
    expect(b.workerBytes).toBe(660 * MiB);
    expect(b.smpWorkBytes).toBe(100 * MiB);
    expect(b.baseBytes).toBe(240 * MiB);
    expect(b.stageNodeBytes).toBe((240 + 660 + 600 + 600 + 100) * MiB);
    expect(b.stageNodeVsState).toBeCloseTo(2200 / 300, 10);
    // A spare holds one shard of each of the 4 stages per version, and no stage.
    expect(b.spareNodeBytes).toBe((240 + 2 * 4 * 100 + 100) * MiB);
    // The node that takes a lost stage over peaks as a stage node.
    expect(b.takeOverNodeBytes).toBe(b.stageNodeBytes);
  });

  it('holds more shards per node with fewer nodes to spread them over', () => {
    const wide = memoryBudget({ stateBytes: 300 * MiB, dataShards: 2, parityShards: 1, stages: 4, nodes: 8 });
    const tight = memoryBudget({ stateBytes: 300 * MiB, dataShards: 2, parityShards: 1, stages: 4, nodes: 4 });
    expect(wide.shardsHeldPerVersion).toBe(2);
    expect(tight.shardsHeldPerVersion).toBe(3);
  });

  it('after a node loss with too few nodes left, counts one shard per other node (a degraded plan), not k + m', () => {
    // 4 stages and a spare in RS(3,1), one node lost: 3 other nodes per stage, 3 shards each.
    const left = memoryBudget({ stateBytes: 300 * MiB, dataShards: 3, parityShards: 1, stages: 4, nodes: 4 });
    expect(left.shardsHeldPerVersion).toBe(3);
    expect(left.stageNodeBytes).toBe(memoryBudget({ stateBytes: 300 * MiB, dataShards: 3, parityShards: 1, stages: 4, nodes: 5 }).stageNodeBytes);
    // Fewer other nodes than k: the k data shards double up.
    expect(memoryBudget({ stateBytes: 300 * MiB, dataShards: 3, parityShards: 1, stages: 3, nodes: 3 }).shardsHeldPerVersion).toBe(3);
  });
});

describe('model sizing', () => {
  it('counts a block’s state as the stage really holds it (the wide preset: 257 MiB per middle stage)', () => {
    expect(2 * blockStateBytes(968, 4)).toBe(269_955_840);
    expect(widthForStateMib(256, 2)).toBe(968);
    expect(2 * blockStateBytes(widthForStateMib(256, 2), 4)).toBeGreaterThanOrEqual(256 * MiB);
    expect(2 * blockStateBytes(widthForStateMib(256, 2) - 8, 4)).toBeLessThan(256 * MiB);
  });

  it('--model wide sets the shape flags not given, and a given flag wins', () => {
    const wide = compileJobOptions({ nodes: '4', model: 'wide' });
    expect(wide.model).toMatchObject({ dModel: MODEL_PRESETS.wide.dModel, heads: 8, layersPerStage: 2, seqLen: 16 });
    expect(wide.microBatchSize).toBe(1);
    expect(compileJobOptions({ nodes: '4', model: 'wide', dModel: '512' }).model.dModel).toBe(512);
    expect(compileJobOptions({ nodes: '4' }).model.dModel).toBe(64);
    expect(() => compileJobOptions({ nodes: '4', model: 'huge' })).toThrow(/--model.*default, wide.*"huge"/);
  });
});
