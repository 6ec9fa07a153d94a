// On the wasm backend a snapshot's state is copied straight out of the wasm heap into a slot on
// tmpfs, and restored straight into it. A worker restored from such a snapshot, and a node rebuilt from its
// erasure shards, end with the weights of the uninterrupted wasm run, bit for bit.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-wasm-snapshot-'));
const BASE = ['--nodes', '3', '--spares', '1', '--seed', '5', '--steps', '8', '--backend', 'wasm', '--no-dashboard', ...SMALL_MODEL];

async function train(name: string, extra: string[]): Promise<RunReport> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...BASE, ...extra, '--report', report, '--log-file', join(dir, `${name}.log`)]);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as RunReport;
}

describe('snapshots on the wasm backend', () => {
  it('restore bit for bit: a worker kill and a node kill end with the uninterrupted run’s weights', async () => {
    const baseline = await train('baseline', []);
    const killed = await train('killed', ['--inject', '4:1:worker-kill,6:2:node-kill']);
    expect(killed.failures.map((f) => f.method)).toEqual(['local-snapshot', 'erasure-rebuild']);
    expect(killed.weightsDigest).not.toBeNull();
    expect(killed.weightsDigest).toBe(baseline.weightsDigest);
    expect(killed.losses).toEqual(baseline.losses);
  }, 120_000);
});
