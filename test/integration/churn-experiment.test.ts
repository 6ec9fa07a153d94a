// `ftrain experiment churn` for real, kept small: two strategies, a failure-free rate and a high
// (compressed) rate on a 3-stage model. It must write the JSON with a time to the target loss
// for every run that reached it, and a PNG of the curves of the size the plot promises.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { lossPlotSizePx } from '../../experiment/loss-plot.ts';
import { runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-churn-test-'));

describe('ftrain experiment churn', () => {
  it('runs every (strategy, rate), reports time to the target loss and draws the curves', async () => {
    const json = join(dir, 'churn.json');
    const png = join(dir, 'churn.png');
    const res = await runCli(
      ['experiment', 'churn', '--rates', '0,50', '--strategies', 'checkfree,checkpoint', '--steps', '16', '--nodes', '3', '--hour-seconds', '5', '--checkpoint-every', '5', '--seed', '1', '--json', json, '--plot', png],
      { timeoutMs: 170_000 },
    );
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(readFileSync(json, 'utf8'));
    expect(r.failureModel).toMatch(/p = 1 - \(1 - rate\)\^\(stepSeconds \/ hourSeconds\)/);
    expect(r.targetLoss).toBeGreaterThan(0);
    expect(Object.keys(r.timeToTargetSeconds).sort()).toEqual(['0%', '50%']);
    expect(r.runs).toHaveLength(4);
    for (const run of r.runs) {
      expect(['checkfree', 'checkpoint']).toContain(run.strategy);
      if (run.status !== 'finished') continue;
      expect(run.timeline.length).toBeGreaterThanOrEqual(16);
      // Times only grow along a timeline.
      for (let i = 1; i < run.timeline.length; i++) expect(run.timeline[i].seconds).toBeGreaterThanOrEqual(run.timeline[i - 1].seconds);
    }
    // Failure-free runs reach the target (it is taken from one of them).
    expect(r.timeToTargetSeconds['0%'].checkfree).toBeGreaterThan(0);
    // The same schedule for both strategies at 50%.
    const at50 = r.runs.filter((x: { rate: number }) => x.rate === 0.5);
    expect(new Set(at50.map((x: { failuresScheduled: number }) => x.failuresScheduled)).size).toBe(1);
    expect(r.comparisons).toEqual([expect.objectContaining({ rate: '50%' })]);
    // The PNG: signature and the size of a 2-panel figure.
    expect(existsSync(png)).toBe(true);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
    const size = lossPlotSizePx(2, { title: '' });
    expect(bytes.readUInt32BE(16)).toBe(size.widthPx);
    expect(bytes.readUInt32BE(20)).toBe(size.heightPx);
  }, 180_000);

  it('refuses unknown strategies, checkfree-plus on 3 stages and bad rates with a clear message', async () => {
    const unknown = await runCli(['experiment', 'churn', '--strategies', 'checkfree,pray'], { timeoutMs: 30_000 });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--strategies: must be among checkfree, checkfree-plus, snapshot, checkpoint, replicas, got "pray"/);
    const plus = await runCli(['experiment', 'churn', '--strategies', 'checkfree-plus', '--nodes', '3'], { timeoutMs: 30_000 });
    expect(plus.code).toBe(2);
    expect(plus.stderr).toMatch(/--nodes: checkfree-plus swaps the first two and the last two stages: it needs --nodes 4 or more, got 3/);
    const bad = await runCli(['experiment', 'churn', '--rates', '5,120'], { timeoutMs: 30_000 });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--rates: each rate is a percentage/);
  });
});
