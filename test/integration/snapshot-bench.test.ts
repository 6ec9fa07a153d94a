// `ftrain bench snapshot` run for real on a small state: every figure is there and plausible,
// the in-memory snapshot stalls the loop less than a disk checkpoint, and nothing is left
// behind (slot files, checkpoint, socket sink process).

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isAlive, runCli } from '../support/cli.ts';
import { expectPositive } from '../support/expect-positive.ts';

// Fresh directories of this test only, so runs of other tests that share /dev/shm do not matter.
const shmDir = mkdtempSync(join('/dev/shm', 'ftrain-bench-test-'));
const diskDir = mkdtempSync(join(tmpdir(), 'ftrain-bench-test-'));

afterAll(() => {
  rmSync(shmDir, { recursive: true, force: true });
  rmSync(diskDir, { recursive: true, force: true });
});

const POSITIVE_FIELDS = [
  'stateBytes',
  'runs',
  'stallMs',
  'stallMsWithCopyOut',
  'snapshotGBps',
  'diskStallMs',
  'diskGBps',
  'memcpyGBps',
  'stallRatio',
  'fractionOfMemcpy',
  'stepMsWithout',
  'stepMsWith',
  'computeMsTarget',
  'crc32GBps',
] as const;

const RAW_FIELDS = ['stallMs', 'snapshotMs', 'stallMsWithCopyOut', 'diskStallMs', 'memcpyMs', 'socketMs', 'socketStallMsWorker', 'socketStallMsInline', 'stepMsWithout', 'stepMsWith', 'stepOverheadPct'] as const;


describe('ftrain bench snapshot', () => {
  it('measures snapshot, disk checkpoint, memcpy and socket on the same 16 MiB, and cleans up', async () => {
    const res = await runCli(['bench', 'snapshot', '--state-mb', '16', '--runs', '1', '--json', '--shm-dir', shmDir, '--disk-dir', diskDir], { timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown> & {
      paths: { shm: Record<string, unknown>; socket: Record<string, unknown> };
      raw: Record<string, unknown>;
      targets: Record<string, { met: unknown }>;
    };

    expect(r.stateBytes).toBe(16 * 1024 * 1024);
    expect(r.runs).toBe(1);
    expect(r.shmDir).toBe(shmDir);
    expect(r.diskDir).toBe(diskDir);
    expect(r.shmDirIsTmpfs).toBe(true);
    expect(typeof r.diskDirIsTmpfs).toBe('boolean');
    const machine = r.machine as { cpus: unknown; loadAverage1mBefore: unknown; loadAverage1mAfter: unknown };
    expectPositive(machine.cpus, 'machine.cpus');
    for (const load of [machine.loadAverage1mBefore, machine.loadAverage1mAfter]) expect(Number.isFinite(load)).toBe(true);
    for (const field of POSITIVE_FIELDS) expectPositive(r[field], field);
    expect(Number.isFinite(r.stepOverheadPct), 'stepOverheadPct').toBe(true); // may be slightly negative: noise

    for (const field of ['stallMs', 'stallMsWithCopyOut', 'commitMs', 'gbps', 'writerMs', 'commitMsWithCopyOut']) expectPositive(r.paths.shm[field], `paths.shm.${field}`);
    for (const field of ['gbps', 'stallMsWorker', 'stallMsInline', 'gbpsInline', 'sinkPid']) expectPositive(r.paths.socket[field], `paths.socket.${field}`);
    expect(r.paths.shm.stallMs).toBe(r.stallMs);
    expect(r.paths.shm.gbps).toBe(r.snapshotGBps);
    expect(['shm', 'socket']).toContain(r.chosen);
    expect(r.reason).toMatch(/GB\/s/);
    for (const t of ['stallRatio', 'fractionOfMemcpy', 'stepOverheadPct']) expect(typeof r.targets[t]?.met, `targets.${t}.met`).toBe('boolean');

    for (const field of RAW_FIELDS) {
      const xs = r.raw[field];
      expect(Array.isArray(xs) && xs.length === 1, `raw.${field}`).toBe(true);
      expect(Number.isFinite((xs as number[])[0]), `raw.${field}[0]`).toBe(true);
    }

    expect(r.stallMs as number).toBeLessThan(r.diskStallMs as number);
    const ratio = (r.diskStallMs as number) / (r.stallMs as number);
    expect(Math.abs((r.stallRatio as number) - ratio) / ratio).toBeLessThan(0.01); // figures have 4 significant digits

    expect(readdirSync(shmDir).filter((name) => name.startsWith('ftrain'))).toEqual([]);
    expect(readdirSync(diskDir)).toEqual([]);
    expect(isAlive(r.paths.socket.sinkPid as number)).toBe(false);
  }, 60_000);
});
