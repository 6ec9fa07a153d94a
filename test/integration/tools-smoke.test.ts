// `ftrain bench pipeline` and `ftrain bench recovery` run for real, as a user runs them, each at
// its smallest sensible size: every figure of the JSON is there and finite, the figures agree
// with each other, and the recovery bench measures the tier each side claims to (erasure rebuild:
// no step lost; disk checkpoint: back to the newest checkpoint before the kill, same final
// weights); `ftrain bench tls` ends the plaintext and the TLS run with the same weights. The
// other bench and experiment commands have tests of their own
// (erasure-bench, snapshot-bench, churn-experiment).

import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const diskDir = mkdtempSync(join(tmpdir(), 'ftrain-tools-smoke-'));

afterAll(() => {
  rmSync(diskDir, { recursive: true, force: true });
});

function expectFinite(value: unknown, field: string): number {
  expect(typeof value, field).toBe('number');
  expect(Number.isFinite(value), `${field} = ${String(value)}`).toBe(true);
  return value as number;
}

function expectPositive(value: unknown, field: string): number {
  const x = expectFinite(value, field);
  expect(x, field).toBeGreaterThan(0);
  return x;
}

/** `actual` within `rel` of `expected` (the benches round to 4 significant digits). */
function expectNear(actual: number, expected: number, field: string, rel = 0.005, abs = 0.002): void {
  expect(Math.abs(actual - expected), `${field}: ${actual} vs ${expected}`).toBeLessThanOrEqual(Math.max(abs, rel * Math.abs(expected)));
}

interface PipelineCase {
  backend: unknown;
  stages: unknown;
  runs: unknown;
  tokensPerSecond: unknown;
  stepMs: unknown;
  computeMsPerStage: unknown[];
  waitMsPerStage: unknown[];
  bubbleMeasured: unknown;
  bubbleTheoretical: unknown;
  speedupVsOneStage: unknown;
}

describe('ftrain bench pipeline', () => {
  it('measures 1 and 2 stages on cpu: throughput, per-stage compute and wait, bubble, speed-up', async () => {
    const res = await runCli(['bench', 'pipeline', '--json', '--backends', 'cpu', '--stages', '1,2', '--steps', '2', '--repeat', '1', '--blocks', '2'], { timeoutMs: 120_000 });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as { cases: PipelineCase[]; settings: Record<string, unknown> };
    expect(r.settings).toMatchObject({ steps: 2, repeat: 1, blocks: 2 });
    expect(r.cases.map((c) => [c.backend, c.stages, c.runs])).toEqual([
      ['cpu', 1, 1],
      ['cpu', 2, 1],
    ]);
    const microBatches = 4; // the job default
    const tokensPerStep = microBatches * 4 * 64; // micro-batches x micro-batch size x sequence length
    for (const c of r.cases) {
      const stages = c.stages as number;
      const name = `${stages} stage(s)`;
      const tps = expectPositive(c.tokensPerSecond, `${name} tokensPerSecond`);
      const stepMs = expectPositive(c.stepMs, `${name} stepMs`);
      expect(c.computeMsPerStage, `${name} computeMsPerStage`).toHaveLength(stages);
      expect(c.waitMsPerStage, `${name} waitMsPerStage`).toHaveLength(stages);
      const compute = c.computeMsPerStage.map((x, i) => expectPositive(x, `${name} computeMsPerStage[${i}]`));
      const wait = c.waitMsPerStage.map((x, i) => expectFinite(x, `${name} waitMsPerStage[${i}]`));
      // One run: tokens/s is the tokens of a step over the slowest stage's step time, which is
      // that stage's compute + wait.
      expectNear(tps, tokensPerStep / (stepMs / 1000), `${name} tokensPerSecond`);
      expectNear(stepMs, Math.max(...compute.map((x, i) => x + wait[i]!)), `${name} stepMs`);
      const bubble = expectFinite(c.bubbleMeasured, `${name} bubbleMeasured`);
      expectNear(bubble, wait.reduce((a, w, i) => a + w / (w + compute[i]!), 0) / stages, `${name} bubbleMeasured`);
      expectNear(expectFinite(c.bubbleTheoretical, `${name} bubbleTheoretical`), (stages - 1) / (microBatches + stages - 1), `${name} bubbleTheoretical`);
      if (stages === 1) {
        // The whole model in one worker: nothing to wait for.
        expect(wait).toEqual([0]);
        expect(bubble).toBe(0);
        expect(c.speedupVsOneStage).toBe(1);
      } else {
        // Every stage of a pipeline waits for its neighbour some of the time.
        for (const [i, w] of wait.entries()) expect(w, `${name} waitMsPerStage[${i}]`).toBeGreaterThan(0);
        expect(bubble).toBeGreaterThan(0);
        expect(bubble).toBeLessThan(1);
        expectNear(expectPositive(c.speedupVsOneStage, `${name} speedupVsOneStage`), tps / (r.cases[0]!.tokensPerSecond as number), `${name} speedupVsOneStage`);
      }
    }
  }, 150_000);
});

