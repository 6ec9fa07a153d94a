// The worker's core, fed by hand: commands, refusals, signals and the time in, actions out. No
// processes, no sockets.

import { describe, expect, it } from 'vitest';
import type { ReceivedAssign } from '../../domain/commands.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { EXIT_FENCED } from '../../domain/exit-codes.ts';
import { WorkerCore, EXIT_TERMINATED, type WorkerAction, type WorkerInput } from '../../worker/core/worker-core.ts';
import { compileWorkerOptions } from '../../worker/core/worker-options.ts';
import { WorkerState } from '../../worker/core/worker-state.ts';

const job = compileJobOptions({ nodes: 2, steps: 10 });

function assign(epoch: number, stage = 1): { type: 'command'; command: ReceivedAssign } {
  return {
    type: 'command',
    command: { kind: 'assign', stage, numStages: 2, prevAddress: 'a:1', nextAddress: '', epoch, restoreStep: -1, plan: null, rebuild: null, checkfree: null, replica: 0, replicaAddresses: [], job, dataSha256: '' },
  };
}

const kinds = (actions: WorkerAction[]) => actions.filter((a) => a.type !== 'log').map((a) => a.type);

/** A core that registered, took stage 1 in epoch 0 and is training from step 0 to 10. */
function training(): { core: WorkerCore; feed: (i: WorkerInput, now?: number) => WorkerAction[] } {
  const core = new WorkerCore(compileWorkerOptions({ haltGraceMs: 1000, faultExitGraceMs: 300 }));
  const feed = (i: WorkerInput, now = 0) => core.handle(i, now);
  feed({ type: 'registered' });
  feed(assign(0));
  feed({ type: 'assign-applied', epoch: 0 });
  feed({ type: 'command', command: { kind: 'start', fromStep: 0, toStep: 10, restoreCheckpointStep: -1 } });
  return { core, feed };
}

