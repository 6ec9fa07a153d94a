// Lossless recovery from in-memory snapshots: real workers killed with SIGKILL in the middle of
// a step (and in the middle of writing a snapshot) are restarted beside their snapshot managers,
// every stage rolls back to the global commit step, and the run ends bit for bit where an
// uninterrupted run ends.

import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, isAlive, runCli, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-recovery-'));
const BASE = ['--nodes', '3', '--seed', '11', '--backend', 'cpu', ...SMALL_MODEL];
const STEPS = ['--steps', '8'];

/** The newest step for which every stage has a complete checkpoint (`step-N.json` is written last). */
function newestCommonCheckpoint(root: string): number {
  const perStage = readdirSync(root)
    .filter((d) => d.startsWith('stage-'))
    .map((d) => new Set(readdirSync(join(root, d)).flatMap((f) => /^step-(\d+)\.json$/.exec(f)?.[1] ?? []).map(Number)));
  const common = [...(perStage[0] ?? [])].filter((step) => perStage.every((steps) => steps.has(step)));
  return common.length === 0 ? -1 : Math.max(...common);
}

/** The JSON log lines of one node's agent (`ftrain node`), or of its workers, in a run's log file. */
function agentLog(file: string, nodeId: string, name: 'node' | 'worker' = 'node'): { msg: string; pid: number; via?: string; step?: number; stage?: number }[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { name: string; nodeId?: string; msg: string; pid: number; via?: string; step?: number; stage?: number })
    .filter((l) => l.name === name && l.nodeId === nodeId);
}

async function train(name: string, extra: string[]): Promise<RunReport> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...BASE, ...STEPS, ...extra, '--report', report, '--log-file', join(dir, `${name}.log`)]);
  expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as RunReport;
}

