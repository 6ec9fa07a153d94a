// The churn experiment's failure model: the per-step probability, and seeded schedules.

import { describe, expect, it } from 'vitest';
import { failureSchedule, injectSpec, perStepFailureProbability } from '../../experiment/failure-model.ts';

describe('failure model', () => {
  it('turns an hourly rate into a per-step probability that compounds back to it', () => {
    // 10% per hour, 0.6 s steps, real time: 1 - 0.9^(0.6/3600).
    const p = perStepFailureProbability(0.1, 0.6, 3600);
    expect(p).toBeCloseTo(1 - Math.pow(0.9, 1 / 6000), 15);
    // Over an hour of steps the survival is 0.9 again.
    expect(Math.pow(1 - p, 6000)).toBeCloseTo(0.9, 10);
    // A compressed hour of 60 s: 60x the exposure per step.
    expect(perStepFailureProbability(0.1, 0.6, 60)).toBeCloseTo(1 - Math.pow(0.9, 0.01), 15);
    expect(perStepFailureProbability(0, 0.6, 60)).toBe(0);
    expect(() => perStepFailureProbability(1, 0.6, 60)).toThrow(/\[0, 1\)/);
  });

  it('draws the same schedule for the same seed, about p x stages x steps failures, none in the first and last steps', () => {
    const o = { stages: 6, steps: 2000, probability: 0.01, seed: 7 };
    const a = failureSchedule(o);
    expect(failureSchedule(o)).toEqual(a);
    expect(failureSchedule({ ...o, seed: 8 })).not.toEqual(a);
    // Expected 0.01 x 6 x 1995 = 119.7; 4 standard deviations is about 43.
    expect(Math.abs(a.length - 119.7)).toBeLessThan(43);
    expect(Math.min(...a.map((i) => i.step))).toBeGreaterThanOrEqual(2);
    expect(Math.max(...a.map((i) => i.step))).toBeLessThan(1997);
    expect(new Set(a.map((i) => `${i.step}:${i.stage}`)).size).toBe(a.length);
    expect(injectSpec(a.slice(0, 2))).toMatch(/^\d+:\d:node-kill,\d+:\d:node-kill$/);
    // A replica's stage is written STAGE@REPLICA (replica 0 as the stage alone), as --inject reads it.
    expect(injectSpec([{ step: 3, stage: 1, replica: 1, kind: 'node-kill' }, { step: 4, stage: 0, replica: 0, kind: 'node-kill' }])).toBe('3:1@1:node-kill,4:0:node-kill');
    expect(failureSchedule({ ...o, probability: 0 })).toEqual([]);
  });
});
