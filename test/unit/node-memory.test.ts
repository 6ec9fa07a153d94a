// Memory per node: how a process and a snapshot manager measure theirs, how the coordinator keeps
// the newest and the peak of each part per node, and the run report built from it.

import { closeSync, ftruncateSync, mkdtempSync, openSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ProcessMemorySampler, parseVmHwmBytes, readVmHwmBytes } from '../../common/process-memory.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { NodeMemoryTracker, peakRamPerNodeBytes } from '../../coordinator/core/node-memory.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import type { SmpMemoryReport } from '../../domain/node-reports.ts';
import { SnapshotSlots, writeSmpInfo } from '../../domain/snapshot-slots.ts';
import { buildRunReport, parseRunReport } from '../../observability/run-report.ts';
import { RunLedger } from '../../observability/run-ledger.ts';
import { SmpMemoryReporter } from '../../snapshot-manager/memory-reporter.ts';
import { reportLines } from '../../cli/coordinator-session.ts';
import { createLogger } from '../../common/logging.ts';

const MiB = 2 ** 20;

function smp(nodeId: string, rss: number, peakRss: number, slots: number, shards: number, extra: Partial<SmpMemoryReport> = {}): SmpMemoryReport {
  return { nodeId, smpAddress: '', process: { rssBytes: rss, peakRssBytes: peakRss }, slotBytes: slots, peakSlotBytes: slots, shardBytes: shards, peakShardBytes: shards, ...extra };
}

describe('process memory', () => {
  it('reads the kernel peak from /proc/PID/status text', () => {
    expect(parseVmHwmBytes('Name:\tnode\nVmPeak:\t 900 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n')).toBe(51234 * 1024);
    expect(parseVmHwmBytes('Name:\tnode\nVmRSS:\t 4 kB\n')).toBeNull();
  });

  it('reads this process on Linux: a peak at least the resident set now', () => {
    const s = new ProcessMemorySampler().sample(0);
    expect(s.rssBytes).toBeGreaterThan(0);
    expect(s.peakRssBytes).toBeGreaterThanOrEqual(s.rssBytes);
    if (process.platform === 'linux') expect(readVmHwmBytes()).toBeGreaterThan(0);
  });

  it('reads at most once per interval, and without a kernel peak keeps the most it has seen', () => {
    const rss = [100, 300, 200];
    let reads = 0;
    const sampler = new ProcessMemorySampler({ rssBytes: () => rss[reads++]!, peakRssBytes: () => null }, 1000);
    expect(sampler.sample(0)).toEqual({ rssBytes: 100, peakRssBytes: 100 });
    expect(sampler.sample(999)).toEqual({ rssBytes: 100, peakRssBytes: 100 });
    expect(reads).toBe(1);
    expect(sampler.sample(1000)).toEqual({ rssBytes: 300, peakRssBytes: 300 });
    expect(sampler.sample(2000)).toEqual({ rssBytes: 200, peakRssBytes: 300 });
    // A kernel peak above what was seen wins; one below the current value cannot lower it.
    const kernel = new ProcessMemorySampler({ rssBytes: () => 500, peakRssBytes: () => 400 }, 1000);
    expect(kernel.sample(0)).toEqual({ rssBytes: 500, peakRssBytes: 500 });
    const spike = new ProcessMemorySampler({ rssBytes: () => 500, peakRssBytes: () => 9000 }, 1000);
    expect(spike.sample(0)).toEqual({ rssBytes: 500, peakRssBytes: 9000 });
  });
});

describe('slot bytes', () => {
  it('count the blocks the slot files hold, not their lengths: a sparse file costs only what was written', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-slot-bytes-'));
    const slots = new SnapshotSlots(dir, 2);
    expect(slots.residentBytes()).toBe(0);
    // Bytes that do not compress, for file systems that compress blocks.
    const data = randomBytes(256 * 1024);
    slots.write(0, { stage: 0, step: 1, tensors: [], scalars: {} }, [data]);
    const written = slots.residentBytes();
    // The data file's pages and the record's (at least a page or block of its own).
    expect(written).toBeGreaterThanOrEqual(data.byteLength);
    expect(written).toBeLessThan(data.byteLength + 64 * 1024);
    // A 64 MiB file with nothing written: its length says 64 MiB, its blocks nearly nothing.
    const fd = openSync(join(dir, 'slot-1.bin'), 'w');
    ftruncateSync(fd, 64 * MiB);
    closeSync(fd);
    expect(statSync(join(dir, 'slot-1.bin')).size).toBe(64 * MiB);
    expect(slots.residentBytes() - written).toBeLessThan(MiB);
    // Files that are not the slots' own (smp.json) are not counted.
    const before = slots.residentBytes();
    writeSmpInfo(dir, { address: '127.0.0.1:1', pid: 1 });
    expect(slots.residentBytes()).toBe(before);
    slots.destroy();
    expect(slots.residentBytes()).toBe(0);
    slots.remove();
  });
});