describe('worker core', () => {
  it('takes an assignment, reports ready once it is applied, and starts on Start', () => {
    const core = new WorkerCore(compileWorkerOptions());
    expect(core.handle({ type: 'registered' }, 0)).toEqual([]);
    expect(core.state).toBe(WorkerState.idle);
    const applying = core.handle(assign(0), 0);
    expect(kinds(applying)).toEqual(['apply-assign']);
    expect(core.state).toBe(WorkerState.assigning);
    expect(core.handle({ type: 'assign-applied', epoch: 0 }, 0)).toEqual([{ type: 'report-ready', stage: 1, epoch: 0 }]);
    const started = core.handle({ type: 'command', command: { kind: 'start', fromStep: 3, toStep: 5, restoreCheckpointStep: 2, fromScratch: false } }, 0);
    expect(started).toEqual([{ type: 'start-training', fromStep: 3, restoreCheckpointStep: 2, fromScratch: false }]);
    expect([3, 4, 5].map((s) => core.mayStartStep(s))).toEqual([true, true, false]);
    expect(core.isLast(4)).toBe(true);
  });

  it('ends after the step under way on Limit 0, and pauses (no last step) on a pause', () => {
    const { core, feed } = training();
    expect(core.isLast(3)).toBe(false);
    feed({ type: 'command', command: { kind: 'limit', toStep: 0 } });
    expect(core.isLast(3)).toBe(true);
    const paused = training();
    paused.feed({ type: 'command', command: { kind: 'limit', toStep: 4, pause: true } });
    expect(paused.core.mayStartStep(4)).toBe(false);
    expect(paused.core.isLast(3)).toBe(false);
  });

  it('halts, reports the halt in its epoch, and takes the next assignment', () => {
    const { core, feed } = training();
    expect(kinds(feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'stage 0 failed', resumeAtMost: 3 } }))).toEqual(['halt-training']);
    expect(core.mayStartStep(1)).toBe(false);
    expect(feed({ type: 'halted' })).toEqual([{ type: 'report-halted', stage: 1, epoch: 1 }]);
    expect(kinds(feed(assign(1)))).toEqual(['apply-assign']);
  });

  it('keeps a Halt that comes while an assignment is applied, and halts instead of reporting ready', () => {
    const core = new WorkerCore(compileWorkerOptions());
    core.handle({ type: 'registered' }, 0);
    core.handle(assign(1), 0);
    expect(core.handle({ type: 'command', command: { kind: 'halt', epoch: 2, reason: 'again', resumeAtMost: 3 } }, 0)).toEqual([]);
    expect(kinds(core.handle({ type: 'assign-applied', epoch: 1 }, 0))).toEqual(['halt-training']);
    expect(core.handle({ type: 'halted' }, 0)).toEqual([{ type: 'report-halted', stage: 1, epoch: 2 }]);
  });

  it('refuses an assignment of an epoch that is not newer, as a fault', () => {
    const { feed } = training();
    feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'x', resumeAtMost: 3 } });
    feed({ type: 'halted' });
    const stale = feed(assign(0));
    expect(kinds(stale)).toEqual(['report-fault']);
    expect(stale).toContainEqual({ type: 'report-fault', stage: 1, message: 'already assigned stage 1 in epoch 0; refusing an assignment for epoch 0' });
  });

  it('exits fenced when the coordinator no longer knows it', () => {
    const { core, feed } = training();
    const out = feed({ type: 'report-refused', rpc: 'a step report', refusal: { reason: 'fenced', message: 'node n1 is not registered' } });
    expect(out).toEqual([{ type: 'exit', code: EXIT_FENCED, reason: 'fenced: the coordinator no longer knows this node (node n1 is not registered)' }]);
    expect(core.state).toBe(WorkerState.stopped);
    // Nothing happens after the exit.
    expect(feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'x', resumeAtMost: 3 } })).toEqual([]);
    const hb = training();
    expect(kinds(hb.feed({ type: 'heartbeat-refused', refusal: { reason: 'fenced', message: 'gone' } }))).toEqual(['exit']);
  });

  it('waits for the Halt a refused report announces, and faults only when none comes in time', () => {
    const { feed } = training();
    const refused = feed({ type: 'report-refused', rpc: 'a step report', refusal: { reason: 'stale-epoch', message: 'step report of epoch 0, but the run is in epoch 1', runEpoch: 1, givenEpoch: 0 } }, 100);
    expect(kinds(refused)).toEqual([]);
    expect(kinds(feed({ type: 'tick' }, 1099))).toEqual([]);
    const late = feed({ type: 'tick' }, 1100);
    expect(late).toContainEqual({ type: 'report-fault', stage: 1, message: 'the coordinator refused a step report (step report of epoch 0, but the run is in epoch 1) and sent no Halt' });
    // The coordinator answers a fault with Stop; without one the worker exits after its grace.
    expect(kinds(feed({ type: 'tick' }, 1399))).toEqual([]);
    expect(feed({ type: 'tick' }, 1400)).toEqual([{ type: 'exit', code: 1, reason: 'the coordinator refused a step report (step report of epoch 0, but the run is in epoch 1) and sent no Halt' }]);

    const halted = training();
    halted.feed({ type: 'report-refused', rpc: 'a step report', refusal: { reason: 'not-training', message: 'no training is under way (phase recovering)' } }, 100);
    halted.feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'x', resumeAtMost: 3 } }, 200);
    expect(kinds(halted.feed({ type: 'tick' }, 5000))).toEqual([]);
  });

  it('lets go a refused report of an older epoch than the halt it is in (one sent again to a new leader)', () => {
    const { feed } = training();
    feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'x', resumeAtMost: 3 } }, 100);
    expect(feed({ type: 'halted' }, 110)).toContainEqual({ type: 'report-halted', stage: 1, epoch: 1 });
    // A new leader halts the node in its own epoch, then refuses the epoch-1 report sent to it again.
    feed({ type: 'command', command: { kind: 'halt', epoch: 2, reason: 'a new coordinator leads the recovery', resumeAtMost: 3 } }, 200);
    expect(feed({ type: 'halted' }, 210)).toContainEqual({ type: 'report-halted', stage: 1, epoch: 2 });
    const refused = feed({ type: 'report-refused', rpc: 'ReportHalted', refusal: { reason: 'stale-epoch', message: 'no recovery of epoch 1 is under way', runEpoch: 2, givenEpoch: 1 } }, 220);
    expect(refused).toEqual([expect.objectContaining({ type: 'log', msg: 'ReportHalted of an older epoch refused: this node was halted in epoch 2 since' })]);
    expect(kinds(feed({ type: 'tick' }, 60_000))).toEqual([]);
    // The same refusal of the epoch it is halted in still waits for a Halt, and faults without one.
    const current = feed({ type: 'report-refused', rpc: 'ReportHalted', refusal: { reason: 'stale-epoch', message: 'no recovery of epoch 2 is under way', runEpoch: 3, givenEpoch: 2 } }, 60_100);
    expect(kinds(current)).toEqual([]);
    expect(kinds(feed({ type: 'tick' }, 62_000))).toContain('report-fault');
  });

  it('faults on a refusal it cannot explain', () => {
    const { feed } = training();
    expect(kinds(feed({ type: 'report-refused', rpc: 'ReportReady', refusal: { reason: 'wrong-stage', message: 'node n1 holds stage 0, not stage 1' } }))).toEqual(['report-fault']);
  });

  it('leaves on a preemption notice and exits when the grace period is over', () => {
    const { feed } = training();
    expect(kinds(feed({ type: 'terminate', graceMs: 2000, reason: 'SIGTERM' }, 10))).toEqual(['leave']);
    expect(kinds(feed({ type: 'terminate', graceMs: 2000, reason: 'SIGTERM' }, 20))).toEqual([]);
    expect(kinds(feed({ type: 'tick' }, 2009))).toEqual([]);
    expect(feed({ type: 'tick' }, 2010)).toEqual([{ type: 'exit', code: EXIT_TERMINATED, reason: 'grace period of 2 s over (SIGTERM)' }]);
    // Before it has registered, or with no grace, it just goes.
    const early = new WorkerCore(compileWorkerOptions());
    expect(early.handle({ type: 'terminate', graceMs: 2000, reason: 'SIGTERM' }, 0)).toEqual([{ type: 'exit', code: EXIT_TERMINATED, reason: 'terminated (SIGTERM)' }]);
  });

  it('passes the protected commit step to its snapshot manager with a new plan, and stops on Stop', () => {
    const { feed } = training();
    feed({ type: 'report-accepted', protectedCommitStep: 4, snapshotInterval: null });
    feed({ type: 'report-accepted', protectedCommitStep: 3, snapshotInterval: null });
    expect(feed({ type: 'command', command: { kind: 'protect', plan: null } })).toEqual([{ type: 'configure-smp', plan: null, protectedCommitStep: 4 }]);
    expect(feed({ type: 'command', command: { kind: 'stop', reason: 'training complete', failed: false } })).toEqual([{ type: 'exit', code: 0, reason: 'coordinator: training complete' }]);
  });

  it('snapshots the steps the schedule of its Start and the step replies say, and faults on an interval it can no longer follow', () => {
    // Auto (the default): every step from the Start's step, until a reply announces a change.
    const { core, feed } = training();
    expect([1, 2].map((s) => core.snapshotDue(s))).toEqual([true, true]);
    expect(feed({ type: 'report-accepted', protectedCommitStep: -1, snapshotInterval: { fromStep: 0, every: 1 } }, 0)).toEqual([]);
    // The reply to the report of step 2: every 3 from step 4 (step 3 is still decided as before).
    expect(feed({ type: 'report-accepted', protectedCommitStep: -1, snapshotInterval: { fromStep: 4, every: 3 } }, 0)).toEqual([]);
    expect([3, 4, 5, 6, 7].map((s) => core.snapshotDue(s))).toEqual([true, true, false, false, true]);
    // An interval from a step already decided would disagree with the other stages: a fault.
    const late = feed({ type: 'report-accepted', protectedCommitStep: -1, snapshotInterval: { fromStep: 7, every: 2 } }, 0);
    expect(kinds(late)).toEqual(['report-fault']);
    expect(late.find((a) => a.type === 'report-fault')).toMatchObject({ message: expect.stringMatching(/already decided the snapshot of step 7/) });

    // A new Start (after a recovery) begins at every step again.
    const again = training();
    again.feed({ type: 'report-accepted', protectedCommitStep: -1, snapshotInterval: { fromStep: 2, every: 5 } });
    again.feed({ type: 'command', command: { kind: 'halt', epoch: 1, reason: 'x', resumeAtMost: 3 } });
    again.feed({ type: 'halted' });
    again.feed(assign(1));
    again.feed({ type: 'assign-applied', epoch: 1 });
    again.feed({ type: 'command', command: { kind: 'start', fromStep: 6, toStep: 10, restoreCheckpointStep: -1 } });
    expect([7, 8].map((s) => again.core.snapshotDue(s))).toEqual([true, true]);

    // A fixed interval needs no reply: the multiples of N, whatever step training starts from.
    const fixedJob = compileJobOptions({ nodes: 2, steps: 10, snapshotEvery: '3' });
    const fixed = new WorkerCore(compileWorkerOptions());
    fixed.handle({ type: 'registered' }, 0);
    fixed.handle({ ...assign(0), command: { ...assign(0).command, job: fixedJob } }, 0);
    fixed.handle({ type: 'assign-applied', epoch: 0 }, 0);
    fixed.handle({ type: 'command', command: { kind: 'start', fromStep: 2, toStep: 10, restoreCheckpointStep: -1 } }, 0);
    expect([3, 4, 5, 6].map((s) => fixed.snapshotDue(s))).toEqual([true, false, false, true]);
  });

  it('refuses illegal moves of its life cycle', () => {
    const core = new WorkerCore(compileWorkerOptions());
    core.handle({ type: 'registered' }, 0);
    // Start before any assignment: a fault, not a start.
    expect(kinds(core.handle({ type: 'command', command: { kind: 'start', fromStep: 0, toStep: 1, restoreCheckpointStep: -1 } }, 0))).toEqual(['report-fault']);
    expect(core.state).toBe(WorkerState.idle);
  });
});
