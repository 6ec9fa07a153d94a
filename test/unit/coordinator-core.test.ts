// Scenario tests: events scripted into the coordinator's core, actions asserted.

import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorCore, RunPhase, type Action, type StepReportEvent } from '../../coordinator/coordinator-core.ts';

// Without snapshots a lost stage ends the run; with them the run recovers (see the last block).
const job = compileJobOptions({ nodes: 2, steps: 2, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 0 });

function report(nodeId: string, stage: number, step: number, loss = 1): { type: 'step'; report: StepReportEvent } {
  return { type: 'step', report: { nodeId, stage, step, loss, gradNorm: 0.5, computeMs: 10, waitMs: 5, stepMs: 15, tokens: 64 } };
}

function sends(actions: Action[]) {
  return actions.filter((a): a is Extract<Action, { type: 'send' }> => a.type === 'send').map((a) => [a.nodeId, a.command.kind]);
}

/** Two nodes registered, streams open, both ready: training under way. */
function trainingCore(j = job): CoordinatorCore {
  const core = new CoordinatorCore(j);
  for (const id of ['n1', 'n0']) {
    core.handle({ type: 'register', nodeId: id, address: `127.0.0.1:${id === 'n0' ? 1 : 2}`, pid: 1, hostname: 'h' }, 0);
    core.handle({ type: 'commands-opened', nodeId: id }, 0);
  }
  core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
  core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
  return core;
}

