// What the console and the run's state say must be true: the rate after a resume, a failure
// said once, the protected commit step never above the global one.

import { describe, expect, it } from 'vitest';
import { CommitTracker } from '../../coordinator/core/commit-tracker.ts';
import type { ProtectionStatus } from '../../domain/erasure-protection.ts';
import type { StoredRunReport } from '../../observability/run-report.ts';
import { summaryLines } from '../../cli/coordinator-session.ts';
import { ProgressPrinter } from '../../cli/progress.ts';

describe('progress lines', () => {
  it('measure the rate of a resumed run from the resume, not from step 0', () => {
    const lines: string[] = [];
    const p = new ProgressPrinter(20, 1000, (l) => lines.push(l));
    // Resumed from the checkpoint of step 15: the first step trained is index 15, one second later.
    p.onAction({ type: 'training-started', fromStep: 15, toStep: 20, resumedFromCheckpoint: true, atMs: 100_000 });
    p.onAction({ type: 'step-completed', step: 15, loss: 2.5, microBatches: 4, atMs: 101_000, commitStep: -1 });
    expect(lines.at(-1)).toBe('step 16/20  loss 2.5000  1,000 tok/s  1.00 s/step');
    p.onAction({ type: 'step-completed', step: 16, loss: 2.4, microBatches: 4, atMs: 103_000, commitStep: -1 });
    p.onAction({ type: 'step-completed', step: 17, loss: 2.3, microBatches: 4, atMs: 105_000, commitStep: -1 });
    // Over the window of completions: two steps in four seconds.
    expect(lines.at(-1)).toBe('step 18/20  loss 2.3000  500 tok/s  2.00 s/step');
  });

  it('measure the rate of a fresh run from its start', () => {
    const lines: string[] = [];
    const p = new ProgressPrinter(null, 1000, (l) => lines.push(l));
    p.onAction({ type: 'training-started', fromStep: 0, toStep: null, resumedFromCheckpoint: false, atMs: 0 });
    p.onAction({ type: 'step-completed', step: 0, loss: 5, microBatches: 4, atMs: 2000, commitStep: -1 });
    expect(lines.at(-1)).toBe('step 1  loss 5.0000  500 tok/s  2.00 s/step');
  });

  it('say the snapshot interval in force, and each change of it under --snapshot-every auto with its reason', () => {
    const lines: string[] = [];
    const p = new ProgressPrinter(null, 1000, (l) => lines.push(l), 'auto');
    p.onAction({ type: 'training-started', fromStep: 0, toStep: null, resumedFromCheckpoint: false, atMs: 0 });
    p.onAction({ type: 'step-completed', step: 0, loss: 5, microBatches: 4, atMs: 2000, commitStep: 1 });
    expect(lines.at(-1)).toBe('step 1  loss 5.0000  500 tok/s  2.00 s/step  snapshot 1 (every step, auto)');
    p.onAction({ type: 'snapshot-interval', fromStep: 3, every: 4, costMs: 7, stepMs: 100, reason: 'a snapshot costs 7.0% of a step', atMs: 2500 });
    expect(lines.at(-1)).toBe('snapshots every 4 steps from step 3: a snapshot costs 7.0% of a step');
    p.onAction({ type: 'step-completed', step: 1, loss: 4, microBatches: 4, atMs: 4000, commitStep: 2 });
    expect(lines.at(-1)).toMatch(/  snapshot 2 \(every 4 steps, auto\)$/);
    const fixed = new ProgressPrinter(null, 1000, (l) => lines.push(l), 2);
    fixed.onAction({ type: 'step-completed', step: 1, loss: 4, microBatches: 4, atMs: 4000, commitStep: 2 });
    expect(lines.at(-1)).toMatch(/  snapshot 2 \(every 2 steps\)$/);
  });

  it('say on every step line that the store cannot be reached, until it answers', () => {
    const lines: string[] = [];
    const p = new ProgressPrinter(null, 1000, (l) => lines.push(l));
    p.onAction({ type: 'training-started', fromStep: 0, toStep: null, resumedFromCheckpoint: false, atMs: 0 });
    p.storeReachable(false);
    p.onAction({ type: 'step-completed', step: 0, loss: 5, microBatches: 4, atMs: 2000, commitStep: -1 });
    expect(lines.at(-1)).toBe('step 1  loss 5.0000  500 tok/s  2.00 s/step  STORE UNREACHABLE: training goes on, no new decision');
    p.storeReachable(true);
    p.onAction({ type: 'step-completed', step: 1, loss: 4, microBatches: 4, atMs: 4000, commitStep: -1 });
    expect(lines.at(-1)).not.toMatch(/STORE/);
  });

  it('say a failure once: the summary points to the FAILED line instead of repeating it', () => {
    const lines: string[] = [];
    const p = new ProgressPrinter(null, 1000, (l) => lines.push(l));
    const detail = 'its process exited (killed by SIGKILL); no tier can bring stage 1 back';
    p.onAction({ type: 'run-failed', failure: { nodeId: 'node-1', stage: 1, detail, detectedAtMs: 0 } } as never);
    const report = { status: 'failed', reason: `node node-1 (stage 1) failed: ${detail}`, steps: 3, initialLoss: 5, finalLoss: 4, tokensPerSecond: 10, wallSeconds: 1, weightsDigest: null } as unknown as StoredRunReport;
    const summary = summaryLines(report, null, { reasonPrinted: p.failurePrinted });
    const all = [...lines, ...summary].join('\n');
    expect(all.split(detail).length - 1).toBe(1);
    expect(summary[0]).toBe('failed after 3 step(s): the FAILED line above says why');
    // `ftrain report FILE` has no FAILED line above: it says why.
    expect(summaryLines(report, null)[0]).toBe(`failed: node node-1 (stage 1) failed: ${detail}`);
  });
});

describe('commit steps', () => {
  const coded = (stage: number, step: number): ProtectionStatus => ({
    stage,
    versions: [{ step, epoch: 0, holders: ['a', 'b', 'c'] }],
    heldBytes: 0,
    heldShards: 0,
    encodeMs: 1,
    placeMs: 1,
    lastError: null,
  });

  it('count a coded version as committed: the global commit step is never behind the protected one', () => {
    const t = new CommitTracker(2);
    for (const stage of [0, 1]) t.recordSnapshot(stage, 73);
    // The snapshot managers tell of step 74's shards before the workers' reports of its commit:
    // a manager codes only a committed snapshot, so every stage holds 74.
    t.recordProtection(0, coded(0, 74));
    expect(t.globalCommitStep).toBe(73);
    expect(t.protectedCommitStep).toBe(-1);
    t.recordProtection(1, coded(1, 74));
    expect(t.globalCommitStep).toBe(74);
    expect(t.protectedCommitStep).toBe(74);
    // The reports of the commits still count as new (the snapshot log shows each once).
    expect(t.recordSnapshot(0, 74)).toBe(true);
    expect(t.recordSnapshot(1, 74)).toBe(true);
    expect(t.protectedCommitStep).toBe(74);
  });

  it('move the protected commit step back with a rollback', () => {
    const t = new CommitTracker(2);
    for (const stage of [0, 1]) {
      t.recordSnapshot(stage, 74);
      t.recordProtection(stage, coded(stage, 74));
    }
    expect(t.protectedCommitStep).toBe(74);
    t.rollBack(1, 70, 70);
    expect(t.protectedCommitStep).toBeLessThanOrEqual(t.globalCommitStep);
    expect(t.protectedCommitStep).toBe(-1);
  });
});
