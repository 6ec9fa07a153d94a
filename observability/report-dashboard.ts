// The dashboard page of a finished run, from its report (`ftrain report --html`): the same data
// shape the live page gets (dashboard-data.ts).

import { DASHBOARD_SCHEMA, MAX_DASHBOARD_POINTS, dashboardFailure, dashboardLossPoint, dashboardNode, type DashboardData } from './dashboard-data.ts';
import type { StoredRunReport } from './run-report.ts';

/** The page of a finished run, from its report (reports written before snapshot commits were logged draw no snapshot charts). */
export function reportDashboardData(report: StoredRunReport): DashboardData {
  const origin = report.trainingStartedAtMs ?? 0;
  const holders = Object.entries(report.erasure.placement).map(([stage, h]) => ({ stage: Number(stage), holders: h }));
  const last = report.timeline.at(-1);
  return {
    schema: DASHBOARD_SCHEMA,
    live: false,
    job: {
      stages: report.stages,
      // Reports written before replicas existed have one.
      replicas: report.replicas ?? 1,
      steps: report.steps,
      // Reports written before auto existed have no intervalMode: their interval was fixed.
      snapshotEvery: report.snapshots.intervalMode === 'auto' ? 'auto' : report.snapshots.everySteps,
      recovery: report.recovery ?? 'auto',
      backend: report.backend,
      seed: report.seed,
      spares: report.spares ?? 0,
    },
    status: {
      phase: report.status,
      epoch: report.failures.length,
      completedSteps: report.steps,
      globalCommitStep: report.globalCommitStep,
      protectedCommitStep: report.erasure.protectedCommitStep,
      recovering: null,
      fatal: report.failure ? { stage: report.failure.stage, nodeId: report.failure.nodeId, detail: report.failure.detail } : null,
      seconds: last?.seconds ?? 0,
      erasure: { code: report.erasure.code, degraded: report.erasure.degraded, disabledReason: report.erasure.disabledReason },
      snapshotInterval: { mode: report.snapshots.intervalMode ?? 'fixed', every: report.snapshots.everySteps },
    },
    nodes: (report.nodes ?? []).map((n) => dashboardNode(n, report.erasure.shardsPerNode[n.nodeId] ?? 0, report.erasure.heldBytesPerNode[n.nodeId])),
    placement: holders,
    failures: report.failures.map((f) => dashboardFailure(f, origin)),
    memory: (report.memory ?? []).map((m) => ({ ...m })),
    loss: report.timeline
      .filter((p): p is { seconds: number; step: number; loss: number } => p.loss !== null)
      .slice(-MAX_DASHBOARD_POINTS)
      .map((p) => dashboardLossPoint(p.step, p.seconds, p.loss)),
    snapshots: (report.snapshotLog ?? []).slice(-MAX_DASHBOARD_POINTS),
  };
}
