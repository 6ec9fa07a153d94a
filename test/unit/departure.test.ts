// A node that leaves with notice (a spot preemption: SIGTERM, then Leave), event by event: the
// coordinator pauses stage 0 at the next step boundary, waits until the leaving stage's snapshot
// of that step is erasure-coded on other nodes, then stops the node and rebuilds its stage on a
// spare at that step. Nothing computed is lost.

import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorCore, RunPhase, type Action, type StepReportEvent } from '../../coordinator/coordinator-core.ts';

function report(nodeId: string, stage: number, step: number): { type: 'step'; report: StepReportEvent } {
  return { type: 'step', report: { nodeId, stage, step, loss: 1, gradNorm: 0.5, clippedGradNorm: 0.5, computeMs: 1, waitMs: 1, stepMs: 2, tokens: 8 } };
}

/** Four stages on n0..n3 and a spare n4 (RS(3,1)); steps 0..2 done. */
function cluster(): CoordinatorCore {
  const core = new CoordinatorCore(compileJobOptions({ nodes: 4, spares: 1, steps: 20, leaseMs: 1000, heartbeatMs: 100 }));
  for (let i = 0; i < 5; i++) core.handle({ type: 'register', nodeId: `n${i}`, address: `w${i}:1`, pid: 100 + i, hostname: 'h', smpAddress: `s${i}:1`, smpPid: 200 + i, agentPid: 300 + i }, 0);
  for (let i = 0; i < 5; i++) core.handle({ type: 'commands-opened', nodeId: `n${i}` }, 0);
  for (let s = 0; s < 4; s++) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
  for (let step = 0; step < 3; step++) for (let s = 3; s >= 0; s--) expect(core.handle(report(`n${s}`, s, step), 10).reply.ok).toBe(true);
  return core;
}

const sent = (actions: Action[], nodeId: string, kind: string) =>
  actions.filter((a): a is Extract<Action, { type: 'send' }> => a.type === 'send' && a.nodeId === nodeId && a.command.kind === kind);

describe('leaving with notice', () => {
  it('pauses at a step boundary, waits for the erasure coding of that step, then moves the stage without loss', () => {
    const core = cluster();
    let actions = core.handle({ type: 'leave', nodeId: 'n1', graceMs: 25_000, reason: 'SIGTERM' }, 1000).actions;
    // Stage 0 finished step 2 and is in step 3: it stops before step 4.
    expect(sent(actions, 'n0', 'limit')).toEqual([{ type: 'send', nodeId: 'n0', command: { kind: 'limit', toStep: 4, pause: true } }]);
    expect(actions).toContainEqual({ type: 'notice', level: 'warn', msg: 'node n1 (stage 1) is leaving within 25 s (SIGTERM): pausing after step 3 to move stage 1' });
    for (let s = 3; s >= 0; s--) actions = core.handle(report(`n${s}`, s, 3), 1500).actions;
    // Paused, but the snapshot of step 4 is not coded yet: nothing moves.
    expect(sent(actions, 'n1', 'stop')).toEqual([]);
    expect(core.phase).toBe(RunPhase.training);
    const status = { stage: 1, versions: [{ step: 4, epoch: 0, holders: ['n2', 'n3', 'n4', 'n0'] }], heldBytes: 0, heldShards: 0, encodeMs: 5, placeMs: 5, lastError: null };
    actions = core.handle({ type: 'protection', nodeId: 'n1', status }, 1800).actions;
    expect(sent(actions, 'n1', 'stop')).toHaveLength(1);
    for (const s of [0, 2, 3]) expect(sent(actions, `n${s}`, 'halt')).toHaveLength(1);
    for (const s of [0, 2, 3]) actions = actions.concat(core.handle({ type: 'halted', nodeId: `n${s}`, stage: s, epoch: 1, snapshotSteps: [3, 4] }, 1900).actions);
    const assign = sent(actions, 'n4', 'assign')[0]!;
    expect(assign.command).toMatchObject({ stage: 1, restoreStep: 4, rebuild: { stage: 1, step: 4 } });
    for (const s of [0, 2, 3]) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s, epoch: 1 }, 2000);
    const resumed = core.handle({ type: 'ready', nodeId: 'n4', stage: 1, epoch: 1 }, 2100).actions;
    expect(resumed).toContainEqual({ type: 'recovered', failure: expect.objectContaining({ stage: 1, kind: 'preempt', method: 'erasure-rebuild', lostSteps: 0, restoredStep: 4, handoverMs: 800, recoverMs: 300 }) });
  });

  it('lets a spare go at once, and refuses a node it does not know', () => {
    const core = cluster();
    const actions = core.handle({ type: 'leave', nodeId: 'n4', graceMs: 25_000, reason: 'SIGTERM' }, 1000).actions;
    expect(sent(actions, 'n4', 'stop')).toHaveLength(1);
    expect(core.phase).toBe(RunPhase.training);
    expect(actions.some((a) => a.type === 'recovery-started')).toBe(false);
    expect(core.handle({ type: 'leave', nodeId: 'n9', graceMs: 1000, reason: '' }, 1000).reply).toMatchObject({ ok: false, code: 'not-found' });
  });

  it('moves the stage anyway when the grace period is about to run out', () => {
    const core = cluster();
    core.handle({ type: 'leave', nodeId: 'n2', graceMs: 5000, reason: 'SIGTERM' }, 1000);
    // No step completes (the pipeline is stuck); two seconds before the deadline the stage moves.
    const beat = (at: number) => ['n0', 'n1', 'n2', 'n3', 'n4'].forEach((n) => core.handle({ type: 'heartbeat', nodeId: n }, at));
    beat(3800);
    expect(sent(core.handle({ type: 'tick' }, 3900).actions, 'n2', 'stop')).toEqual([]);
    const late = core.handle({ type: 'tick' }, 4000).actions;
    expect(sent(late, 'n2', 'stop')).toHaveLength(1);
    expect(late).toContainEqual(expect.objectContaining({ type: 'notice', msg: expect.stringContaining('node n2 is about to go before stage 2 could be handed over') }));
    expect(core.phase).toBe(RunPhase.recovering);
  });
});
