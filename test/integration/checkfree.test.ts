// CheckFree for real: a 6-stage run with snapshots off loses the nodes of three intermediate
// stages (SIGKILL of worker, snapshot manager and node agent); each time a spare rebuilds the
// stage from its neighbours' weights and the others keep theirs. The run completes, and its
// final loss is within 10% of an uninterrupted run of the same length. CheckFree+ does the same for
// the first and the last stage, which plain CheckFree cannot rebuild.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-checkfree-'));
const BASE = ['--nodes', '6', '--steps', '30', '--seed', '3', '--snapshot-every', '0'];

async function train(name: string, extra: string[]): Promise<{ report: RunReport; stdout: string }> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...BASE, ...extra, '--report', report, '--log-file', join(dir, `${name}.log`)]);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  return { report: JSON.parse(readFileSync(report, 'utf8')) as RunReport, stdout: res.stdout };
}

describe('CheckFree recovery', () => {
  let baseline: RunReport;
  beforeAll(async () => {
    baseline = (await train('baseline', [])).report;
  });

  it('survives three intermediate stages lost on a 6-stage run, ending within 10% of the uninterrupted loss', async () => {
    const { report: r, stdout } = await train('checkfree', ['--spares', '3', '--recovery', 'checkfree', '--inject', '8:2:node-kill,15:3:node-kill,22:1:node-kill']);
    expect(r.status).toBe('finished');
    expect(r.steps).toBe(30);
    expect(r.failures.map((f) => [f.stage, f.kind, f.method, f.lostSteps])).toEqual([
      [2, 'node-kill', 'checkfree', 0],
      [3, 'node-kill', 'checkfree', 0],
      [1, 'node-kill', 'checkfree', 0],
    ]);
    expect(stdout).toMatch(/CheckFree: stage 2 rebuilt from stages 1 and 3/);
    // Not a restore: the weights differ from the uninterrupted run's, the loss stays close.
    expect(r.weightsDigest).not.toBe(baseline.weightsDigest);
    expect(Math.abs(r.finalLoss! - baseline.finalLoss!) / baseline.finalLoss!).toBeLessThan(0.1);
  });

  it('CheckFree+ survives the loss of stage 0 and of the last stage, ending within 10% of the uninterrupted loss', async () => {
    const { report: r, stdout } = await train('checkfree-plus', ['--spares', '2', '--recovery', 'checkfree-plus', '--inject', '8:0:node-kill,16:5:node-kill']);
    expect(r.status).toBe('finished');
    expect(r.steps).toBe(30);
    expect(r.failures.map((f) => [f.stage, f.kind, f.method, f.lostSteps])).toEqual([
      [0, 'node-kill', 'checkfree-plus', 0],
      [5, 'node-kill', 'checkfree-plus', 0],
    ]);
    expect(stdout).toMatch(/CheckFree\+: stage 0 rebuilt with the blocks of its swap partner \(stage 1\) and its embedding from the copy stage 1 keeps/);
    expect(stdout).toMatch(/CheckFree\+: stage 5 rebuilt with the blocks of its swap partner \(stage 4\) and its head from the copy stage 4 keeps/);
    expect(Math.abs(r.finalLoss! - baseline.finalLoss!) / baseline.finalLoss!).toBeLessThan(0.1);
  });
});