type Side = Record<'method' | 'detectSeconds' | 'restoreSeconds' | 'lostSteps' | 'stepSeconds' | 'recomputeSeconds' | 'lostSeconds' | 'lostSecondsFromParts', unknown>;

describe('ftrain bench recovery', () => {
  it('recovers the same node kill by erasure rebuild and by the disk checkpoint, and reports both', async () => {
    // 3 stages, so that the killed stage 1 is an intermediate one: a stage CheckFree could
    // rebuild, which the disk side must not use. Checkpoints after steps 2 and 4; the kill as
    // step 3 begins loses step 2 on the disk side. The bench trains killStep + 3 steps.
    const nodes = 3;
    const every = 2;
    const killStep = 3;
    const res = await runCli(
      ['bench', 'recovery', '--json', '--runs', '1', '--nodes', String(nodes), '--spares', '1', '--checkpoint-every', String(every), '--kill-step', String(killStep), '--stage', '1', '--backend', 'cpu', '--disk-dir', diskDir],
      // Two runs of the default model on cpu (about 10 s a step on 2 cores): 2 minutes alone.
      { timeoutMs: 240_000 },
    );
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown> & {
      settings: Record<string, unknown>;
      erasure: Side;
      disk: Side;
      perRun: Record<string, unknown>[];
      targets: { ratio: { min: unknown; met: unknown } };
    };
    expect(r.bench).toBe('recovery');
    expect(r.settings).toMatchObject({ nodes, spares: 1, backend: 'cpu', steps: killStep + 3, killStep, killedStage: 1, checkpointEvery: every, runs: 1 });

    expect(r.erasure.method).toBe('erasure-rebuild');
    expect(r.disk.method).toBe('disk-checkpoint');
    // The rebuilt stage resumes where it stopped; the disk side goes back to the newest checkpoint.
    expect(r.erasure.lostSteps).toBe(0);
    expect(r.disk.lostSteps).toBe(killStep - Math.floor(killStep / every) * every);
    expect(r.disk.lostSteps).toBeGreaterThan(0);
    for (const [name, s] of [['erasure', r.erasure], ['disk', r.disk]] as const) {
      expectFinite(s.detectSeconds, `${name}.detectSeconds`);
      expect(s.detectSeconds as number, `${name}.detectSeconds`).toBeGreaterThanOrEqual(0);
      const restore = expectPositive(s.restoreSeconds, `${name}.restoreSeconds`);
      const step = expectPositive(s.stepSeconds, `${name}.stepSeconds`);
      const recompute = expectFinite(s.recomputeSeconds, `${name}.recomputeSeconds`);
      expectFinite(s.lostSeconds, `${name}.lostSeconds`);
      expectNear(recompute, (s.lostSteps as number) * step, `${name}.recomputeSeconds`);
      expectNear(expectPositive(s.lostSecondsFromParts, `${name}.lostSecondsFromParts`), (s.detectSeconds as number) + restore + recompute, `${name}.lostSecondsFromParts`);
    }
    expect(r.erasure.recomputeSeconds).toBe(0);

    // One run: the headline figures are that run's.
    expect(r.erasureLostSeconds).toBe(r.erasure.lostSeconds);
    expect(r.diskLostSeconds).toBe(r.disk.lostSeconds);
    expect(r.perRun).toEqual([{ erasureLostSeconds: r.erasure.lostSeconds, diskLostSeconds: r.disk.lostSeconds }]);
    const ratio = expectFinite(r.ratio, 'ratio');
    expectNear(ratio, (r.diskLostSeconds as number) / (r.erasureLostSeconds as number), 'ratio', 0.01);
    expect(r.targets.ratio.min).toBe(10);
    expect(r.targets.ratio.met).toBe(ratio >= 10);

    // Both recoveries are lossless with respect to their restore point: same seed, same weights.
    expect(r.sameFinalWeights).toBe(true);
    // The disk side's checkpoint directory is gone.
    expect(readdirSync(diskDir)).toEqual([]);
  }, 270_000);
});

