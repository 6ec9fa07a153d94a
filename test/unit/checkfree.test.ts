// CheckFree's rule, checked against numbers worked out by hand, and the coordinator's choice of
// CheckFree as a recovery tier, event by event.

import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorCore, RunPhase, type Action, type StepReportEvent } from '../../coordinator/coordinator-core.ts';
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

describe('coordinator: CheckFree as a recovery tier', () => {
  function report(nodeId: string, stage: number, step: number, gradNorm: number): { type: 'step'; report: StepReportEvent } {
    return { type: 'step', report: { nodeId, stage, step, loss: 1, gradNorm: gradNorm * 3, clippedGradNorm: gradNorm, computeMs: 1, waitMs: 1, stepMs: 2, tokens: 8 } };
  }

  /** Four stages on n0..n3 and spares from n4 (one unless `extra.spares` says), snapshots off; steps 0..2 done. */
  function cluster(recovery: string, extra: Record<string, unknown> = {}): CoordinatorCore {
    const job = compileJobOptions({ nodes: 4, steps: 20, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 0, spares: 1, recovery, ...extra });
    const core = new CoordinatorCore(job);
    const nodes = 4 + job.spares;
    for (let i = 0; i < nodes; i++) core.handle({ type: 'register', nodeId: `n${i}`, address: `w${i}:1`, pid: 1, hostname: 'h' }, 0);
    for (let i = 0; i < nodes; i++) core.handle({ type: 'commands-opened', nodeId: `n${i}` }, 0);
    for (let s = 0; s < 4; s++) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
    for (let step = 0; step < 3; step++) for (let s = 3; s >= 0; s--) expect(core.handle(report(`n${s}`, s, step, 0.1 * (s + 1)), 10).reply.ok).toBe(true);
    return core;
  }

  it('rebuilds a lost intermediate stage on the spare from its neighbours, without rolling the others back', () => {
    const core = cluster('auto');
    // Stage 2 dies after stage 3 finished step 3; the others had not.
    core.handle(report('n3', 3, 3, 0.4), 20);
    let actions: Action[] = core.handle({ type: 'commands-closed', nodeId: 'n2' }, 30).actions;
    for (const s of [0, 1, 3]) actions = actions.concat(core.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [] }, 40).actions);
    const toSpare = actions.find((a) => a.type === 'send' && a.nodeId === 'n4' && a.command.kind === 'assign');
    expect(toSpare).toMatchObject({
      command: {
        stage: 2,
        restoreStep: -1,
        checkfree: { prev: { stage: 1, address: 'w1:1' }, next: { stage: 3, address: 'w3:1' }, learningRateScale: 1.1 },
      },
    });
    const { weights } = (toSpare as unknown as { command: { checkfree: { weights: { a: number; b: number } } } }).command.checkfree;
    expect(weights.a).toBeCloseTo(0.4 + 1e-4, 9); // stage 3's clipped gradient norm
    expect(weights.b).toBeCloseTo(0.2 + 1e-4, 9); // stage 1's
    for (const s of [0, 1, 3]) {
      const a = actions.find((x) => x.type === 'send' && x.nodeId === `n${s}` && x.command.kind === 'assign');
      expect(a).toMatchObject({ command: { restoreStep: -1 } });
      expect((a as { command: { checkfree?: unknown } }).command.checkfree).toBeUndefined();
    }
    for (const s of [0, 1, 3]) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s, epoch: 1 }, 50);
    const resumed = core.handle({ type: 'ready', nodeId: 'n4', stage: 2, epoch: 1 }, 60).actions;
    // Training goes on from step 4: the newest step any stage finished was 3.
    expect(resumed).toContainEqual({ type: 'send', nodeId: 'n0', command: { kind: 'start', fromStep: 4, toStep: 20, restoreCheckpointStep: -1 } });
    expect(resumed).toContainEqual({ type: 'recovered', failure: expect.objectContaining({ stage: 2, method: 'checkfree', lostSteps: 0, restoredStep: 4 }) });
  });

  it('says plainly that CheckFree cannot rebuild an edge stage, and uses the disk tier when there is one', () => {
    const core = cluster('checkfree');
    let actions: Action[] = core.handle({ type: 'commands-closed', nodeId: 'n0' }, 30).actions;
    for (const s of [1, 2, 3]) actions = actions.concat(core.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [] }, 40).actions);
    expect(actions.find((a) => a.type === 'run-failed')).toMatchObject({
      failure: { detail: expect.stringContaining('nothing can bring stage 0 back: snapshots are off (--snapshot-every 0), there is no disk checkpoint (--checkpoint-dir), and CheckFree cannot rebuild stage 0 (the embedding)') },
    });
    const withDisk = cluster('checkfree', { checkpointDir: '/tmp/ftrain-ckpt-test', checkpointEvery: 2 });
    let a2: Action[] = withDisk.handle({ type: 'commands-closed', nodeId: 'n3' }, 30).actions;
    for (const s of [0, 1, 2]) a2 = a2.concat(withDisk.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [] }, 40).actions);
    expect(a2).toContainEqual({ type: 'notice', level: 'error', msg: expect.stringMatching(/stage 3 \(the last, with the head\).*falling back to the newest disk checkpoint/) });
    expect(withDisk.phase).toBe(RunPhase.starting);
  });

  it('CheckFree+: rebuilds stage 0 from its swap partner, embedding included, and refuses when the partner is lost too', () => {
    const core = cluster('checkfree-plus');
    let actions: Action[] = core.handle({ type: 'commands-closed', nodeId: 'n0' }, 30).actions;
    for (const s of [1, 2, 3]) actions = actions.concat(core.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [] }, 40).actions);
    expect(actions).toContainEqual(expect.objectContaining({ type: 'send', nodeId: 'n4', command: expect.objectContaining({ kind: 'assign', stage: 0, restoreStep: -1, checkfree: { kind: 'copy', from: { stage: 1, address: 'w1:1' }, learningRateScale: 1.1 } }) }));
    expect(actions).toContainEqual({ type: 'notice', level: 'warn', msg: expect.stringContaining('CheckFree+: stage 0 rebuilt with the blocks of its swap partner (stage 1) and its embedding from the copy stage 1 keeps') });
    for (const s of [1, 2, 3]) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s, epoch: 1 }, 50);
    const resumed = core.handle({ type: 'ready', nodeId: 'n4', stage: 0, epoch: 1 }, 60).actions;
    expect(resumed).toContainEqual({ type: 'recovered', failure: expect.objectContaining({ stage: 0, method: 'checkfree-plus', lostSteps: 0 }) });

    // Stages 2 and 3 are partners: losing both at once leaves nothing to copy.
    const both = cluster('checkfree-plus', { spares: 2 });
    let a2: Action[] = both.handle({ type: 'commands-closed', nodeId: 'n2' }, 30).actions;
    a2 = a2.concat(both.handle({ type: 'commands-closed', nodeId: 'n3' }, 31).actions);
    for (const s of [0, 1]) a2 = a2.concat(both.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [] }, 40).actions);
    expect(a2.find((a) => a.type === 'run-failed')).toMatchObject({ failure: { detail: expect.stringContaining('it copies its swap partner, stage 3, which is lost too') } });
  });

  it('prefers a snapshot to CheckFree under auto, and CheckFree to a snapshot when forced', () => {
    for (const [recovery, method] of [['auto', 'local-snapshot'], ['checkfree', 'checkfree']] as const) {
      const job = compileJobOptions({ nodes: 3, steps: 20, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, recovery, ec: 'off' });
      const core = new CoordinatorCore(job);
      for (let i = 0; i < 3; i++) core.handle({ type: 'register', nodeId: `n${i}`, address: `w${i}:1`, pid: 1, hostname: 'h' }, 0);
      for (let i = 0; i < 3; i++) core.handle({ type: 'commands-opened', nodeId: `n${i}` }, 0);
      for (let s = 0; s < 3; s++) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
      for (let s = 2; s >= 0; s--) core.handle({ type: 'step', report: { ...report(`n${s}`, s, 0, 0.5).report, snapshotStep: 1 } }, 10);
      core.handle({ type: 'commands-closed', nodeId: 'n1' }, 20);
      for (const s of [0, 2]) core.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [1] }, 30);
      core.handle({ type: 'register', nodeId: 'n1', address: 'w1:2', pid: 2, hostname: 'h', snapshots: { stage: 1, steps: [1] } }, 40);
      const assigned = core.handle({ type: 'commands-opened', nodeId: 'n1' }, 50).actions;
      const toN1 = assigned.find((a) => a.type === 'send' && a.nodeId === 'n1' && a.command.kind === 'assign') as { command: { restoreStep: number; checkfree?: unknown } };
      if (method === 'local-snapshot') expect(toN1.command).toMatchObject({ restoreStep: 1 });
      else expect(toN1.command.checkfree).toBeDefined();
    }
  });
});