describe("a snapshot manager's memory report", () => {
  it('samples its process, slots and shards together, with the peaks it has seen', () => {
    let slots = 10 * MiB;
    let shards = 4 * MiB;
    const sources = { nodeId: 'n1', address: () => '127.0.0.1:5', slotBytes: () => slots, shardBytes: () => shards };
    const process = new ProcessMemorySampler({ rssBytes: () => 300 * MiB, peakRssBytes: () => 310 * MiB }, 1000);
    const reporter = new SmpMemoryReporter(sources, null, createLogger({ name: 'test', level: 'silent' }), process);
    expect(reporter.sample(0)).toEqual({
      nodeId: 'n1',
      smpAddress: '127.0.0.1:5',
      process: { rssBytes: 300 * MiB, peakRssBytes: 310 * MiB },
      slotBytes: 10 * MiB,
      peakSlotBytes: 10 * MiB,
      shardBytes: 4 * MiB,
      peakShardBytes: 4 * MiB,
    });
    slots = 5 * MiB;
    shards = 6 * MiB;
    expect(reporter.sample(1000)).toMatchObject({ slotBytes: 5 * MiB, peakSlotBytes: 10 * MiB, shardBytes: 6 * MiB, peakShardBytes: 6 * MiB });
  });

  it('sends one report at a time: a tick while the last is on its way only samples', () => {
    const calls: ((err: null) => void)[] = [];
    const client = { ReportMemory: (_r: unknown, _o: unknown, cb: (err: null) => void) => (calls.push(cb), {}) };
    let slots = 1;
    const sources = { nodeId: 'n1', address: () => 'a:1', slotBytes: () => slots, shardBytes: () => 0 };
    const reporter = new SmpMemoryReporter(sources, client as never, createLogger({ name: 'test', level: 'silent' }));
    reporter.report(0);
    slots = 50;
    reporter.report(1000);
    expect(calls).toHaveLength(1);
    calls[0]!(null);
    slots = 20;
    reporter.report(2000);
    expect(calls).toHaveLength(2);
    // The sample taken while the first report was under way still counts for the peak.
    expect(reporter.sample(3000)).toMatchObject({ slotBytes: 20, peakSlotBytes: 50 });
  });

  it('passes on the protected commit step each reply carries, and nothing from a refused report', () => {
    const calls: ((err: Error | null, reply?: { protectedCommitStep: number }) => void)[] = [];
    const client = { ReportMemory: (_r: unknown, _o: unknown, cb: (typeof calls)[number]) => (calls.push(cb), {}) };
    const sources = { nodeId: 'n1', address: () => 'a:1', slotBytes: () => 0, shardBytes: () => 0 };
    const steps: number[] = [];
    const reporter = new SmpMemoryReporter(sources, client as never, createLogger({ name: 'test', level: 'silent' }), undefined, (s) => steps.push(s));
    reporter.report(0);
    calls[0]!(null, { protectedCommitStep: 7 });
    reporter.report(1000);
    calls[1]!(new Error('unknown node'));
    expect(steps).toEqual([7]);
  });
});

