// Replicas of the pipeline across real processes: `ftrain run --replicas 2` trains two pipelines
// whose stages sum their gradients with the ring all-reduce over gRPC between their workers.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-replicas-'));

async function train(name: string, args: string[]): Promise<RunReport> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...args, '--report', report, '--log-file', join(dir, `${name}.log`), '--no-dashboard']);
  expect(res.stderr).toBe('');
  expect(res.code, res.stdout).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as RunReport;
}

/** SMALL_MODEL with its micro-batch count replaced. */
function model(microBatches: number): string[] {
  const args = [...SMALL_MODEL];
  args[args.indexOf('--micro-batches') + 1] = String(microBatches);
  return args;
}

describe('replicas', () => {
  it('two replicas of one micro-batch each train bit for bit what one pipeline of two micro-batches does, every replica ending identical', async () => {
    const common = ['--nodes', '2', '--steps', '3', '--seed', '3', '--backend', 'cpu'];
    const a = await train('d2-a', [...common, '--replicas', '2', ...model(1)]);
    const b = await train('d2-b', [...common, '--replicas', '2', ...model(1)]);
    const single = await train('d1', [...common, ...model(2)]);
    expect(a.status).toBe('finished');
    expect(a.replicas).toBe(2);
    expect(a.nodes).toHaveLength(4);
    // Replica r trains micro-batch r of each step: two per step, as the single pipeline does.
    expect(a.microBatchesPerStep).toEqual([2, 2, 2]);
    expect(single.microBatchesPerStep).toEqual([2, 2, 2]);
    expect(a.replicaDigests).toEqual([a.weightsDigest, a.weightsDigest]);
    expect(a.weightsDigest).toMatch(/^[0-9a-f]{64}$/);
    // The same run twice: the same bits.
    expect(b.weightsDigest).toBe(a.weightsDigest);
    // Summing two micro-batches' gradients is one addition, in whichever order the ring adds
    // them: the data-parallel run equals the single pipeline exactly, loss and weights.
    expect(a.losses).toEqual(single.losses);
    expect(a.weightsDigest).toBe(single.weightsDigest);
    expect(single.replicaDigests).toEqual([single.weightsDigest]);
    expect(a.finalLoss!).toBeLessThan(a.initialLoss!);
  });
});
