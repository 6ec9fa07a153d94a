// The dashboard's data: what the live page and a report's page are built from, the series it
// keeps, and the static page's inlining.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { DataError } from '../../domain/errors.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { RecentSeries } from '../../observability/dashboard-server.ts';
import { DASHBOARD_SCHEMA, liveStatus } from '../../observability/dashboard-data.ts';
import { reportDashboardData } from '../../observability/report-dashboard.ts';
import { parseRunReport, REPORT_SCHEMA, type StoredRunReport } from '../../observability/run-report.ts';
import { ASSET_TAGS, staticDashboardHtml } from '../../observability/static-dashboard.ts';
import { DASHBOARD_ASSETS } from '../../observability/dashboard-server.ts';

describe('RecentSeries', () => {
  it('gives items by their count since the start, keeping only the newest `capacity`', () => {
    const s = new RecentSeries<number>(10);
    for (let i = 0; i < 25; i++) s.push(i);
    expect(s.total).toBe(25);
    expect(s.between(20, 25)).toEqual([20, 21, 22, 23, 24]);
    // Older items than the capacity are gone; never more than `capacity` come back.
    expect(s.between(0, 25)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(s.between(25, 25)).toEqual([]);
  });

  it('agrees with a plain array over random pushes and reads', () => {
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const cap = 13;
    const s = new RecentSeries<number>(cap);
    const all: number[] = [];
    for (let i = 0; i < 400; i++) {
      s.push(i);
      all.push(i);
      const to = Math.floor(rand() * (all.length + 1));
      const from = Math.floor(rand() * (to + 1));
      // What a naive series keeping everything gives, limited the same way.
      const kept = all.slice(Math.max(0, all.length - s['items'].length));
      const expected = all.slice(from, to).filter((x) => kept.includes(x)).slice(-cap);
      expect(s.between(from, to)).toEqual(expected);
    }
  });
});

describe('live dashboard status', () => {
  it('names node states as operators do, counts shards per node and times failures from the training start', () => {
    const job = compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, spares: 1 });
    const core = new CoordinatorCore(job);
    for (const id of ['n0', 'n1', 'n2']) {
      core.handle({ type: 'register', nodeId: id, address: `127.0.0.1:${id.at(-1)}`, pid: 100 + Number(id.at(-1)), hostname: 'h' }, 0);
      core.handle({ type: 'commands-opened', nodeId: id }, 0);
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
    const live = liveStatus(core.status(), 1_000, 3_500);
    expect(live.status).toMatchObject({ phase: 'training', completedSteps: 0, globalCommitStep: -1, recovering: null, fatal: null, seconds: 2.5, snapshotInterval: { mode: 'fixed', every: 1 } });
    expect(Object.fromEntries(live.nodes.map((n) => [n.nodeId, [n.state, n.stage, n.pid]]))).toEqual({ n0: ['running', 0, 100], n1: ['running', 1, 101], n2: ['spare', null, 102] });
    // A lost node is a recovery under way, shown from its detection.
    core.handle({ type: 'commands-closed', nodeId: 'n1' }, 2_000);
    const recovering = liveStatus(core.status(), 1_000, 4_000);
    expect(recovering.status.recovering).toMatchObject({ stage: 1, nodeId: 'n1', sinceSeconds: 1 });
    expect(recovering.nodes.find((n) => n.nodeId === 'n1')!.state).toBe('lost');
  });

  it("gives every node's memory, the spare's too", () => {
    const job = compileJobOptions({ nodes: 1, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, spares: 1 });
    const core = new CoordinatorCore(job);
    for (const id of ['n0', 'n1']) {
      core.handle({ type: 'register', nodeId: id, address: `127.0.0.1:${id.at(-1)}`, pid: 1, hostname: 'h' }, 0);
      core.handle({ type: 'commands-opened', nodeId: id }, 0);
      core.handle({ type: 'heartbeat', nodeId: id, memory: { rssBytes: 1000, peakRssBytes: 1200 } }, 5);
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    const live = liveStatus(core.status(), 0, 10);
    expect(live.memory.map((m) => [m.nodeId, m.stage, m.workerRssBytes, m.workerPeakRssBytes, m.totalBytes])).toEqual([
      ['n0', 0, 1000, 1200, 1000],
      ['n1', null, 1000, 1200, 1000],
    ]);
  });
});

describe('a report as a dashboard page', () => {
  const report = {
    schema: REPORT_SCHEMA,
    status: 'finished',
    steps: 3,
    stages: 2,
    backend: 'cpu',
    seed: 1,
    globalCommitStep: 2,
    failure: null,
    losses: [5, 4, 3],
    stageTiming: [],
    timeline: [
      { seconds: 0.5, step: 0, loss: 5 },
      { seconds: 1, step: 1, loss: 4 },
      { seconds: 2, step: 2, loss: null },
    ],
    failures: [{ step: 1, stage: 1, nodeId: 'n1', kind: 'worker-kill', method: 'local-snapshot', detail: 'x', detectMs: 20, detectedAtMs: 11_500, recoverMs: 900, lostSteps: 0, restoredStep: 1, caughtUpMs: 1000 }],
    snapshots: { count: 4, everySteps: 1, bytesPerStage: [1, 1], stallMsP50: 1, copyMsP50: 2, overheadPct: 1 },
    erasure: { code: 'RS(1,1)', dataShards: 1, parityShards: 1, disabledReason: null, protectedCommitStep: 2, degraded: false, placement: { '0': ['n1', 'n2'] }, shardsPerNode: { n1: 1 }, heldBytesPerNode: {}, memoryOverhead: 2, encodeMsP50: 1 },
    trainingStartedAtMs: 10_000,
    nodes: [{ nodeId: 'n1', state: 'stopped', stage: 1, pid: 5, smpPid: 6, agentPid: 7, hostname: 'h', address: 'a:1', smpAddress: '' }],
    snapshotLog: [{ stage: 0, step: 1, seconds: 0.6, stallMs: 1, copyMs: 2, bytes: 3 }],
  } as unknown as StoredRunReport;

  it('gives the failures in seconds since training started, and the loss points that have a loss', () => {
    const d = reportDashboardData(report);
    expect(d.schema).toBe(DASHBOARD_SCHEMA);
    expect(d.live).toBe(false);
    // Numbered as the console numbers steps (steps completed): the report's step 0 is "step 1".
    expect(d.loss).toEqual([
      { seconds: 0.5, step: 1, loss: 5 },
      { seconds: 1, step: 2, loss: 4 },
    ]);
    expect(d.failures[0]).toMatchObject({ seconds: 1.5, method: 'local-snapshot', recoverMs: 900 });
    expect(d.nodes[0]).toMatchObject({ nodeId: 'n1', state: 'stopped', shards: 1, heldBytes: null });
    expect(d.placement).toEqual([{ stage: 0, holders: ['n1', 'n2'] }]);
    expect(d.snapshots).toHaveLength(1);
    // A report written before --snapshot-every auto: its interval was fixed.
    expect(d.job.snapshotEvery).toBe(1);
    expect(d.status.snapshotInterval).toEqual({ mode: 'fixed', every: 1 });
    const auto = reportDashboardData({ ...report, snapshots: { ...report.snapshots, everySteps: 3, intervalMode: 'auto', intervalChanges: [] } });
    expect(auto.job.snapshotEvery).toBe('auto');
    expect(auto.status.snapshotInterval).toEqual({ mode: 'auto', every: 3 });
  });

  it('reads a report of an older version without nodes or snapshot log', () => {
    const { nodes: _n, snapshotLog: _s, trainingStartedAtMs: _t, ...old } = report;
    const d = reportDashboardData(old);
    expect(d.nodes).toEqual([]);
    expect(d.snapshots).toEqual([]);
    expect(d.memory).toEqual([]);
  });

  it('refuses files that are not run reports, saying what they are', () => {
    expect(() => parseRunReport('a.json', '{"schema": "other/1"}')).toThrow(/a\.json: not a run report \(its schema is "other\/1", not "ftrain\.run-report\/1"\)/);
    expect(() => parseRunReport('a.json', 'nope')).toThrow(DataError);
    expect(() => parseRunReport('a.json', JSON.stringify({ ...report, timeline: 3 }))).toThrow(/"timeline" is missing or not a list/);
    expect(parseRunReport('a.json', JSON.stringify(report)).steps).toBe(3);
  });

  it('inlines every asset into one page, and data that contains "</script>" cannot end its element', () => {
    const index = readFileSync(DASHBOARD_ASSETS['/']!.file(), 'utf8');
    for (const tag of Object.values(ASSET_TAGS)) expect(index).toContain(tag);
    const html = staticDashboardHtml({ ...reportDashboardData(report), failures: [{ ...reportDashboardData(report).failures[0]!, detail: '</script><b>x' }] });
    expect(html.match(/^\s*<(script|link)\b[^>\n]*\b(src|href)="(?!data:)/gm)).toBeNull();
    const data = html.match(/<script type="application\/json" id="ftrain-data">([^]*?)<\/script>/)![1]!;
    expect(JSON.parse(data).failures[0].detail).toBe('</script><b>x');
  });
});
