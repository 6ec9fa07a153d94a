// `ftrain bench erasure` run for real on a small snapshot: every figure is there and plausible,
// every rebuild was checked against the original, and a wrong rebuild fails the bench loudly.

import { describe, expect, it } from 'vitest';
import { RebuildMismatchError, runErasureBench } from '../../bench/erasure-bench.ts';
import { runCli } from '../support/cli.ts';
import { expectPositive } from '../support/expect-positive.ts';

const CASE_RATES = [
  'encodeCopyGBps',
  'encodeGBps',
  'rebuildGBps',
  'memcpyGBps',
  'memcpyWarmGBps',
  'encodeCopyFractionOfMemcpy',
  'encodeFractionOfWarmMemcpy',
  'encodeFractionOfMemcpy',
  'rebuildFractionOfMemcpy',
] as const;
const TOP_RATES = ['encodeCopyGBps', 'encodeGBps', 'rebuildGBps', 'memcpyGBps', 'memcpyWarmGBps', 'encodeCopyFractionOfMemcpy', 'encodeFractionOfWarmMemcpy', 'encodeFractionOfMemcpy', 'simdSpeedupOverReference'] as const;


describe('ftrain bench erasure', () => {
  it('measures both kernels against memcpy on the same 4 MiB, with every rebuild checked', async () => {
    const res = await runCli(['bench', 'erasure', '--json', '--runs', '1', '--sizes-mib', '4', '--codes', '4,2'], { timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown> & {
      machine: Record<string, unknown>;
      headline: Record<string, unknown>;
      cases: (Record<string, unknown> & { raw: Record<string, unknown[]>; lostShards: number[] })[];
      targets: Record<string, { min: unknown; met: unknown }>;
      pool: Record<string, unknown>;
    };
    expect(r.runs).toBe(1);
    expectPositive(r.machine.cpus, 'machine.cpus');
    expect(r.machine.node).toBe(process.version);
    expect(r.headline).toEqual({ code: 'RS(4,2)', sizeMib: 4, kernel: 'simd' });
    for (const field of TOP_RATES) expectPositive(r[field], field);
    expect(r.targets.encodeFractionOfMemcpy?.min).toBe(0.4);
    expect(typeof r.targets.encodeFractionOfMemcpy?.met).toBe('boolean');
    expect(typeof (r.definitions as Record<string, unknown>).memcpy).toBe('string');

    expect(r.cases.map((c) => [c.code, c.sizeMib, c.kernel])).toEqual([
      ['RS(4,2)', 4, 'simd'],
      ['RS(4,2)', 4, 'reference'],
    ]);
    for (const c of r.cases) {
      for (const field of CASE_RATES) expectPositive(c[field], `${String(c.kernel)} ${field}`);
      expect(c.lostShards).toEqual([0, 1]); // m data shards lost: the rebuild decodes
      expect(c.rebuildsChecked).toBe(2); // the striped and the one-stripe encode, rebuilt and compared
      for (const series of Object.values(c.raw)) expect(series).toHaveLength(1);
      const fraction = (c.encodeGBps as number) / (c.memcpyGBps as number);
      expect(Math.abs((c.encodeFractionOfMemcpy as number) - fraction) / fraction).toBeLessThan(0.01);
    }
    expect(r.encodeGBps).toBe(r.cases[0]!.encodeGBps);
    expect(r.encodeFractionOfMemcpy).toBe(r.cases[0]!.encodeFractionOfMemcpy);

    expect(r.pool).toMatchObject({ threads: 1, concurrentEncodes: 1, code: 'RS(4,2)', sizeMib: 4, rebuildChecked: true });
    expectPositive(r.pool.encodeGBpsAggregate, 'pool.encodeGBpsAggregate');
    expect(Number.isFinite(r.pool.eventLoopWorstGapMs)).toBe(true);
  }, 60_000);

  it('fails loudly when a rebuild differs from the original', async () => {
    const run = runErasureBench({ runs: 1, sizesMib: [1], codes: [{ dataShards: 2, parityShards: 1 }], threads: 1, progress: () => {}, tamperWithRebuilds: true });
    await expect(run).rejects.toThrow(RebuildMismatchError);
    await expect(run).rejects.toThrow(/RS\(2,1\) 1 MiB simd, shards 0 lost: the rebuilt data differs from the original at byte 524288/);
  });

  it('refuses a malformed code list with a usage error', async () => {
    const res = await runCli(['bench', 'erasure', '--codes', '4:2'], { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--codes: each code must be k,m, got "4"/);
  });
});
