// `ftrain chaos` for real: a local job (4 stages + 1 spare, the default model) hit by a
// preemption, a freeze, a node kill and a worker kill (seed 1204's schedule, see
// chaos-schedule.test.ts), with real signals on real processes. Every event must be recovered
// within the default bounds, the table and the JSON must say so, and nothing chaos started may be
// left: no process, no /dev/shm dir. The default model, not SMALL_MODEL: its steps (~0.1 s) are
// shorter than the erasure coding of a snapshot takes, so a node kill there can lose 2 steps.

import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runCli, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-chaos-test-'));
const SHM = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();

/** Pids of processes whose command line contains `text` (Linux). */
function processesMentioning(text: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${name}/cmdline`, 'latin1').includes(text)) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

interface ChaosJsonEvent {
  kind: string;
  nodeId: string;
  outcome: string;
  figures: { detectionMs: number; recoveryMs: number; handoverMs: number | null; lostSteps: number; method: string } | null;
  replacement: string | null;
}

describe('ftrain chaos', () => {
  it('recovers a preemption, a freeze, a node kill and a worker kill, and leaves nothing behind', async () => {
    const json = join(dir, 'chaos.json');
    const workDir = join(dir, 'work');
    const cli = startCli(
      ['chaos', '--duration', '60', '--seed', '1204', '--rates', 'worker-kill=1,node-kill=1,freeze=1,preempt=1', '--backend', 'wasm', '--work-dir', workDir, '--json', json],
      { timeoutMs: 170_000 },
    );
    const chaosPid = cli.child.pid!;
    const res = await cli.result;
    expect(res.code, `${res.stdout}\n${res.stderr}`).toBe(0);

    // The table: a row per kind hit, every event recovered, then the verdict.
    expect(res.stdout).toMatch(/^kind\s+events\s+recovered\s+detection p50\/p99\/max s\s+recovery p50\/p99\/max s\s+steps lost total\/max$/m);
    for (const kind of ['worker-kill', 'node-kill', 'freeze', 'preempt']) expect(res.stdout).toMatch(new RegExp(`^${kind}\\s+1\\s+1\\s`, 'm'));
    expect(res.stdout).toMatch(/^all\s+4\s+4\s/m);
    expect(res.stdout).toMatch(/^steps trained: \d+ at the start, \d+ at the end \(training progressed\)$/m);
    expect(res.stdout).toMatch(/^PASS: every event recovered/m);
    // Progress as events happen.
    expect(res.stderr).toMatch(/^chaos \d\d:\d\d freeze node-\d+ \(stage \d\): detected in [\d.]+ s, recovered by \S+ in [\d.]+ s, \d steps? lost/m);
    expect(res.stderr).toMatch(/^chaos \d\d:\d\d started chaos-1 in place of node-\d+$/m);

    const r = JSON.parse(readFileSync(json, 'utf8')) as {
      ok: boolean;
      events: ChaosJsonEvent[];
      trainingProgressed: boolean;
      stepsAtStart: number;
      stepsAtEnd: number;
      coordinator: string;
      jobPid: number;
      runStatus: string;
    };
    expect(r.ok).toBe(true);
    expect(r.trainingProgressed).toBe(true);
    expect(r.stepsAtEnd).toBeGreaterThan(r.stepsAtStart);
    // Stopped by chaos as by Ctrl-C: the run ends after the step under way.
    expect(['finished', 'stopped']).toContain(r.runStatus);
    expect(r.events.map((e) => e.kind)).toEqual(['preempt', 'freeze', 'node-kill', 'worker-kill']);
    for (const e of r.events) {
      expect(e.outcome, e.kind).toBe('recovered');
      expect(e.figures!.lostSteps, e.kind).toBeLessThanOrEqual(1);
      expect(e.figures!.recoveryMs, e.kind).toBeGreaterThanOrEqual(e.figures!.detectionMs - 1);
    }
    const byKind = Object.fromEntries(r.events.map((e) => [e.kind, e]));
    // A frozen node is lost when its lease (2.5 s by default) runs out.
    expect(byKind.freeze!.figures!.detectionMs).toBeLessThan(3000);
    expect(byKind.preempt!.figures!.handoverMs).not.toBeNull();
    expect(byKind['worker-kill']!.figures!.method).toBe('local-snapshot');
    // Every node-ending event got a replacement; a worker kill did not.
    for (const kind of ['preempt', 'freeze', 'node-kill']) expect(byKind[kind]!.replacement, kind).toMatch(/^chaos-\d+$/);
    expect(byKind['worker-kill']!.replacement).toBeNull();

    // Nothing left: no process of the job or of the replacements, no snapshot directory.
    expect(processesMentioning(r.coordinator)).toEqual([]);
    expect(processesMentioning(workDir)).toEqual([]);
    expect(readdirSync(SHM).filter((n) => n.startsWith(`ftrain-chaos-${chaosPid}-`) || n.startsWith(`ftrain-run-${r.jobPid}-`))).toEqual([]);
  }, 170_000);

  it('refuses bad flags with the usage exit code and a sentence naming the flag', async () => {
    const rates = await runCli(['chaos', '--rates', 'worker-kill=2,meteor=1'], { timeoutMs: 30_000 });
    expect(rates.code).toBe(2);
    expect(rates.stderr).toMatch(/--rates: "meteor" is not a kind; kinds are worker-kill, smp-kill, node-kill, freeze, preempt/);
    const attach = await runCli(['chaos', '--coordinator', '127.0.0.1:7070', '--nodes', '6'], { timeoutMs: 30_000 });
    expect(attach.code).toBe(2);
    expect(attach.stderr).toMatch(/--nodes: sets up the local job; with --coordinator the job is already running/);
    const unknown = await runCli(['chaos', '--chaos-monkey'], { timeoutMs: 30_000 });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown option '--chaos-monkey'/);
  });
});
