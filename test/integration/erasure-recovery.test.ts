// Lossless recovery from the loss of whole nodes: the worker, the snapshot manager and the node
// agent of a stage are SIGKILLed together, a spare node takes the stage and rebuilds its
// snapshot from erasure shards held by the other nodes' snapshot managers, every stage rolls
// back to that step, and the run ends bit for bit where an uninterrupted run ends.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-erasure-'));
const BASE = ['--nodes', '3', '--seed', '5', '--backend', 'cpu', '--steps', '8', ...SMALL_MODEL];

async function train(name: string, extra: string[], expectCode = 0): Promise<{ report: RunReport; stdout: string }> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...BASE, ...extra, '--report', report, '--log-file', join(dir, `${name}.log`)]);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(expectCode);
  return { report: JSON.parse(readFileSync(report, 'utf8')) as RunReport, stdout: res.stdout };
}

describe('recovery from erasure-coded snapshots on other nodes', () => {
  let baseline: RunReport;

  beforeAll(async () => {
    baseline = (await train('baseline', ['--ec', 'off'])).report;
    expect(baseline.failures).toEqual([]);
  });

  it('rebuilds the stage of one lost node on a spare, bit-exactly (RS(2,1), 3 stages + 1 spare)', async () => {
    const { report: r, stdout } = await train('one-node', ['--spares', '1', '--ec', '2,1', '--inject', '4:1:node-kill']);
    // 3 nodes are left for 3 shards per stage on other nodes: protection says it is degraded, and
    // each stage places its 2 data shards on its 2 other nodes (no parity: no node holds more).
    expect(r.erasure).toMatchObject({ code: 'RS(2,1)', degraded: true, memoryOverhead: 1 });
    // The spare node-3 now holds stage 1; no shard is on its own stage's node or the lost one.
    expect(r.stageTiming[1]!.nodeId).toBe('node-3');
    for (const [stage, holders] of Object.entries(r.erasure.placement)) {
      expect(holders).toHaveLength(2);
      expect(new Set(holders).size).toBe(2);
      expect(holders).not.toContain(r.stageTiming[Number(stage)]!.nodeId);
      expect(holders).not.toContain('node-1');
    }
    expect(stdout).toMatch(/erasure protection degraded/);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ stage: 1, kind: 'node-kill', method: 'erasure-rebuild' });
    expect(r.failures[0]!.lostSteps).toBeLessThanOrEqual(2);
    expect(stdout).toMatch(/recovered stage 1 by erasure-rebuild of step \d+/);
    // Snapshots taken after the loss were protected again under the new placement.
    expect(r.erasure.protectedCommitStep).toBeGreaterThanOrEqual(6);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
    expect(r.losses).toEqual(baseline.losses);
  });

  it('re-protects after a loss: the node that took a stage is lost in turn and rebuilt again', async () => {
    // node-1 dies in step 3; a spare takes stage 1 and its snapshots are placed anew; that node
    // dies in step 6 and the other spare rebuilds stage 1 from the shards placed after the first loss.
    const { report: r } = await train('twice', ['--spares', '2', '--ec', '2,1', '--inject', '3:1:node-kill,6:1:node-kill']);
    expect(r.failures.map((f) => [f.stage, f.method])).toEqual([
      [1, 'erasure-rebuild'],
      [1, 'erasure-rebuild'],
    ]);
    expect(r.failures[1]!.restoredStep).toBeGreaterThan(r.failures[0]!.step);
    expect(new Set(r.failures.map((f) => f.nodeId)).size).toBe(2);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
  });

  it('loses nothing when m = 2 nodes are killed in the same step (RS(2,2), 3 stages + 2 spares)', async () => {
    const { report: r } = await train('two-nodes', ['--spares', '2', '--ec', '2,2', '--inject', '4:0:node-kill,4:2:node-kill']);
    expect(r.erasure.code).toBe('RS(2,2)');
    expect(r.failures.map((f) => [f.stage, f.kind, f.method]).sort()).toEqual([
      [0, 'node-kill', 'erasure-rebuild'],
      [2, 'node-kill', 'erasure-rebuild'],
    ]);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
  });

  // RS(1,1) on 3 stages + 3 spares: stage 0's two shards sit on node-1 and node-2 (least-loaded
  // placement, ties to the nearest). Killing node-0, node-1 and node-2 at once loses stage 0's
  // snapshot and both its shards: m + 1 of its holders. (Losing m + 1 nodes one of which is the
  // owner costs at most m shards: the owner holds none of its own.)
  const beyondParity = ['--spares', '3', '--ec', '1,1', '--inject', '4:0:node-kill,4:1:node-kill,4:2:node-kill'];

  it('never restores garbage when more shards are lost than the code survives: it stops, saying why', async () => {
    const { report: r, stdout } = await train('too-many', beyondParity, 1);
    // The plan stage 0's snapshot manager was given at the start.
    const plans = readFileSync(join(dir, 'too-many.log'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"msg":"erasure protection plan"') && l.includes('"nodeId":"node-0"'));
    expect(JSON.parse(plans[0]!).holders).toEqual(['node-1', 'node-2']);
    expect(r.status).toBe('failed');
    expect(r.weightsDigest).toBeNull();
    expect(stdout).toMatch(/FAILED: .*stage 0 step \d+: 0 of the 1 shards needed survive; CheckFree cannot rebuild stage 0 \(the embedding\).*; no disk checkpoint to fall back to/);
  });

  it('falls back to the disk checkpoint when too few shards survive, and still ends bit-exactly', async () => {
    const ckpt = join(dir, 'ckpt');
    const { report: r } = await train('too-many-disk', [...beyondParity, '--checkpoint-every', '2', '--checkpoint-dir', ckpt]);
    expect(r.failures.length).toBeGreaterThanOrEqual(1);
    expect(r.failures.every((f) => f.method === 'disk-checkpoint')).toBe(true);
    expect(r.failures[0]!.detail).toMatch(/0 of the 1 shards needed survive/);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
  });
});
