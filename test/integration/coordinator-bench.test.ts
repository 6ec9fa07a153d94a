// `ftrain bench coordinator` run for real at a small size: a real coordinator process, 40 simulated
// nodes over gRPC for 10 s, one of them frozen half way. Every figure is there and finite, no node
// that kept beating was declared lost, and the frozen one was found within its lease.

import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';
import { expectPositive } from '../support/expect-positive.ts';

describe('ftrain bench coordinator', () => {
  it('measures 40 nodes on one coordinator and finds the frozen one within its lease', async () => {
    const res = await runCli(['bench', 'coordinator', '--json', '--nodes', '40', '--stages', '4', '--spares', '4', '--duration', '10'], { timeoutMs: 90_000 });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown> & { config: Record<string, number>; machine: Record<string, number> };
    expect(r.config).toMatchObject({ nodes: 40, stages: 4, replicas: 9, spares: 4, durationS: 10 });
    expectPositive(r.machine.cpus, 'machine.cpus');
    for (const f of ['heartbeatP50Ms', 'heartbeatP99Ms', 'stepReportP99Ms', 'detectSilentMs', 'coordinatorCpuPct', 'coordinatorRssBytes', 'heartbeats', 'stepReports', 'stepsCompleted', 'planRecoveryMs', 'resumeTrainingMs']) expectPositive(r[f], f);
    expect(r.heartbeatP99Ms as number).toBeGreaterThanOrEqual(r.heartbeatP50Ms as number);
    expect(r.falseLosses).toBe(0);
    expect(r.falseLossNodes).toEqual([]);
    // From its first missed heartbeat: within the lease; from its last heartbeat: the lease and at most a tick or two.
    expect(r.detectSilentMs as number).toBeLessThanOrEqual(r.config.leaseMs!);
    expect(r.detectSinceLastHeartbeatMs as number).toBeGreaterThanOrEqual(r.config.leaseMs!);
    expect(r.recoveryTier).toBe('replica-copy');
    // About 2 heartbeats a second from each of 40 nodes over 10 s.
    expect(r.heartbeats as number).toBeGreaterThan(40 * 10);
    for (const key of Object.keys(r.definitions as object)) expect(r[key], `definitions.${key} names a figure`).toBeDefined();
  }, 90_000);
});
