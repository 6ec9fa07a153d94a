// `ftrain bench ha`: what a coordinator that is not a single point of failure costs and buys, in
// one invocation. The same small job (cpu) runs with one coordinator (its state in its process),
// with `--ha` (a local etcd and two coordinators) and no failure, and `--kills` times with `--ha`
// and the leader SIGKILLed at a step: the step time of each store side by side, and for each kill
// the time from the kill to the new leader, to the first step completed after it, and whether the
// run ended with the weights of the run without failures.

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { median } from './stats.ts';

export interface HaBenchOptions {
  readonly stages: number;
  readonly steps: number;
  readonly killAtStep: number;
  readonly kills: number;
  readonly progress: (line: string) => void;
}

interface TimedRun {
  readonly code: number | null;
  readonly lines: { readonly atMs: number; readonly line: string }[];
}

const MODEL = ['--backend', 'cpu', '--d-model', '32', '--heads', '2', '--seq-len', '32', '--micro-batch-size', '2', '--micro-batches', '2', '--no-dashboard'];

function timedRun(args: string[], timeoutMs: number): Promise<TimedRun> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FTRAIN_BIN, ...args], { stdio: ['ignore', 'pipe', 'ignore'] });
    const lines: TimedRun['lines'] = [];
    createInterface({ input: child.stdout! }).on('line', (line) => lines.push({ atMs: Date.now(), line }));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, lines });
    });
  });
}

const digestOf = (r: TimedRun) => r.lines.map((l) => /weights sha256 ([0-9a-f]{64})/.exec(l.line)?.[1]).find(Boolean) ?? null;

/** Seconds per step over the run's steps after the first (its start-up left out), from the progress lines. */
function stepSeconds(r: TimedRun): number | null {
  const steps = r.lines.flatMap((l) => {
    const m = /^step (\d+)\/\d+/.exec(l.line);
    return m ? [{ step: Number(m[1]), atMs: l.atMs }] : [];
  });
  if (steps.length < 2) return null;
  const first = steps[0]!;
  const last = steps.at(-1)!;
  return last.step > first.step ? (last.atMs - first.atMs) / 1000 / (last.step - first.step) : null;
}

export async function runHaBench(o: HaBenchOptions) {
  const job = ['--nodes', String(o.stages), '--steps', String(o.steps), ...MODEL];
  const timeoutMs = 300_000;
  o.progress(`ha bench: one coordinator, ${o.stages} stages, ${o.steps} steps`);
  const single = await timedRun(['run', ...job], timeoutMs);
  o.progress('ha bench: --ha (local etcd, two coordinators), no failure');
  const ha = await timedRun(['run', '--ha', ...job], timeoutMs);
  const clean = digestOf(single);
  const kills = [];
  for (let i = 0; i < o.kills; i++) {
    o.progress(`ha bench: --ha, the leader SIGKILLed at step ${o.killAtStep} (${i + 1} of ${o.kills})`);
    const r = await timedRun(['run', '--ha', ...job, '--inject', `${o.killAtStep}:coordinator:kill`], timeoutMs);
    const kill = r.lines.find((l) => /injecting coordinator kill/.test(l.line));
    const lead = r.lines.find((l) => kill && l.atMs >= kill.atMs && /LEADING: coordinator \S+ took over/.test(l.line));
    const next = r.lines.find((l) => lead && l.atMs >= lead.atMs && /^step \d+\//.test(l.line));
    kills.push({
      exitCode: r.code,
      newLeaderMs: kill && lead ? lead.atMs - kill.atMs : null,
      // The first progress line after the new leader: a step completed under it.
      trainingResumedMs: kill && next ? next.atMs - kill.atMs : null,
      sameDigest: clean !== null && digestOf(r) === clean,
    });
  }
  const singleStep = stepSeconds(single);
  const haStep = stepSeconds(ha);
  const taken = kills.map((k) => k.newLeaderMs).filter((x): x is number => x !== null);
  const resumed = kills.map((k) => k.trainingResumedMs).filter((x): x is number => x !== null);
  return {
    config: { stages: o.stages, steps: o.steps, killAtStep: o.killAtStep, kills: o.kills, backend: 'cpu', leaderLeaseMs: 2000, etcdMembers: 1 },
    stepSeconds: { inProcessStore: singleStep, etcdStore: haStep, ratio: singleStep && haStep ? haStep / singleStep : null },
    sameDigestWithoutFailure: clean !== null && digestOf(ha) === clean,
    takeover: { newLeaderMsP50: taken.length > 0 ? median(taken) : null, trainingResumedMsP50: resumed.length > 0 ? median(resumed) : null, runs: kills },
  };
}
