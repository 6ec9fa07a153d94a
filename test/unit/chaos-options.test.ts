// The flags of `ftrain chaos`, compiled once: defaults, the job flags passed to `ftrain run`,
// and errors that name the flag.

import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addChaosFlags, compileChaosOptions, type ChaosFlagValues } from '../../chaos/chaos-options.ts';
import { ChaosKind } from '../../chaos/chaos-schedule.ts';

/** Parses argv as the CLI does; returns the options or throws the OptionError. */
function compile(argv: string[]) {
  const cmd = addChaosFlags(new Command('chaos')).exitOverride();
  cmd.parse(argv, { from: 'user' });
  const flags = cmd.opts<ChaosFlagValues>();
  const explicit = new Set(Object.keys(flags).filter((k) => cmd.getOptionValueSource(k) === 'cli'));
  return compileChaosOptions(flags, explicit, new Date('2030-01-02T03:04:05.678Z'));
}

describe('compileChaosOptions', () => {
  it('has the documented defaults', () => {
    const o = compile([]);
    expect(o).toMatchObject({ durationMs: 180_000, seed: 0, freezeMs: 8000, replaceAfterMs: 2000, recoveryWaitMs: 60_000, gapMs: 3000, maxLostSteps: 1, jsonPath: null });
    expect(o.workDir).toMatch(/\.ftrain\/chaos\/chaos-2030-01-02T03-04-05-678Z$/);
    expect(Object.fromEntries(o.rates)).toEqual({ 'worker-kill': 1, 'smp-kill': 0.5, 'node-kill': 1, freeze: 0.5, preempt: 1, 'coordinator-kill': 0, 'coordinator-freeze': 0, 'etcd-kill': 0 });
    expect(o.target).toMatchObject({ mode: 'local', stages: 4, spares: 1, leaseMs: 2500, ha: false });
  });

  it('with --ha runs the job with two coordinators and 3 etcd members, and adds their kinds to the default rates', () => {
    const o = compile(['--ha']);
    expect(o.target).toMatchObject({ mode: 'local', ha: true });
    const args = o.target.mode === 'local' ? o.target.runArgs : [];
    expect(args.slice(args.indexOf('--ha'))).toEqual(['--ha', '--etcd-members', '3']);
    expect(o.rates.get(ChaosKind.coordinatorKill)).toBe(1);
    expect(o.rates.get(ChaosKind.etcdKill)).toBe(0.5);
    // Rates given are taken as they are.
    expect(Object.fromEntries([...compile(['--ha', '--rates', 'coordinator-freeze=2']).rates].filter(([, r]) => r > 0))).toEqual({ 'coordinator-freeze': 2 });
    expect(() => compile(['--rates', 'coordinator-kill=1'])).toThrow(/--rates: coordinator-kill hits a coordinator or etcd: it needs --ha/);
    expect(() => compile(['--ha', '--coordinator', 'coord:7070'])).toThrow(/--ha: starts a local job with two coordinators; with --coordinator the job is already running/);
  });

  it('passes the job flags and the seed to ftrain run', () => {
    const o = compile(['--nodes', '3', '--backend', 'cpu', '--d-model', '32', '--heads', '2', '--seed', '9', '--duration', '1.5']);
    expect(o.durationMs).toBe(1500);
    expect(o.target.mode).toBe('local');
    const args = o.target.mode === 'local' ? o.target.runArgs : [];
    const flag = (name: string) => args[args.indexOf(name) + 1];
    expect([flag('--nodes'), flag('--backend'), flag('--d-model'), flag('--heads'), flag('--seed'), flag('--spares')]).toEqual(['3', 'cpu', '32', '2', '9', '1']);
    expect(args).not.toContain('--steps');
  });

  it('attaches to a running job, and then refuses job flags', () => {
    expect(compile(['--coordinator', 'coord:7070']).target).toEqual({ mode: 'attach', coordinator: 'coord:7070' });
    expect(() => compile(['--coordinator', 'coord:7070', '--spares', '2'])).toThrow(/--spares: sets up the local job; with --coordinator the job is already running: drop it/);
    expect(() => compile(['--coordinator', 'coord'])).toThrow(/--coordinator: must be HOST:PORT, got "coord"/);
  });

  it('names the flag in every error', () => {
    expect(() => compile(['--duration', '0'])).toThrow(/--duration: must be a number of seconds from 1/);
    expect(() => compile(['--max-lost-steps', '-1'])).toThrow(/--max-lost-steps: must be an integer from 0/);
    expect(() => compile(['--freeze-seconds', '2'])).toThrow(/--freeze-seconds: must be longer than the lease \(--lease-ms 2500\)/);
    expect(() => compile(['--nodes', '0'])).toThrow(/--nodes: must be an integer/);
    expect(() => compile(['--rates', 'freeze=1,oops=2'])).toThrow(/--rates: "oops" is not a kind/);
    // A freeze shorter than the lease is fine when there are no freezes.
    expect(compile(['--freeze-seconds', '2', '--rates', 'worker-kill=1']).freezeMs).toBe(2000);
  });
});
