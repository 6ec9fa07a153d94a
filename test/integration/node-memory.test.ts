// A real run reports every node's memory: the worker's with its heartbeats, the snapshot
// manager's (its process, slot files on tmpfs, shards held for others) in its own reports, the
// spare's too; the run report gives each part now and at its peak, and the node totals.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-node-memory-'));
const MiB = 2 ** 20;

describe('memory per node', () => {
  it('is reported by every node, the spare included, with peaks at least the current values', async () => {
    const report = join(dir, 'r.json');
    const res = await runCli(['run', '--nodes', '2', '--spares', '1', '--steps', '4', '--backend', 'cpu', '--report', report, '--log-file', join(dir, 'run.log')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8')) as RunReport;
    expect(r.status).toBe('finished');
    expect(r.erasure.code).toBe('RS(1,1)');

    expect(r.memory.map((m) => m.nodeId)).toEqual(r.nodes.map((n) => n.nodeId).sort());
    expect(r.memory.map((m) => m.stage)).toEqual(expect.arrayContaining([0, 1, null]));
    for (const m of r.memory) {
      const at = `node ${m.nodeId}: ${JSON.stringify(m)}`;
      // A Node.js process with gRPC loaded is tens of MiB at the least; tfjs more.
      expect(m.workerRssBytes!, at).toBeGreaterThan(10 * MiB);
      expect(m.smpRssBytes!, at).toBeGreaterThan(10 * MiB);
      expect(m.workerPeakRssBytes!, at).toBeGreaterThanOrEqual(m.workerRssBytes!);
      expect(m.smpPeakRssBytes!, at).toBeGreaterThanOrEqual(m.smpRssBytes!);
      expect(m.peakSlotBytes!, at).toBeGreaterThanOrEqual(m.slotBytes!);
      expect(m.peakShardBytes!, at).toBeGreaterThanOrEqual(m.shardBytes!);
      // RS(1,1) on three nodes: each stage's two shards go to the two other nodes, the spare one of them.
      expect(m.peakShardBytes!, at).toBeGreaterThan(0);
      // The shards are inside the snapshot manager's RSS: the total does not add them again.
      expect(m.totalBytes, at).toBe(m.workerRssBytes! + m.smpRssBytes! + m.slotBytes!);
      expect(m.peakTotalBytes!, at).toBeGreaterThanOrEqual(m.totalBytes!);
      expect(m.sumOfPeaksBytes!, at).toBeGreaterThanOrEqual(m.peakTotalBytes!);
      if (m.stage === null) {
        expect(m.slotBytes, at).toBe(0); // a spare takes no snapshots
      } else {
        // Its slots hold at least the newest snapshot of its stage.
        expect(m.slotBytes!, at).toBeGreaterThanOrEqual(r.snapshots.bytesPerStage[m.stage]!);
      }
    }
    expect(r.peakRamPerNodeBytes).toBe(Math.max(...r.memory.map((m) => m.peakTotalBytes!)));

    const printed = await runCli(['report', report]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toMatch(/^ {2}memory: peak RAM per node \d+\.\d MiB on node-\d/m);
  });
});
