// Replicas of the pipeline as options and slots: `--replicas D` compiles, refuses what it cannot
// honour by name, numbers each (replica, stage) as a slot, gives replica r the step's
// micro-batches r*M .. (r+1)*M-1, and `--inject STEP:STAGE@REPLICA:KIND` targets one replica.

import { describe, expect, it } from 'vitest';
import { refusal } from '../support/refusal.ts';
import { parseInjections } from '../../domain/inject-spec.ts';
import { MAX_REPLICAS, MAX_SLOTS, compileJobOptions, tokensPerStep } from '../../domain/job-options.ts';
import { batchMicroBatch, replicaOfSlot, slotCount, slotName, slotOf, slotsOfStage, stageOfSlot } from '../../domain/replica-slots.ts';


describe('replica slots', () => {
  const job = { stages: 3, replicas: 2 };

  it('number each stage of each replica once, replica by replica', () => {
    expect(slotCount(job)).toBe(6);
    const seen = new Set<number>();
    for (let r = 0; r < 2; r++) {
      for (let s = 0; s < 3; s++) {
        const slot = slotOf(job, r, s);
        expect([stageOfSlot(job, slot), replicaOfSlot(job, slot)]).toEqual([s, r]);
        seen.add(slot);
      }
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(slotsOfStage(job, 1)).toEqual([1, 4]);
    expect(slotName(job, 4)).toBe('stage 1@1');
    // One replica: a slot is its stage, named as before.
    expect(slotOf({ stages: 3, replicas: 1 }, 0, 2)).toBe(2);
    expect(slotName({ stages: 3, replicas: 1 }, 2)).toBe('stage 2');
  });

  it("give each replica its own micro-batches of the step's batch, none shared", () => {
    const m = 4;
    const all = [0, 1, 2].flatMap((r) => Array.from({ length: m }, (_, mb) => batchMicroBatch(m, r, mb)));
    expect(all).toEqual(Array.from({ length: 12 }, (_, i) => i));
  });
});

describe('--replicas', () => {
  it('defaults to one, and multiplies the nodes and the tokens of a step', () => {
    expect(compileJobOptions({}).replicas).toBe(1);
    const job = compileJobOptions({ nodes: '2', replicas: '3' });
    expect(job.replicas).toBe(3);
    expect(tokensPerStep(job)).toBe(3 * job.microBatches * job.microBatchSize * job.model.seqLen);
  });

  it.each([['0'], ['-1'], ['two'], ['1.5'], [String(MAX_REPLICAS + 1)]])('refuses --replicas %s, naming the flag', (replicas) => {
    const e = refusal(() => compileJobOptions({ replicas }));
    expect(e.field).toBe('--replicas');
    expect(e.message).toMatch(new RegExp(`must be an integer from 1 to ${MAX_REPLICAS}`));
  });

  it('refuses more nodes than a coordinator takes', () => {
    expect(refusal(() => compileJobOptions({ nodes: '64', replicas: '300' })).message).toMatch(new RegExp(`300 replicas of 64 stages need 19200 nodes; at most ${MAX_SLOTS}`));
  });

  it('refuses CheckFree, which would leave replicas unlike each other; takes disk checkpoints', () => {
    for (const recovery of ['checkfree', 'checkfree-plus']) {
      const e = refusal(() => compileJobOptions({ nodes: '4', replicas: '2', recovery }));
      expect(e.field).toBe('--recovery');
      expect(e.message).toMatch(/replicas would hold different weights/);
    }
    expect(compileJobOptions({ nodes: '2', replicas: '2', checkpointDir: '/tmp/x', checkpointEvery: '5', recovery: 'checkpoint' }).recovery).toBe('checkpoint');
  });

  it('counts every replica in the nodes an erasure code must fit on', () => {
    // 2 stages x 2 replicas: 3 other nodes for each stage.
    expect(compileJobOptions({ nodes: '2', replicas: '2', ec: '2,1' }).ec).toEqual({ dataShards: 2, parityShards: 1 });
    expect(refusal(() => compileJobOptions({ nodes: '2', replicas: '2', ec: '3,1' })).message).toMatch(/--nodes 2 --replicas 2 --spares 0 gives 3/);
  });
});

describe('--inject STEP:STAGE@REPLICA:KIND', () => {
  const limits = { stages: 4, replicas: 2, steps: 10, snapshotEvery: 1 };

  it('targets one replica, replica 0 when not given', () => {
    expect(parseInjections('3:1@1:worker-kill,4:2:node-kill', limits)).toEqual([
      { step: 3, stage: 1, replica: 1, kind: 'worker-kill' },
      { step: 4, stage: 2, replica: 0, kind: 'node-kill' },
    ]);
  });

  it.each([
    ['3:1@2:worker-kill', /replica 2 is out of range 0\.\.1/],
    ['3:1@:worker-kill', /is not STEP:STAGE:KIND or STEP:STAGE@REPLICA:KIND/],
    ['3:@1:worker-kill', /is not STEP:STAGE:KIND or STEP:STAGE@REPLICA:KIND/],
    ['3:1@1@1:worker-kill', /is not STEP:STAGE:KIND or STEP:STAGE@REPLICA:KIND/],
    ['3:1@x:worker-kill', /is not STEP:STAGE:KIND or STEP:STAGE@REPLICA:KIND/],
  ])('refuses %s', (spec, message) => {
    const e = refusal(() => parseInjections(spec, limits));
    expect(e.field).toBe('--inject');
    expect(e.message).toMatch(message);
  });

  it('says how to have more replicas when the job has one', () => {
    expect(refusal(() => parseInjections('3:1@1:worker-kill', { ...limits, replicas: 1 })).message).toMatch(/one replica: set --replicas to have more/);
  });
});
