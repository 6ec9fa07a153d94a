// The coordinator's Prometheus metrics, fed with the actions of a scripted run.

import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { type StepReport as StepReportEvent } from '../../domain/node-reports.ts';
import { type CoordinatorEvent } from '../../coordinator/core/core-events.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { CoordinatorMetrics } from '../../observability/metrics.ts';

type Family = { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; count?: string; sum?: string; buckets?: Record<string, string> }[] };

function step(nodeId: string, stage: number, s: number, epoch = 0): CoordinatorEvent {
  const report: StepReportEvent = {
    nodeId,
    stage,
    step: s,
    loss: 3 - s / 10,
    gradNorm: 1,
    computeMs: 10,
    waitMs: 1,
    stepMs: 11,
    tokens: 64,
    snapshotStep: s + 1,
    snapshotStallMs: 2,
    snapshotCopyMs: 30,
    snapshotBytes: 4096,
    epoch,
  };
  return { type: 'step', report };
}

describe('coordinator metrics', () => {
  it('count snapshots, steps, failures and recoveries in base units, and mirror the core', async () => {
    const core = new CoordinatorCore(compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, ec: 'off' }));
    const metrics = new CoordinatorMetrics(() => core.status());
    const feed = (e: CoordinatorEvent, now: number) => core.handle(e, now).actions.forEach((a) => metrics.onAction(a));
    for (const id of ['n0', 'n1']) {
      feed({ type: 'register', nodeId: id, address: `${id}:1`, pid: 1, hostname: 'h' }, 0);
      feed({ type: 'commands-opened', nodeId: id }, 0);
    }
    feed({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    feed({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
    for (let s = 0; s < 3; s++) {
      feed(step('n0', 0, s), 100 * s + 10);
      feed(step('n1', 1, s), 100 * s + 20);
    }
    // The worker of stage 1 dies; its snapshot manager answers, so it comes back from its local snapshot.
    feed({ type: 'commands-closed', nodeId: 'n1' }, 400);
    feed({ type: 'smp-probed', nodeId: 'n1', alive: true, detail: 'answered' }, 410);

    const text = await metrics.text();
    const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
    const value = (name: string, labels: Record<string, string> = {}) =>
      families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value;
    expect(value('ftrain_step')).toBe('3');
    expect(value('ftrain_step_completions_total')).toBe('3');
    expect(Number(value('ftrain_loss'))).toBeCloseTo(2.8, 10);
    expect(value('ftrain_global_commit_step')).toBe('3');
    expect(value('ftrain_snapshots_total', { stage: '0' })).toBe('3');
    expect(value('ftrain_snapshots_total', { stage: '1' })).toBe('3');
    expect(value('ftrain_snapshot_bytes', { stage: '1' })).toBe('4096');
    // The parser folds labelled histograms together: their samples are read from the text.
    expect(families.get('ftrain_snapshot_duration_seconds')!.type).toBe('HISTOGRAM');
    const sample = (line: string) => text.match(new RegExp(`^${line.replace(/[{}+.]/g, '\\$&')} (\\S+)$`, 'm'))?.[1];
    expect(sample('ftrain_snapshot_duration_seconds_count{stage="0"}')).toBe('3');
    expect(Number(sample('ftrain_snapshot_duration_seconds_sum{stage="0"}'))).toBeCloseTo(0.09, 10); // 3 x 30 ms, in seconds
    expect(sample('ftrain_snapshot_duration_seconds_bucket{le="0.025",stage="0"}')).toBe('0');
    expect(sample('ftrain_snapshot_duration_seconds_bucket{le="0.05",stage="0"}')).toBe('3');
    expect(sample('ftrain_snapshot_stall_seconds_bucket{le="0.0025",stage="1"}')).toBe('3');
    expect(value('ftrain_run_phase', { phase: 'recovering' })).toBe('1');
    expect(value('ftrain_recovery_in_progress')).toBe('1');
    expect(value('ftrain_nodes', { state: 'lost' })).toBe('1');
    expect(value('ftrain_snapshot_interval_steps')).toBe('1');
    // Failures are counted when recovered: none yet.
    expect(families.get('ftrain_failures_total')!.metrics).toEqual([]);
    expect(families.get('nodejs_heap_size_used_bytes')?.type).toBe('GAUGE');
  });

  it("export each node's memory by part, its total and the peaks of the run; a lost node keeps only its peaks", async () => {
    const core = new CoordinatorCore(compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, ec: 'off' }));
    const metrics = new CoordinatorMetrics(() => core.status());
    for (const id of ['n0', 'n1']) {
      core.handle({ type: 'register', nodeId: id, address: `${id}:1`, pid: 1, hostname: 'h', smpAddress: `${id}:2` }, 0);
      core.handle({ type: 'commands-opened', nodeId: id }, 0);
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
    core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
    const smp = (nodeId: string, rss: number, slots: number, shards: number) =>
      core.handle({ type: 'memory', nodeId, smpAddress: `${nodeId}:2`, process: { rssBytes: rss, peakRssBytes: rss }, slotBytes: slots, peakSlotBytes: slots, shardBytes: shards, peakShardBytes: shards }, 10);
    core.handle({ type: 'heartbeat', nodeId: 'n0', memory: { rssBytes: 5000, peakRssBytes: 7000 } }, 10);
    smp('n0', 2000, 300, 40);
    smp('n0', 1000, 100, 20);
    core.handle({ type: 'heartbeat', nodeId: 'n1', memory: { rssBytes: 4000, peakRssBytes: 4000 } }, 10);

    let text = await metrics.text();
    const sample = (line: string) => text.match(new RegExp(`^${line.replace(/[{}+.]/g, '\\$&')} (\\S+)$`, 'm'))?.[1];
    expect(sample('ftrain_node_memory_bytes{node="n0",part="worker_rss"}')).toBe('5000');
    expect(sample('ftrain_node_memory_bytes{node="n0",part="smp_rss"}')).toBe('1000');
    expect(sample('ftrain_node_memory_bytes{node="n0",part="slots"}')).toBe('100');
    expect(sample('ftrain_node_memory_bytes{node="n0",part="shards"}')).toBe('20');
    expect(sample('ftrain_node_memory_peak_bytes{node="n0",part="worker_rss"}')).toBe('7000');
    expect(sample('ftrain_node_memory_peak_bytes{node="n0",part="smp_rss"}')).toBe('2000');
    expect(sample('ftrain_node_memory_peak_bytes{node="n0",part="slots"}')).toBe('300');
    expect(sample('ftrain_node_memory_peak_bytes{node="n0",part="shards"}')).toBe('40');
    // Total: worker + snapshot manager + slots, shards not again; the peak is the largest sampled total.
    expect(sample('ftrain_node_memory_total_bytes{node="n0"}')).toBe('6100');
    expect(sample('ftrain_node_memory_peak_total_bytes{node="n0"}')).toBe('7300');
    // n1's snapshot manager has not reported: its parts are absent, not 0.
    expect(sample('ftrain_node_memory_bytes{node="n1",part="worker_rss"}')).toBe('4000');
    expect(sample('ftrain_node_memory_bytes{node="n1",part="smp_rss"}')).toBeUndefined();
    expect(sample('ftrain_node_memory_total_bytes{node="n1"}')).toBe('4000');
    const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
    expect(families.get('ftrain_node_memory_bytes')?.type).toBe('GAUGE');

    core.handle({ type: 'commands-closed', nodeId: 'n1' }, 20);
    text = await metrics.text();
    expect(sample('ftrain_node_memory_bytes{node="n1",part="worker_rss"}')).toBeUndefined();
    expect(sample('ftrain_node_memory_total_bytes{node="n1"}')).toBeUndefined();
    expect(sample('ftrain_node_memory_peak_bytes{node="n1",part="worker_rss"}')).toBe('4000');
    expect(sample('ftrain_node_memory_peak_total_bytes{node="n1"}')).toBe('4000');
  });

  it('export the snapshot interval in force: auto as the coordinator chose it, 0 with snapshots off', async () => {
    const interval = async (snapshotEvery: string, stallMs: number) => {
      const core = new CoordinatorCore(compileJobOptions({ nodes: 2, steps: 10, leaseMs: 1000, heartbeatMs: 100, snapshotEvery, ec: 'off' }));
      const metrics = new CoordinatorMetrics(() => core.status());
      for (const id of ['n0', 'n1']) {
        core.handle({ type: 'register', nodeId: id, address: `${id}:1`, pid: 1, hostname: 'h' }, 0);
        core.handle({ type: 'commands-opened', nodeId: id }, 0);
      }
      core.handle({ type: 'ready', nodeId: 'n0', stage: 0 }, 0);
      core.handle({ type: 'ready', nodeId: 'n1', stage: 1 }, 0);
      for (let s = 0; s < 4; s++) {
        for (const [id, stage] of [['n0', 0], ['n1', 1]] as const) {
          const e = step(id, stage, s);
          core.handle(e.type === 'step' ? { ...e, report: { ...e.report, stepMs: 100, snapshotStallMs: stallMs } } : e, 10 * s);
        }
      }
      const families = parsePrometheusTextFormat(await metrics.text()) as Family[];
      return families.find((f) => f.name === 'ftrain_snapshot_interval_steps')!.metrics[0]!.value;
    };
    // 10 ms a snapshot against 100 ms steps: every ceil(10 / 2) = 5 steps.
    expect(await interval('auto', 10)).toBe('5');
    expect(await interval('auto', 1)).toBe('1');
    expect(await interval('3', 10)).toBe('3');
    expect(await interval('0', 10)).toBe('0');
  });
});
