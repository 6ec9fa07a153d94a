// The spot-instance life cycle with real processes and real signals: a preemption notice
// (SIGTERM to a node agent) moves the stage at a step boundary without losing a step; a frozen
// node (SIGSTOP to worker, snapshot manager and agent: no connection closes) is declared lost by
// its lease within 3 s, its stage is rebuilt elsewhere, and when it wakes it is fenced and
// leaves; a node that joins a running job takes a stage that was left vacant. Each run ends with
// the weights of the uninterrupted run (cpu backend).

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, isAlive, runCli, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-spot-'));
const BASE = ['--nodes', '4', '--seed', '13', '--backend', 'cpu', '--steps', '30', ...SMALL_MODEL];

async function train(name: string, extra: string[]): Promise<{ report: RunReport; stdout: string; log: string }> {
  const report = join(dir, `${name}.json`);
  const logFile = join(dir, `${name}.log`);
  const res = await runCli(['run', ...BASE, ...extra, '--report', report, '--log-file', logFile]);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  return { report: JSON.parse(readFileSync(report, 'utf8')) as RunReport, stdout: res.stdout, log: readFileSync(logFile, 'utf8') };
}

describe('spot-instance life cycle', () => {
  let baseline: RunReport;

  beforeAll(async () => {
    baseline = (await train('baseline', [])).report;
    expect(baseline.failures).toEqual([]);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('moves the stage of a preempted node at a step boundary: no step lost, same weights', async () => {
    const { report: r, stdout } = await train('preempt', ['--spares', '1', '--inject', '8:1:preempt']);
    const pause = stdout.match(/node node-1 \(stage 1\) is leaving within 25 s \(SIGTERM\): pausing after step (\d+) to move stage 1/);
    expect(pause, stdout).not.toBeNull();
    expect(r.failures).toHaveLength(1);
    const f = r.failures[0]!;
    // The stage moves after the step the notice named, counted as the progress lines count.
    expect(f.step).toBe(Number(pause![1]));
    expect(f).toMatchObject({ stage: 1, kind: 'preempt', method: 'erasure-rebuild', lostSteps: 0 });
    expect(f.handoverMs).toBeGreaterThan(0);
    expect(f.handoverMs!).toBeLessThan(10_000);
    // Beyond the handover: halt, rebuild on the spare from shards, resume.
    expect(f.recoverMs).toBeLessThan(2000);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
    expect(r.losses).toEqual(baseline.losses);
  });

  it('detects a frozen node within 3 s, recovers, and fences it when it wakes', async () => {
    const { report: r, log } = await train('freeze', ['--spares', '1', '--inject', '6:2:freeze']);
    expect(r.failures).toHaveLength(1);
    const f = r.failures[0]!;
    expect(f).toMatchObject({ stage: 2, kind: 'freeze', method: 'erasure-rebuild' });
    expect(f.detail).toMatch(/lease expired/);
    expect(f.detectMs!).toBeLessThan(3000);
    expect(f.lostSteps).toBeLessThanOrEqual(1);
    // Woken 8 s after the freeze, the node learns it is no longer part of the job and leaves
    // (exit code 3) instead of acting on its stale stage.
    expect(log).toMatch(/fenced: the coordinator no longer knows this node/);
    expect(log).toMatch(/"nodeId":"node-2","code":3,"signal":null,"msg":"node process exited"/);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
  });

  it('waits for a node when no spare is left, and a node that joins takes the vacant stage', async () => {
    const report = join(dir, 'join.json');
    const snapshots = mkdtempSync(join('/dev/shm', 'ftrain-spot-late-'));
    // The job's CA and token, as across machines: the run issues its own certificates from the
    // CA, the late node comes with one of its own and the token.
    const tls = join(dir, 'tls');
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, 'spot-lifecycle-join-token-0123456789\n', { mode: 0o600 });
    for (const args of [['certs', 'init', '--dir', tls], ['certs', 'issue', '--dir', tls, '--name', 'late-1']]) {
      const made = await runCli(args);
      expect(made.code, made.stderr).toBe(0);
    }
    const secure = ['--tls-dir', tls, '--join-token-file', tokenFile];
    const run = startCli(['run', ...BASE, ...secure, '--inject', '6:1:node-kill', '--report', report, '--log-file', join(dir, 'join.log')]);
    const port = Number((await run.waitForLine(/^ftrain: coordinator on 127\.0\.0\.1:(\d+)/)).match[1]);
    await run.waitForLine(/stage 1 is vacant and no spare is left: waiting for a node to join/);
    const late = startCli(['node', '--coordinator', `127.0.0.1:${port}`, '--node-id', 'late-1', '--listen', '127.0.0.1:0', '--snapshot-dir', snapshots, '--log-file', join(dir, 'late.log'), ...secure]);
    try {
      const res = await run.result;
      expect(res.code, res.stdout + res.stderr).toBe(0);
      const r = JSON.parse(readFileSync(report, 'utf8')) as RunReport;
      expect(r.failures).toHaveLength(1);
      expect(r.failures[0]).toMatchObject({ stage: 1, kind: 'node-kill', method: 'erasure-rebuild' });
      expect(r.stageTiming[1]!.nodeId).toBe('late-1');
      expect(r.weightsDigest).toBe(baseline.weightsDigest);
      // The run told the late node to stop; it exits by itself.
      const exited = await late.result;
      expect(exited.code).toBe(0);
    } finally {
      if (late.child.pid && isAlive(late.child.pid)) late.child.kill('SIGKILL');
      rmSync(snapshots, { recursive: true, force: true });
    }
  });
});