describe('ftrain bench scale', () => {
  it('at 2 MiB per stage: both kills recovered and traced by phase, floors from measured bandwidths, memory against the formula', async () => {
    const res = await runCli(['bench', 'scale', '--json', '--state-mb', '2', '--node-kill', '3:1', '--worker-kill', '5:2', '--repeats', '2'], { timeoutMs: 240_000 });
    expect(res.code, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as Record<string, unknown> & {
      nodeKill: Record<string, unknown> & { phases: Record<string, unknown>; floorParts: Record<string, number> };
      workerKill: Record<string, unknown> & { phases: Record<string, unknown>; floorParts: Record<string, number> };
      memoryPerNode: { peakTotalBytes: number; stage: number | null }[];
      formula: { stageNodeBytes: number; takeOverNodeBytes: number };
      peakRamVsFormulaPerNode: Record<string, { role: string; peakBytes: number; formulaBytes: number; peakVsFormula: number }>;
    };
    const state = expectPositive(r.stateBytesPerStage, 'stateBytesPerStage');
    expect(state).toBeGreaterThanOrEqual(2 * 2 ** 20);
    expect(state).toBeLessThan(3 * 2 ** 20);
    expectPositive(r.stallVsWarmMemcpy, 'stallVsWarmMemcpy');
    expectFinite(r.snapshotOverheadPct, 'snapshotOverheadPct');
    expectPositive(r.encodeGBps, 'encodeGBps');
    for (const [name, kill, method, parts] of [
      ['nodeKill', r.nodeKill, 'erasure-rebuild', ['detectMs', 'fetchMs', 'decodeMs', 'commitMs', 'restoreMs']],
      ['workerKill', r.workerKill, 'local-snapshot', ['detectMs', 'restoreMs']],
    ] as const) {
      expect(kill.method, name).toBe(method);
      const recover = expectPositive(kill.recoverMs, `${name}.recoverMs`);
      const floor = expectPositive(kill.floorMs, `${name}.floorMs`);
      expectNear(expectPositive(kill.recoverVsFloor, `${name}.recoverVsFloor`), recover / floor, `${name}.recoverVsFloor`);
      expect(Object.keys(kill.floorParts).sort(), name).toEqual([...parts].sort());
      expectNear(floor, Object.values(kill.floorParts).reduce((a, b) => a + b, 0), `${name}.floorMs`, 0.01, 0.01);
      // The phases add up to the time to training resumed.
      const p = kill.phases;
      expectNear(expectFinite(p.detectMs, 'detectMs') + expectFinite(p.replaceMs, 'replaceMs') + expectFinite(p.readyMs, 'readyMs'), recover, `${name} phases`, 0.01, 2);
      expectFinite(p.restoreMs, `${name}.phases.restoreMs`);
      expectPositive(p.firstStepMs, `${name}.phases.firstStepMs`);
    }
    expect(r.workerKill.lostSteps).toBe(0);
    expect(expectPositive(r.nodeKill.phases.fetchMs, 'nodeKill.phases.fetchMs')).toBeGreaterThan(0);
    expect(r.workerKill.phases.fetchMs).toBe(0);
    const peak = expectPositive(r.peakRamPerNodeBytes, 'peakRamPerNodeBytes');
    expect(peak).toBe(Math.max(...r.memoryPerNode.filter((n) => n.stage !== null).map((n) => n.peakTotalBytes)));
    expectNear(expectPositive(r.peakRamPerNodeVsState, 'peakRamPerNodeVsState'), peak / state, 'peakRamPerNodeVsState');
    expect(r.formulaRamPerNodeBytes).toBe(r.formula.stageNodeBytes);
    // Every stage node against its role's formula: exactly one took the killed stage over.
    const perNode = Object.values(r.peakRamVsFormulaPerNode);
    expect(perNode).toHaveLength(r.memoryPerNode.filter((n) => n.stage !== null).length);
    expect(perNode.filter((n) => n.role === 'takeOver')).toHaveLength(1);
    for (const n of perNode) {
      expect(n.formulaBytes).toBe(n.role === 'takeOver' ? r.formula.takeOverNodeBytes : r.formula.stageNodeBytes);
      expectNear(n.peakVsFormula, n.peakBytes / n.formulaBytes, 'peakVsFormula');
    }
  }, 300_000);
});

describe('ftrain bench tls', () => {
  it('at its smallest: the same job plaintext and TLS with the same weights, shard streams both ways against memcpy', async () => {
    const res = await runCli(['bench', 'tls', '--json', '--stages', '2', '--steps', '2', '--repeat', '1', '--shard-mb', '1', '--transfers', '1'], { timeoutMs: 90_000 });
    expect(res.code, res.stderr).toBe(0);
    type Side = { stepMs: unknown; tokensPerSecond: unknown; weightsDigest: unknown };
    const r = JSON.parse(res.stdout) as Record<string, unknown> & {
      machine: Record<string, unknown>;
      settings: Record<string, unknown>;
      pipeline: { plain: Side; tls: Side; ratioStepMs: unknown; ratioTokensPerSecond: unknown; sameDigest: unknown; runs: { mode: unknown }[] };
      shardExchange: Record<string, unknown>[];
      memory: Record<string, unknown>;
    };
    expect(r.bench).toBe('tls');
    expectPositive(r.machine.cpus, 'machine.cpus');
    expectPositive(r.machine.totalMemoryBytes, 'machine.totalMemoryBytes');
    expect(r.settings).toMatchObject({ stages: 2, steps: 2, repeat: 1, backend: 'cpu', shardMb: [1], transfers: 1 });

    // TLS must not change the maths: both runs end with the same weights.
    const p = r.pipeline;
    expect(p.sameDigest).toBe(true);
    expect(p.plain.weightsDigest).toMatch(/^[0-9a-f]{64}$/);
    expect(p.tls.weightsDigest).toBe(p.plain.weightsDigest);
    expect(p.runs.map((x) => x.mode)).toEqual(['plain', 'tls']);
    for (const [name, side] of [['plain', p.plain], ['tls', p.tls]] as const) {
      const stepMs = expectPositive(side.stepMs, `pipeline.${name}.stepMs`);
      const tokensPerStep = 2 * 2 * 32; // the small model: micro-batches x micro-batch size x sequence length
      expectNear(expectPositive(side.tokensPerSecond, `pipeline.${name}.tokensPerSecond`), tokensPerStep / (stepMs / 1000), `pipeline.${name}.tokensPerSecond`);
    }
    expectNear(expectPositive(p.ratioStepMs, 'ratioStepMs'), (p.tls.stepMs as number) / (p.plain.stepMs as number), 'ratioStepMs');
    expectNear(expectPositive(p.ratioTokensPerSecond, 'ratioTokensPerSecond'), (p.tls.tokensPerSecond as number) / (p.plain.tokensPerSecond as number), 'ratioTokensPerSecond');

    // The TLS sink refused a plaintext client: its figures are of TLS.
    expect(r.tlsSinkRefusedPlaintext).toBe(true);
    expect(r.shardExchange).toHaveLength(1);
    const s = r.shardExchange[0]!;
    expect(s.shardMb).toBe(1);
    expect(s.shardBytes).toBe(2 ** 20);
    const plain = expectPositive(s.plainGBps, 'plainGBps');
    const tls = expectPositive(s.tlsGBps, 'tlsGBps');
    const memcpy = expectPositive(s.memcpyGBps, 'memcpyGBps');
    expectNear(expectPositive(s.ratio, 'ratio'), tls / plain, 'ratio', 0.01);
    expectNear(expectPositive(s.plainVsMemcpy, 'plainVsMemcpy'), plain / memcpy, 'plainVsMemcpy', 0.01, 1e-6);
    expectNear(expectPositive(s.tlsVsMemcpy, 'tlsVsMemcpy'), tls / memcpy, 'tlsVsMemcpy', 0.01, 1e-6);

    expectPositive(r.memory.benchProcessPeakRssBytes, 'memory.benchProcessPeakRssBytes');
    expectPositive(r.memory.pipelinePeakRamPerNodeBytes, 'memory.pipelinePeakRamPerNodeBytes');
  }, 120_000);
});