describe('memory per node in the coordinator', () => {
  it('totals worker, snapshot manager and slots (never the shards again), and keeps the sampled peak total', () => {
    const t = new NodeMemoryTracker();
    t.worker('n0', { rssBytes: 500, peakRssBytes: 600 });
    t.smp(smp('n0', 200, 250, 100, 80));
    let [m] = t.list([{ nodeId: 'n0', stage: 0 }]);
    expect(m).toEqual({
      nodeId: 'n0',
      stage: 0,
      workerRssBytes: 500,
      workerPeakRssBytes: 600,
      smpRssBytes: 200,
      smpPeakRssBytes: 250,
      slotBytes: 100,
      peakSlotBytes: 100,
      shardBytes: 80,
      peakShardBytes: 80,
      totalBytes: 800,
      peakTotalBytes: 800,
      sumOfPeaksBytes: 950,
    });
    // The worker shrinks, then the manager grows: the peak total is the largest sum seen at once
    // (500 + 200 + 100, then 300 + 200 + 100, then 300 + 400 + 100), not the sum of the peaks.
    t.worker('n0', { rssBytes: 300, peakRssBytes: 600 });
    t.smp(smp('n0', 400, 400, 100, 80));
    [m] = t.list([{ nodeId: 'n0', stage: 0 }]);
    expect(m).toMatchObject({ totalBytes: 800, peakTotalBytes: 800, sumOfPeaksBytes: 1100 });
    t.smp(smp('n0', 450, 450, 120, 0));
    [m] = t.list([{ nodeId: 'n0', stage: 0 }]);
    expect(m).toMatchObject({ totalBytes: 870, peakTotalBytes: 870, shardBytes: 0, peakShardBytes: 80, peakSlotBytes: 120 });
  });

  it('keeps the run peak when a restarted process starts its own peak again, and gives null for what was never said', () => {
    const t = new NodeMemoryTracker();
    t.worker('n1', { rssBytes: 900, peakRssBytes: 1000 });
    t.worker('n1', { rssBytes: 100, peakRssBytes: 120 }); // a new worker under the same id
    const [n1, spare] = t.list([
      { nodeId: 'n1', stage: 1 },
      { nodeId: 'n2', stage: null },
    ]);
    expect(n1).toMatchObject({ workerRssBytes: 100, workerPeakRssBytes: 1000, smpRssBytes: null, slotBytes: null, totalBytes: 100, peakTotalBytes: 900, sumOfPeaksBytes: 1000 });
    expect(spare).toMatchObject({ nodeId: 'n2', stage: null, workerRssBytes: null, totalBytes: null, peakTotalBytes: null, sumOfPeaksBytes: null });
    expect(peakRamPerNodeBytes([n1!, spare!])).toBe(900);
    expect(peakRamPerNodeBytes([spare!])).toBeNull();
  });

  it('takes the worker memory of heartbeats and the reports of a node own snapshot manager only, and shows it in status and report', () => {
    const job = compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, spares: 1 });
    const core = new CoordinatorCore(job);
    for (const id of ['n0', 'n1', 'n2']) {
      core.handle({ type: 'register', nodeId: id, address: `127.0.0.1:${id.at(-1)}`, pid: 1, hostname: 'h', smpAddress: `127.0.0.1:10${id.at(-1)}` }, 0);
      core.handle({ type: 'commands-opened', nodeId: id }, 0);
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
    expect(core.handle({ type: 'heartbeat', nodeId: 'n0', memory: { rssBytes: 300 * MiB, peakRssBytes: 320 * MiB } }, 10).reply.ok).toBe(true);
    expect(core.handle({ type: 'heartbeat', nodeId: 'n2', memory: { rssBytes: 90 * MiB, peakRssBytes: 90 * MiB } }, 10).reply.ok).toBe(true);
    expect(core.handle({ type: 'heartbeat', nodeId: 'n1' }, 10).reply.ok).toBe(true); // an older build: no memory
    expect(core.handle({ type: 'memory', ...smp('n0', 100 * MiB, 110 * MiB, 8 * MiB, 2 * MiB, { smpAddress: '127.0.0.1:100' }) }, 20).reply.ok).toBe(true);
    expect(core.handle({ type: 'memory', ...smp('n2', 60 * MiB, 60 * MiB, 0, 3 * MiB, { smpAddress: '127.0.0.1:102' }) }, 20).reply.ok).toBe(true);
    // Not the node's own snapshot manager, and a node the coordinator does not know: refused, not taken.
    const other = core.handle({ type: 'memory', ...smp('n1', 1, 1, 1, 1, { smpAddress: '127.0.0.1:999' }) }, 20).reply;
    expect(other).toMatchObject({ ok: false, refusal: { reason: 'duplicate' } });
    const ghost = core.handle({ type: 'heartbeat', nodeId: 'ghost', memory: { rssBytes: 1, peakRssBytes: 1 } }, 20).reply;
    expect(ghost).toMatchObject({ ok: false, refusal: { reason: 'fenced' } });

    const status = core.status();
    expect(status.memory.map((m) => [m.nodeId, m.stage, m.workerRssBytes, m.smpRssBytes, m.totalBytes])).toEqual([
      ['n0', 0, 300 * MiB, 100 * MiB, 408 * MiB],
      ['n1', 1, null, null, null],
      ['n2', null, 90 * MiB, 60 * MiB, 150 * MiB],
    ]);

    const report = buildRunReport(job, 'sha', 'cpu', status, new RunLedger(job.stages), { status: 'stopped', steps: 0, weightsDigest: null, failure: null, reason: 'test' }, {
      launchedAtMs: 0,
      trainingStartedAtMs: null,
      lastStepAtMs: null,
      endedAtMs: 1000,
    });
    expect(report.memory[0]).toEqual({
      nodeId: 'n0',
      stage: 0,
      workerRssBytes: 300 * MiB,
      workerPeakRssBytes: 320 * MiB,
      smpRssBytes: 100 * MiB,
      smpPeakRssBytes: 110 * MiB,
      slotBytes: 8 * MiB,
      peakSlotBytes: 8 * MiB,
      shardBytes: 2 * MiB,
      peakShardBytes: 2 * MiB,
      totalBytes: 408 * MiB,
      peakTotalBytes: 408 * MiB,
      sumOfPeaksBytes: 438 * MiB,
    });
    expect(report.peakRamPerNodeBytes).toBe(408 * MiB);
    const back = parseRunReport('r.json', JSON.stringify(report));
    expect(reportLines(back).join('\n')).toMatch(/^ {2}memory: peak RAM per node 408\.0 MiB on n0 \(.*\); its peaks: worker RSS 320\.0 MiB, snapshot manager RSS 110\.0 MiB, slot files 8\.0 MiB, shards held 2\.0 MiB$/m);
    // A report written before nodes said their memory still reads, and says nothing of it.
    const { memory: _m, peakRamPerNodeBytes: _p, ...old } = report;
    expect(reportLines(parseRunReport('old.json', JSON.stringify(old))).join('\n')).not.toMatch(/memory:/);
  });
});
