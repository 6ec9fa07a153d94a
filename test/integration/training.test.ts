// Real runs of `ftrain run`: a coordinator and worker processes talking gRPC on 127.0.0.1.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-training-'));

async function train(name: string, args: string[]): Promise<RunReport> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...args, '--report', report, '--log-file', join(dir, `${name}.log`)]);
  expect(res.stderr).toBe('');
  expect(res.code, res.stdout).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as RunReport;
}

describe('pipeline training across processes', () => {
  it('trains the default model on 4 stages: the loss falls by at least 15% in 30 steps', async () => {
    const r = await train('wasm-30', ['--nodes', '4', '--steps', '30', '--seed', '1']);
    expect(r.status).toBe('finished');
    expect(r.steps).toBe(30);
    expect(r.stages).toBe(4);
    expect(r.backend).toBe('wasm');
    expect(r.losses).toHaveLength(30);
    expect(r.initialLoss).toBeCloseTo(Math.log(256), 0);
    expect(r.finalLoss!).toBeLessThanOrEqual(0.85 * r.initialLoss!);
    expect(r.tokensPerSecond!).toBeGreaterThan(0);
    expect(r.weightsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(r.stageTiming.map((s) => s.nodeId)).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
    expect(r.bubble.theoretical).toBeCloseTo(3 / 7, 10);
  });

  it('is deterministic on the cpu backend: the same seed gives the same weights digest', async () => {
    // A small model: the kernels are the default model's, and each run is mostly its start-up.
    // scripts/digests.sh checks the default model's recorded digests on the cpu backend.
    const args = ['--nodes', '4', '--steps', '3', '--seed', '1', '--backend', 'cpu', ...SMALL_MODEL];
    const a = await train('cpu-a', args);
    const b = await train('cpu-b', args);
    expect(a.weightsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(b.weightsDigest).toBe(a.weightsDigest);
    expect(b.losses).toEqual(a.losses);
    // Another seed differs from the first step on: one step tells.
    const other = await train('cpu-seed2', ['--nodes', '4', '--steps', '1', '--seed', '2', '--backend', 'cpu', ...SMALL_MODEL]);
    expect(other.weightsDigest).not.toBe(a.weightsDigest);
  });

  it('keeps the lease of a node whose steps take longer than the lease (heartbeats do not wait for tfjs)', async () => {
    const r = await train('long-steps', ['--nodes', '1', '--layers-per-stage', '2', '--steps', '2', '--backend', 'cpu', '--lease-ms', '600', '--heartbeat-ms', '150']);
    expect(r.status).toBe('finished');
    expect(r.stageTiming[0]!.stepMsMean!).toBeGreaterThan(600);
  });
});
