// CheckFree's rule, checked against numbers worked out by hand. The coordinator's choice of
// CheckFree as a recovery tier is scripted in test/scenario/coordinator/checkfree.txt.

import { describe, expect, it } from 'vitest';
import { checkfreeAverage, checkfreeWeights, counterpartName } from '../../domain/checkfree.ts';

describe('the CheckFree averaging rule', () => {
  it('weighs the next stage by its gradient norm and the previous one by its own, plus 1e-4 each', () => {
    // ||g_{i+1}|| = 0.3, ||g_{i-1}|| = 0.1: a = 0.3001, b = 0.1001.
    const w = checkfreeWeights(0.3, 0.1);
    expect(w.a).toBeCloseTo(0.3001, 12);
    expect(w.b).toBeCloseTo(0.1001, 12);
    const next = new Float32Array([1, 2, -4]);
    const prev = new Float32Array([5, 0, 4]);
    // (0.3001 * 1 + 0.1001 * 5) / 0.4002 = 0.8006 / 0.4002 = 2.000499...
    // (0.3001 * 2 + 0.1001 * 0) / 0.4002 = 0.6002 / 0.4002 = 1.49975...
    // (0.3001 * -4 + 0.1001 * 4) / 0.4002 = -0.8 / 0.4002 = -1.99900...
    const out = checkfreeAverage(w, next, prev);
    expect(out[0]).toBeCloseTo(2.0004998, 6);
    expect(out[1]).toBeCloseTo(1.4997501, 6);
    expect(out[2]).toBeCloseTo(-1.9990005, 6);
  });

  it('gives equal weight when both gradients are zero, and refuses tensors of different sizes', () => {
    const out = checkfreeAverage(checkfreeWeights(0, 0), new Float32Array([2]), new Float32Array([4]));
    expect(out[0]).toBeCloseTo(3, 6);
    expect(() => checkfreeAverage(checkfreeWeights(1, 1), new Float32Array(2), new Float32Array(3))).toThrow(/differ in size/);
  });

  it('maps a block parameter to the same block of a neighbouring stage', () => {
    expect(counterpartName('block5.attn.wq', 2, 3, 2)).toBe('block7.attn.wq');
    expect(counterpartName('block4.mlp.w1', 2, 1, 2)).toBe('block2.mlp.w1');
    expect(counterpartName('tok_emb', 0, 1, 2)).toBeNull();
    expect(counterpartName('block9.ln1.gain', 2, 1, 2)).toBeNull(); // not a block of stage 2
  });
});
