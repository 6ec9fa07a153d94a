// What chaos makes of events and the coordinator's failures: matching, figures, the table by
// kind, the verdict and its reasons.

import { describe, expect, it } from 'vitest';
import type { RecoveredFailure } from '../../domain/run-status.ts';
import type { ChaosKind } from '../../chaos/chaos-schedule.ts';
import {
  CLOCK_SLACK_MS,
  EventOutcome,
  chaosVerdict,
  eventFigures,
  formatClock,
  formatTable,
  matchAll,
  matchFailure,
  progressLine,
  summarizeByKind,
  type ChaosEventResult,
} from '../../chaos/chaos-summary.ts';

const T0 = 1_700_000_000_000;

function failure(nodeId: string, detectedAtMs: number, over: Partial<RecoveredFailure> = {}): RecoveredFailure {
  return {
    step: 10,
    stage: 1,
    nodeId,
    kind: 'worker-crash',
    method: 'local-snapshot',
    detail: 'command stream closed',
    detectMs: null,
    detectedAtMs,
    recoverMs: 800,
    handoverMs: null,
    lostSteps: 0,
    restoredStep: 10,
    caughtUpMs: null,
    ...over,
  };
}

function event(index: number, kind: ChaosKind, atMs: number, over: Partial<ChaosEventResult> = {}): ChaosEventResult {
  return {
    index,
    kind,
    scheduledAtMs: atMs,
    atMs,
    firedAtMs: T0 + atMs,
    nodeId: `node-${index}`,
    stage: 1,
    signals: [],
    outcome: EventOutcome.recovered,
    failureIndex: index,
    figures: { detectionMs: 100, recoveryMs: 1000, handoverMs: null, lostSteps: 0, method: 'local-snapshot', failureKind: 'worker-crash' },
    replacement: null,
    notes: [],
    ...over,
  };
}

describe('matchFailure', () => {
  const fired = { nodeId: 'node-2', firedAtMs: T0 };

  it("takes the node's first failure detected after the event", () => {
    const failures = [failure('node-2', T0 - 5000), failure('node-1', T0 + 10), failure('node-2', T0 + 900), failure('node-2', T0 + 30)];
    expect(matchFailure(fired, failures, new Set())).toBe(3);
    expect(matchFailure(fired, failures, new Set([3]))).toBe(2);
    expect(matchFailure(fired, failures, new Set([2, 3]))).toBe(null);
  });

  it('allows the coordinator clock to be a little behind, no more', () => {
    expect(matchFailure(fired, [failure('node-2', T0 - CLOCK_SLACK_MS)], new Set())).toBe(0);
    expect(matchFailure(fired, [failure('node-2', T0 - CLOCK_SLACK_MS - 1)], new Set())).toBe(null);
  });

  it('gives each failure to one event only, in event order', () => {
    const failures = [failure('node-2', T0 + 100), failure('node-2', T0 + 20_100)];
    expect(matchAll([fired, { nodeId: 'node-2', firedAtMs: T0 + 20_000 }, { nodeId: 'node-2', firedAtMs: T0 + 40_000 }], failures)).toEqual([0, 1, null]);
  });
});

describe('eventFigures', () => {
  it('counts recovery from detection when the coordinator knows no failure time (a crash it did not cause)', () => {
    const f = eventFigures(T0, failure('node-1', T0 + 2400, { detectMs: null, recoverMs: 600, method: 'erasure-rebuild', lostSteps: 1 }));
    expect(f).toEqual({ detectionMs: 2400, recoveryMs: 3000, handoverMs: null, lostSteps: 1, method: 'erasure-rebuild', failureKind: 'worker-crash' });
  });

  it("counts a preemption's recovery from the notice: handover, then the move", () => {
    // Notice at T0; the stage moved at T0 + 1500 (the coordinator's failure time, detectMs 0), training resumed 300 ms later.
    const f = eventFigures(T0, failure('node-1', T0 + 1500, { kind: 'preempt', detectMs: 0, recoverMs: 300, handoverMs: 1450, method: 'erasure-rebuild' }));
    expect(f).toMatchObject({ detectionMs: 1500, recoveryMs: 1800, handoverMs: 1450 });
  });
});

describe('summarizeByKind', () => {
  it('gives per-kind events, recoveries, percentiles, lost steps and methods, then all', () => {
    const figs = (detectionMs: number, recoveryMs: number, lostSteps: number, method: string) => ({ detectionMs, recoveryMs, handoverMs: null, lostSteps, method, failureKind: 'worker-crash' });
    const events = [
      event(0, 'worker-kill', 1000, { figures: figs(20, 900, 0, 'local-snapshot') }),
      event(1, 'worker-kill', 2000, { figures: figs(40, 1100, 1, 'local-snapshot') }),
      event(2, 'worker-kill', 3000, { figures: figs(30, 1000, 0, 'local-snapshot') }),
      event(3, 'freeze', 4000, { figures: figs(2500, 3100, 1, 'erasure-rebuild') }),
      event(4, 'freeze', 5000, { outcome: EventOutcome.notRecovered, failureIndex: null, figures: null }),
      event(5, 'preempt', 6000, { figures: { ...figs(1500, 1800, 0, 'erasure-rebuild'), handoverMs: 1400 } }),
    ];
    const rows = summarizeByKind(events);
    expect(rows.map((r) => r.kind)).toEqual(['worker-kill', 'freeze', 'preempt', 'all']);
    const wk = rows[0]!;
    expect(wk).toMatchObject({ events: 3, recovered: 3, lostStepsTotal: 1, lostStepsMax: 1, methods: { 'local-snapshot': 3 }, handoverMs: null });
    expect(wk.detectionMs).toEqual({ p50: 30, p99: 40, max: 40 });
    expect(wk.recoveryMs).toEqual({ p50: 1000, p99: 1100, max: 1100 });
    expect(rows[1]).toMatchObject({ events: 2, recovered: 1, detectionMs: { p50: 2500, max: 2500 } });
    expect(rows[2]!.handoverMs).toEqual({ p50: 1400, p99: 1400, max: 1400 });
    expect(rows[3]).toMatchObject({ events: 6, recovered: 5, lostStepsTotal: 2, lostStepsMax: 1, methods: { 'local-snapshot': 3, 'erasure-rebuild': 2 } });
  });
});