describe('recovery from in-memory snapshots', () => {
  let baseline: RunReport;

  beforeAll(async () => {
    baseline = await train('baseline', []);
    expect(baseline.failures).toEqual([]);
    // --snapshot-every auto is the default. On this model a snapshot usually costs well under 2% of
    // a step, so every step is snapshotted; on a loaded machine a few slow snapshots can stretch
    // the interval for a while (what auto is for), and the digests below hold either way.
    expect(baseline.snapshots.intervalMode).toBe('auto');
    expect(baseline.snapshots.count % 3, 'every stage snapshots the same steps').toBe(0);
    if (baseline.snapshots.intervalChanges.length === 0) {
      expect(baseline.snapshots).toMatchObject({ everySteps: 1, count: 3 * 7 }); // snapshots 1..7 committed and reported by 3 stages
    } else {
      console.log(`recovery: auto changed the interval on this machine: ${JSON.stringify(baseline.snapshots.intervalChanges.map((c) => c.reason))}`);
      expect(baseline.snapshots.count).toBeGreaterThanOrEqual(3 * 4);
    }
  });

  it.each([
    ['one kill in the middle stage', '3:1:worker-kill'],
    ['two kills in consecutive steps', '3:1:worker-kill,4:1:worker-kill'],
    ['kills of the first and the last stage', '2:0:worker-kill,5:2:worker-kill'],
  ])('%s (%s) ends with the weights of the uninterrupted run', async (name, inject) => {
    const r = await train(name.replace(/\W+/g, '-'), ['--inject', inject]);
    const wanted = inject.split(',').map((s) => s.split(':').map(String));
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
    expect(r.losses).toEqual(baseline.losses);
    expect(r.failures).toHaveLength(wanted.length);
    r.failures.forEach((f, i) => {
      expect(f.stage).toBe(Number(wanted[i]![1]));
      expect(f.kind).toBe('worker-kill');
      expect(f.method).toBe('local-snapshot');
      expect(f.lostSteps).toBeGreaterThanOrEqual(0);
      // A snapshot every step loses at most the step under way (auto may have stretched the interval under load).
      expect(f.lostSteps).toBeLessThanOrEqual(Math.max(1, ...r.snapshots.intervalChanges.map((c) => c.every)));
      expect(f.detectMs!).toBeLessThan(2000);
      expect(f.recoverMs).toBeLessThan(10_000);
    });
  });

  it("hands a killed worker's place to the standby its node agent warmed before the kill, and warms the next", async () => {
    const r = await train('standby', ['--inject', '5:1:worker-kill', '--log-level', 'debug']);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
    expect(r.failures).toEqual([expect.objectContaining({ stage: 1, kind: 'worker-kill', method: 'local-snapshot' })]);
    const agent = agentLog(join(dir, 'standby.log'), 'node-1');
    const kill = agent.findIndex((l) => l.msg === 'worker died; its standby takes over beside its snapshots');
    expect(kill, 'the standby took over').toBeGreaterThan(0);
    // The standby that took over is the one the agent started before the kill.
    const standbys = agent.filter((l) => l.msg === 'standby worker started').map((l) => ({ pid: l.pid, before: agent.indexOf(l) < kill }));
    const taker = agent[kill]!.pid;
    expect(standbys[0]).toEqual({ pid: taker, before: true });
    expect(agent.find((l) => l.msg === 'worker registered after the last one died')).toMatchObject({ pid: taker, via: 'standby' });
    // The coordinator took it as node-1's worker, and a new standby was warmed after it.
    const registered = readFileSync(join(dir, 'standby.log'), 'utf8').split('\n').filter((l) => l.includes('"msg":"node registered"') && l.includes('"nodeId":"node-1"'));
    expect(registered.map((l) => (JSON.parse(l) as { pid: number }).pid).at(-1)).toBe(taker);
    expect(standbys.slice(1)).toEqual([{ pid: expect.any(Number), before: false }]);
    expect(standbys[1]!.pid).not.toBe(taker);
    expect(agent.filter((l) => l.msg === 'worker started')).toHaveLength(1);
    // The standby built stage 1 and restored its newest snapshot while the other stages halted.
    const takerLog = agentLog(join(dir, 'standby.log'), 'node-1', 'worker').filter((l) => l.pid === taker);
    expect(takerLog.find((l) => l.msg === "built its predecessor's stage ahead of the assignment")).toMatchObject({ stage: 1 });
    // Stage 0 cannot finish the step its neighbour died in (it waits for its gradients), so with a
    // snapshot every step it already holds the step every stage goes back to: nothing is read.
    if (r.snapshots.intervalChanges.length === 0) {
      const first = agentLog(join(dir, 'standby.log'), 'node-0', 'worker');
      expect(first.find((l) => l.msg === 'snapshot already in memory: kept, nothing read')).toMatchObject({ step: r.failures[0]!.restoredStep });
      expect(first.filter((l) => l.msg === 'restored snapshot')).toEqual([]);
    }
  });

  it('restarts a killed worker cold with --no-standby, to the same weights', async () => {
    const r = await train('no-standby', ['--inject', '3:1:worker-kill', '--no-standby', '--log-level', 'debug']);
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
    const agent = agentLog(join(dir, 'no-standby.log'), 'node-1');
    expect(agent.filter((l) => l.msg === 'standby worker started')).toEqual([]);
    expect(agent.find((l) => l.msg === 'worker registered after the last one died')).toMatchObject({ via: 'restart' });
    expect(agent.filter((l) => l.msg === 'worker started')).toHaveLength(2);
  });

  it('never restores a snapshot torn by a kill in the middle of writing it', async () => {
    // Stage 1 dies after writing its snapshot of step 4, before committing it. The kill needs a
    // fixed interval (under auto the snapshot steps are chosen while training); with every step,
    // the digest is the baseline's (auto) all the same.
    const r = await train('mid-snapshot', ['--snapshot-every', '1', '--inject', '4:1:worker-kill-mid-snapshot']);
    expect(r.failures).toHaveLength(1);
    expect(r.failures[0]).toMatchObject({ stage: 1, kind: 'worker-kill-mid-snapshot', restoredStep: 3, lostSteps: 1 });
    expect(r.snapshots).toMatchObject({ intervalMode: 'fixed', everySteps: 1 });
    expect(r.weightsDigest).toBe(baseline.weightsDigest);
  });

  it('resumes from the disk checkpoint tier after every process was killed', async () => {
    const ckpt = join(dir, 'checkpoints');
    const first = startCli(['run', ...BASE, '--steps', '1000', '--checkpoint-every', '2', '--checkpoint-dir', ckpt, '--log-file', join(dir, 'disk-1.log')]);
    const pids: number[] = [];
    for (let stage = 0; stage < 3; stage++) pids.push(Number((await first.waitForLine(new RegExp(`^  stage ${stage} -> node-${stage} \\(pid (\\d+),`))).match[1]));
    // Progress prints about once a second, so wait for any step from 5 on.
    await first.waitForLine(/^step ([5-9]|\d{2,})[ /]/);
    first.child.kill('SIGKILL'); // the launcher; its nodes follow it
    await first.result;
    const until = Date.now() + 10_000;
    while (pids.some(isAlive) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(pids.filter(isAlive)).toEqual([]);

    // The kill lands a few steps after the progress line that triggered it, so the newest step
    // every stage has on disk varies from run to run; train at least two steps past it, and compare
    // with an uninterrupted run of as many steps (losses do not depend on --steps).
    const onDisk = newestCommonCheckpoint(ckpt);
    expect(onDisk).toBeGreaterThanOrEqual(4);
    const steps = Math.max(8, onDisk + 2);
    const reference = steps === 8 ? baseline : await train('baseline-long', ['--steps', String(steps)]);
    const report = join(dir, 'disk-2.json');
    const second = await runCli(['run', ...BASE, '--steps', String(steps), '--checkpoint-dir', ckpt, '--report', report, '--log-file', join(dir, 'disk-2.log')]);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    const resumed = Number(second.stdout.match(/^resuming from the disk checkpoint of step (\d+)$/m)?.[1]);
    expect(resumed).toBe(onDisk);
    expect(resumed % 2).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8')) as RunReport;
    expect(r.resumedFromStep).toBe(resumed);
    expect(r.steps).toBe(steps);
    expect(r.losses).toEqual(reference.losses.slice(resumed));
    expect(r.weightsDigest).toBe(reference.weightsDigest);
  });
});
