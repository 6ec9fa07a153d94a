// `ftrain bench replicas` run for real at a small size: one JSON object of named sections (the
// machine, the all-reduce; later ones go beside them), every figure a positive number, the ratios
// the quotients of the rates they name; a bad option is a usage error.

import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { expectPositive } from '../support/expect-positive.ts';


describe('ftrain bench replicas', () => {
  it('measures the all-reduce of 4 MiB over two replicas against raw streams of the same bytes', async () => {
    const res = await runCli(['bench', 'replicas', '--json', '--megabytes', '4', '--repeat', '1', '--time-lost-runs', '0', '--snapshot-bytes-runs', '0', '--overlap-runs', '0'], { timeoutMs: 90_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toMatch(/bench replicas: all-reduce of 4 MiB over 2 replicas/);
    const r = JSON.parse(res.stdout) as { machine: Record<string, unknown>; definitions: Record<string, unknown>; allReduce: Record<string, unknown> & { target: Record<string, unknown>; runs: Record<string, unknown[]> } };
    expect(Object.keys(r)).toEqual(['machine', 'definitions', 'allReduce']);
    expectPositive(r.machine.cpus, 'machine.cpus');
    expectPositive(r.machine.totalMemoryBytes, 'machine.totalMemoryBytes');
    expect(r.machine.node).toBe(process.version);
    const a = r.allReduce;
    expect(a).toMatchObject({ megabytes: 4, replicas: 2, repeat: 1 });
    for (const field of ['allReduceMBps', 'rawStreamMBps', 'ratio', 'bothWaysMBps', 'ratioToBothWays']) expectPositive(a[field], `allReduce.${field}`);
    const near = (x: unknown, want: number) => expect(Math.abs((x as number) - want) / want).toBeLessThan(0.01);
    near(a.ratio, (a.allReduceMBps as number) / (a.rawStreamMBps as number));
    near(a.ratioToBothWays, (a.allReduceMBps as number) / (a.bothWaysMBps as number));
    expect(a.target).toEqual({ minRatio: 0.5, met: (a.ratio as number) >= 0.5 });
    for (const series of ['allReduce', 'rawStream', 'bothWays']) expect(a.runs[series], series).toHaveLength(1);
    for (const key of Object.keys(r.definitions)) expect(a[key], `definitions.${key} names a figure`).toBeDefined();
  }, 90_000);

  it('refuses a replica count below two with a usage error', async () => {
    const res = await runCli(['bench', 'replicas', '--replicas', '1'], { timeoutMs: 30_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/--replicas: must be an integer from 2 to 16, got "1"/);
  });
});