describe('chaosVerdict', () => {
  const base = { events: [event(0, 'worker-kill', 1000)], stepsAtStart: 5, stepsAtEnd: 90, failures: [failure('node-0', T0 + 1100)], maxLostSteps: 1, runProblem: null, interrupted: false };

  it('passes when every event recovered, training progressed and no failure lost too much', () => {
    expect(chaosVerdict(base)).toEqual({ ok: true, reasons: [] });
    expect(chaosVerdict({ ...base, failures: [failure('node-0', T0, { lostSteps: 1 })] }).ok).toBe(true);
  });

  it('names every reason to fail', () => {
    const bad = chaosVerdict({
      ...base,
      events: [event(0, 'worker-kill', 1000), event(1, 'freeze', 75_000, { outcome: EventOutcome.notRecovered, figures: null })],
      stepsAtEnd: 5,
      failures: [failure('node-3', T0, { lostSteps: 3, stage: 2, step: 52, kind: 'preempt' })],
      runProblem: 'the run failed: node node-1 (stage 1): lost',
      interrupted: true,
    });
    expect(bad.ok).toBe(false);
    expect(bad.reasons).toEqual([
      'interrupted before the end of the run',
      'the run failed: node node-1 (stage 1): lost',
      '1 of 2 events were not recovered: freeze node-1 at 01:15',
      'training did not progress: 5 steps done at the start, 5 at the end',
      'a failure lost more than --max-lost-steps 1 step(s): stage 2 on node-3 (preempt, step 52) lost 3',
    ]);
  });

  it('fails a run in which nothing happened', () => {
    expect(chaosVerdict({ ...base, events: [] }).reasons).toEqual(['no event was fired: raise --duration or --rates']);
  });
});

describe('text', () => {
  it('formats the clock as mm:ss from the start', () => {
    expect(formatClock(0)).toBe('00:00');
    expect(formatClock(42_900)).toBe('00:42');
    expect(formatClock(3_725_000)).toBe('62:05');
  });

  it('prints one progress line per event', () => {
    const e = event(2, 'freeze', 42_000, { stage: 1, figures: { detectionMs: 2400, recoveryMs: 3000, handoverMs: null, lostSteps: 0, method: 'erasure-rebuild', failureKind: 'worker-crash' } });
    expect(progressLine(e, 3100)).toBe('chaos 00:42 freeze node-2 (stage 1): detected in 2.4 s, recovered by erasure-rebuild in 3.0 s, 0 steps lost');
    const p = event(3, 'preempt', 61_000, { figures: { detectionMs: 1500, recoveryMs: 1800, handoverMs: 1400, lostSteps: 1, method: 'erasure-rebuild', failureKind: 'preempt' } });
    expect(progressLine(p, 2000)).toBe('chaos 01:01 preempt node-3 (stage 1): detected in 1.5 s, handed over in 1.4 s, recovered by erasure-rebuild in 1.8 s, 1 step lost');
    const n = event(4, 'node-kill', 5000, { outcome: EventOutcome.notRecovered, figures: null, notes: ['not recovered within 60 s (phase recovering)'] });
    expect(progressLine(n, 60_000)).toBe('chaos 00:05 node-kill node-4 (stage 1): NOT RECOVERED after 60 s (not recovered within 60 s (phase recovering))');
  });

  it('lays the table out by kind with the lines under it', () => {
    const rows = summarizeByKind([event(0, 'worker-kill', 1000), event(1, 'preempt', 2000, { figures: { detectionMs: 1500, recoveryMs: 1800, handoverMs: 1400, lostSteps: 0, method: 'erasure-rebuild', failureKind: 'preempt' } })]);
    const lines = formatTable({ rows, stepsAtStart: 4, stepsAtEnd: 120, notFired: 2, notFiredWhy: 'the duration ended first' });
    expect(lines[0]).toMatch(/^kind\s+events\s+recovered\s+detection p50\/p99\/max s\s+recovery p50\/p99\/max s\s+steps lost total\/max$/);
    expect(lines[1]).toMatch(/^worker-kill\s+1\s+1\s+0\.10 \/ 0\.10 \/ 0\.10\s+1\.00 \/ 1\.00 \/ 1\.00\s+0 \/ 0$/);
    expect(lines[2]).toMatch(/^preempt\s+1\s+1\s+1\.50 \/ 1\.50 \/ 1\.50\s+1\.80 \/ 1\.80 \/ 1\.80\s+0 \/ 0$/);
    expect(lines[3]).toMatch(/^all\s+2\s+2\s/);
    expect(lines.slice(4)).toEqual([
      'preempt handover (notice until the stage moved): p50 1.40 s, max 1.40 s; its detection counts until the move',
      'recovery methods: local-snapshot 1, erasure-rebuild 1',
      'steps trained: 4 at the start, 120 at the end (training progressed)',
      '2 scheduled event(s) not fired: the duration ended first',
    ]);
  });
});