describe('coordinator core', () => {
  it('assigns stages by node id once enough nodes can take commands, then starts', () => {
    const core = new CoordinatorCore(job);
    core.handle({ type: 'register', nodeId: 'n1', address: 'b:2', pid: 2, hostname: 'h' }, 0);
    core.handle({ type: 'register', nodeId: 'n0', address: 'a:1', pid: 1, hostname: 'h' }, 0);
    expect(sends(core.handle({ type: 'commands-opened', nodeId: 'n1' }, 0).actions)).toEqual([]);
    const { actions } = core.handle({ type: 'commands-opened', nodeId: 'n0' }, 0);
    const assigns = actions.filter((a) => a.type === 'send' && a.command.kind === 'assign');
    expect(assigns).toEqual([
      { type: 'send', nodeId: 'n0', command: { kind: 'assign', stage: 0, numStages: 2, prevAddress: '', nextAddress: 'b:2', epoch: 0, restoreStep: -1, injections: [], plan: null, rebuild: null } },
      { type: 'send', nodeId: 'n1', command: { kind: 'assign', stage: 1, numStages: 2, prevAddress: 'a:1', nextAddress: '', epoch: 0, restoreStep: -1, injections: [], plan: null, rebuild: null } },
    ]);
    expect(sends(core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0).actions)).toEqual([]);
    const started = core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0).actions;
    expect(sends(started)).toEqual([
      ['n0', 'start'],
      ['n1', 'start'],
    ]);
    expect(core.phase).toBe(RunPhase.training);
  });

  it('refuses a node id that a live node holds', () => {
    const core = new CoordinatorCore(job);
    expect(core.handle({ type: 'register', nodeId: 'n0', address: 'a:1', pid: 1, hostname: 'h' }, 0).reply.ok).toBe(true);
    const again = core.handle({ type: 'register', nodeId: 'n0', address: 'c:3', pid: 3, hostname: 'h' }, 0).reply;
    expect(again).toMatchObject({ ok: false, code: 'already-exists' });
    expect(core.nodes.get('n0')!.address).toBe('a:1');
  });

  it('refuses out-of-range stages, foreign stages and out-of-order steps', () => {
    const core = trainingCore();
    expect(core.handle(report('n0', 7, 0), 0).reply).toMatchObject({ ok: false, code: 'invalid-argument' });
    expect(core.handle(report('n0', -1, 0), 0).reply).toMatchObject({ ok: false, code: 'invalid-argument' });
    expect(core.handle(report('n0', 1, 0), 0).reply).toMatchObject({ ok: false, code: 'failed-precondition' });
    expect(core.handle(report('n0', 0, 1), 0).reply).toMatchObject({ ok: false, code: 'failed-precondition' });
    expect(core.handle(report('ghost', 0, 0), 0).reply).toMatchObject({ ok: false, code: 'not-found' });
    expect(core.handle(report('n0', 0, 0), 0).reply.ok).toBe(true);
    expect(core.handle(report('n0', 0, 0), 0).reply).toMatchObject({ ok: false, code: 'failed-precondition' });
  });

  it('completes a step when every stage has reported it, and the run at the step limit', () => {
    const core = trainingCore();
    expect(core.handle(report('n0', 0, 0), 5).actions.some((a) => a.type === 'step-completed')).toBe(false);
    const done0 = core.handle(report('n1', 1, 0, 4.5), 6).actions;
    expect(done0).toContainEqual({ type: 'step-completed', step: 0, loss: 4.5, atMs: 6, commitStep: -1 });
    core.handle(report('n0', 0, 1), 7);
    const done1 = core.handle(report('n1', 1, 1, 4.0), 8).actions;
    expect(done1).toContainEqual({ type: 'training-complete', steps: 2 });
    const fin = core.handle({ type: 'finish' }, 9).actions;
    expect(sends(fin)).toEqual([
      ['n1', 'stop'],
      ['n0', 'stop'],
    ]);
    expect(fin).toContainEqual({ type: 'run-finished', steps: 2 });
    expect(core.losses).toEqual([4.5, 4.0]);
  });

  it('fails the run when a placed node exits, naming node and stage, and stops the others', () => {
    const core = trainingCore();
    const { actions } = core.handle({ type: 'process-exited', nodeId: 'n1', detail: 'killed by SIGKILL' }, 42);
    const failed = actions.find((a) => a.type === 'run-failed');
    expect(failed).toEqual({
      type: 'run-failed',
      failure: {
        nodeId: 'n1',
        stage: 1,
        detail:
          'its process exited (killed by SIGKILL); nothing can bring stage 1 back: snapshots are off (--snapshot-every 0), there is no disk checkpoint (--checkpoint-dir), and CheckFree cannot rebuild stage 1 (the last, with the head): it averages the two neighbours of an intermediate stage',
        detectedAtMs: 42,
      },
    });
    expect(sends(actions)).toEqual([['n0', 'stop']]);
    expect(core.phase).toBe(RunPhase.failed);
    // A second signal of the same death changes nothing.
    expect(core.handle({ type: 'commands-closed', nodeId: 'n1' }, 43).actions).toEqual([]);
  });

  it('expires a lease on tick and fails the run', () => {
    const core = trainingCore();
    for (const n of ['n0', 'n1']) core.handle({ type: 'heartbeat', nodeId: n }, 0);
    core.handle({ type: 'heartbeat', nodeId: 'n0' }, 900);
    expect(core.handle({ type: 'tick' }, 1000).actions).toEqual([]);
    const { actions } = core.handle({ type: 'tick' }, 1001);
    const failed = actions.find((a) => a.type === 'run-failed');
    expect(failed).toMatchObject({ failure: { nodeId: 'n1', stage: 1, detail: expect.stringMatching(/^its lease expired: no heartbeat for 1000 ms; nothing can bring stage 1 back/) } });
  });

  it('gives a node that has not sent its first heartbeat yet longer than the lease', () => {
    const core = trainingCore();
    core.handle({ type: 'heartbeat', nodeId: 'n0' }, 14_000);
    // n1 registered at 0 and never beat: still starting at 14 s, lost after 15 s.
    expect(core.handle({ type: 'tick' }, 14_500).actions.some((a) => a.type === 'run-failed')).toBe(false);
    const { actions } = core.handle({ type: 'tick' }, 15_001);
    expect(actions.find((a) => a.type === 'run-failed')).toMatchObject({ failure: { nodeId: 'n1' } });
  });

  it('keeps going when a spare dies', () => {
    const core = trainingCore();
    expect(core.handle({ type: 'register', nodeId: 'n9', address: 'z:9', pid: 9, hostname: 'h' }, 0).reply.ok).toBe(true);
    expect(core.nodes.get('n9')!.state).toBe('spare');
    const { actions } = core.handle({ type: 'process-exited', nodeId: 'n9', detail: 'exit code 1' }, 1);
    expect(actions.some((a) => a.type === 'run-failed')).toBe(false);
    expect(core.phase).toBe(RunPhase.training);
  });

  it('stops gracefully after the step under way', () => {
    const core = new CoordinatorCore({ ...job, steps: null });
    for (const id of ['n0', 'n1']) {
      core.handle({ type: 'register', nodeId: id, address: `${id}:1`, pid: 1, hostname: 'h' }, 0);
      core.handle({ type: 'commands-opened', nodeId: id }, 0);
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
    core.handle(report('n0', 0, 0), 1);
    const { actions } = core.handle({ type: 'stop-requested', reason: 'Ctrl-C', graceful: true }, 2);
    // Only stage 0 starts steps: only it is told.
    expect(actions).toContainEqual({ type: 'send', nodeId: 'n0', command: { kind: 'limit', toStep: 0 } });
    expect(sends(actions)).toEqual([['n0', 'limit']]);
    expect(core.toStep).toBeNull();
    core.handle(report('n1', 1, 0), 3);
    // Stage 0 had already started step 2 when the limit came: that step is its last.
    core.handle(report('n0', 0, 1), 4);
    core.handle({ type: 'step', report: { ...report('n0', 0, 2).report, last: true } }, 5);
    expect(core.toStep).toBe(3);
    expect(core.handle(report('n1', 1, 1), 6).actions).not.toContainEqual(expect.objectContaining({ type: 'training-complete' }));
    expect(core.handle(report('n1', 1, 2), 7).actions).toContainEqual({ type: 'training-complete', steps: 3 });
  });

  it('does not fence a node it has told to stop: a heartbeat or step report on the way is answered without NOT_FOUND', () => {
    const core = trainingCore({ ...job, steps: null });
    const { actions } = core.handle({ type: 'stop-requested', reason: 'test over', graceful: false }, 1);
    expect(sends(actions)).toEqual(expect.arrayContaining([['n0', 'stop'], ['n1', 'stop']]));
    expect(core.handle({ type: 'heartbeat', nodeId: 'n0' }, 2).reply).toEqual({ ok: true });
    const step = core.handle(report('n1', 1, 0), 3).reply;
    expect(step).toMatchObject({ ok: false, code: 'failed-precondition' });
    expect(step.ok ? '' : step.message).toMatch(/no training is under way: node n1 has been told to stop/);
    // A node the coordinator never knew, or lost, is still fenced.
    expect(core.handle({ type: 'heartbeat', nodeId: 'ghost' }, 4).reply).toMatchObject({ ok: false, code: 'not-found' });
  });

  describe('recovery from snapshots', () => {
    const snapJob = compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, inject: '3:1:worker-kill' });
    const withSnap = (nodeId: string, stage: number, step: number, snapshotStep: number) => ({
      type: 'step' as const,
      report: { ...report(nodeId, stage, step).report, snapshotStep, snapshotBytes: 100, snapshotStallMs: 1, snapshotCopyMs: 2 },
    });

    it('halts the survivors, waits for the restarted worker, and rolls every stage back to the newest common snapshot', () => {
      const core = trainingCore(snapJob);
      for (let step = 0; step < 3; step++) {
        core.handle(withSnap('n1', 1, step, step), 10 + step);
        core.handle(withSnap('n0', 0, step, step), 10 + step);
      }
      expect(core.globalCommitStep).toBe(2);
      expect(core.handle({ type: 'injection', nodeId: 'n1', stage: 1, step: 3, kind: 'worker-kill' }, 100).reply.ok).toBe(true);
      const lost = core.handle({ type: 'commands-closed', nodeId: 'n1' }, 120).actions;
      expect(lost.some((a) => a.type === 'run-failed')).toBe(false);
      expect(lost).toContainEqual({ type: 'send', nodeId: 'n0', command: { kind: 'halt', epoch: 1, reason: 'stage 1 failed' } });
      expect(core.phase).toBe(RunPhase.recovering);
      // Stale traffic of epoch 0 is refused.
      expect(core.handle(withSnap('n0', 0, 3, 3), 121).reply.ok).toBe(false);
      expect(core.handle({ type: 'halted', nodeId: 'n0', stage: 0, epoch: 1, snapshotSteps: [2, 3] }, 130).reply.ok).toBe(true);
      // The worker restarts beside its snapshot manager, which holds steps 2 and 3 of stage 1.
      core.handle({ type: 'register', nodeId: 'n1', address: 'b:3', pid: 7, hostname: 'h', snapshots: { stage: 1, steps: [2, 3] } }, 1500);
      const assigned = core.handle({ type: 'commands-opened', nodeId: 'n1' }, 1510).actions;
      expect(sends(assigned)).toEqual([
        ['n0', 'assign'],
        ['n1', 'assign'],
      ]);
      const toN1 = assigned.find((a) => a.type === 'send' && a.nodeId === 'n1');
      // The injection fired: it is not sent again, or the replacement would kill itself again.
      expect(toN1).toMatchObject({ command: { kind: 'assign', stage: 1, prevAddress: '127.0.0.1:1', epoch: 1, restoreStep: 3, injections: [] } });
      expect(core.handle({ type: 'ready', nodeId: 'n0', stage: 0, epoch: 0 }, 1600).reply.ok).toBe(false);
      core.handle({ type: 'ready', nodeId: 'n0', stage: 0, epoch: 1 }, 1600);
      const resumed = core.handle({ type: 'ready', nodeId: 'n1', stage: 1, epoch: 1 }, 1700).actions;
      expect(sends(resumed)).toEqual([
        ['n0', 'start'],
        ['n1', 'start'],
      ]);
      expect(resumed).toContainEqual({ type: 'send', nodeId: 'n0', command: { kind: 'start', fromStep: 3, toStep: 10, restoreCheckpointStep: -1 } });
      expect(resumed).toContainEqual({
        type: 'recovered',
        failure: expect.objectContaining({ stage: 1, kind: 'worker-kill', method: 'local-snapshot', detectMs: 20, recoverMs: 1600, lostSteps: 0, restoredStep: 3, step: 3 }),
      });
      expect(core.recovered).toHaveLength(1);
      expect(core.handle({ type: 'step', report: { ...withSnap('n0', 0, 3, 3).report, epoch: 1 } }, 1800).reply.ok).toBe(true);
    });

    it('fails with a clear reason when no snapshot step is common to every stage', () => {
      const core = trainingCore(snapJob);
      core.handle({ type: 'commands-closed', nodeId: 'n1' }, 120);
      core.handle({ type: 'halted', nodeId: 'n0', stage: 0, epoch: 1, snapshotSteps: [4, 5] }, 130);
      core.handle({ type: 'register', nodeId: 'n1', address: 'b:3', pid: 7, hostname: 'h', snapshots: null }, 1500);
      const { actions } = core.handle({ type: 'commands-opened', nodeId: 'n1' }, 1510);
      expect(actions.find((a) => a.type === 'run-failed')).toMatchObject({
        failure: { stage: 1, detail: expect.stringContaining('no snapshot step is held by every stage, locally or in enough erasure shards (stage 0: [4, 5]; stage 1: [])') },
      });
    });

    it('gives up with a clear reason when the lost worker does not come back in time', () => {
      const core = trainingCore({ ...snapJob, recoveryTimeoutMs: 5000 });
      core.handle({ type: 'commands-closed', nodeId: 'n1' }, 1000);
      expect(core.handle({ type: 'tick' }, 5999).actions.some((a) => a.type === 'run-failed')).toBe(false);
      // n0 keeps its lease meanwhile
      core.handle({ type: 'heartbeat', nodeId: 'n0' }, 5900);
      const { actions } = core.handle({ type: 'tick' }, 6001);
      expect(actions.find((a) => a.type === 'run-failed')).toMatchObject({
        failure: { stage: 1, detail: expect.stringContaining("recovery gave up after 5000 ms: no node took stage 1 (node n1's worker did not come back)") },
      });
      expect(core.recovery).toBeNull();
    });
  });
});
