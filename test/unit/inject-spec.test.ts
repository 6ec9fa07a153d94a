import { describe, expect, it } from 'vitest';
import { refusal } from '../support/refusal.ts';
import { INJECTION_KINDS, INJECTION_KIND_SUMMARY, InjectionKind, parseInjections } from '../../domain/inject-spec.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { injectHelp } from '../../cli/job-flags.ts';


const LIMITS = { stages: 4, replicas: 1, steps: 10, snapshotEvery: 1 };

describe('parseInjections', () => {
  it('accepts the last step of the run and any step of an endless run', () => {
    expect(parseInjections('9:1:worker-kill,9:2:node-kill', LIMITS)).toEqual([
      { step: 9, stage: 1, replica: 0, kind: 'worker-kill' },
      { step: 9, stage: 2, replica: 0, kind: 'node-kill' },
    ]);
    expect(parseInjections('500:1:worker-kill', { ...LIMITS, steps: null })).toHaveLength(1);
  });

  it.each(INJECTION_KINDS.map((kind) => [kind]))('refuses %s at a step the run never reaches, naming the step and --steps', (kind) => {
    for (const step of [10, 11, 1000]) {
      const err = refusal(() => parseInjections(`3:1:worker-kill,${step}:1:${kind}`, LIMITS));
      expect(err.field).toBe('--inject');
      expect(err.message).toBe(`--inject: "${step}:1:${kind}": the run never reaches step ${step}: --steps 10 trains steps 0 to 9; use a STEP below 10 or raise --steps`);
    }
  });

  it('refuses a snapshot kill when no snapshot is taken at that step', () => {
    expect(refusal(() => parseInjections('4:1:worker-kill-mid-snapshot', { ...LIMITS, snapshotEvery: 0 })).message).toMatch(/--snapshot-every 0 takes none/);
    expect(refusal(() => parseInjections('5:1:worker-kill-mid-snapshot', { ...LIMITS, snapshotEvery: 2 })).message).toMatch(/no snapshot is taken of the state after 5 step\(s\) with --snapshot-every 2; use a STEP that is a multiple of 2/);
    expect(refusal(() => parseInjections('0:1:worker-kill-mid-snapshot', LIMITS)).message).toMatch(/after 0 step/);
    expect(parseInjections('4:1:worker-kill-mid-snapshot', { ...LIMITS, snapshotEvery: 2 })).toHaveLength(1);
  });

  it('refuses a snapshot kill under --snapshot-every auto, whose snapshot steps are chosen while training, saying how to fix the interval', () => {
    const err = refusal(() => parseInjections('4:1:worker-kill-mid-snapshot', { ...LIMITS, snapshotEvery: 'auto' }));
    expect(err.message).toBe(
      '--inject: "4:1:worker-kill-mid-snapshot": worker-kill-mid-snapshot kills the snapshot of step 4, and with --snapshot-every auto (the default) the coordinator chooses while training which steps are snapshotted; fix the interval, e.g. --snapshot-every 1',
    );
    expect(refusal(() => compileJobOptions({ nodes: '2', inject: '4:1:worker-kill-mid-snapshot' })).field).toBe('--inject');
    expect(compileJobOptions({ nodes: '2', snapshotEvery: '1', inject: '4:1:worker-kill-mid-snapshot' }).injections).toHaveLength(1);
    // The other kinds do not depend on which steps are snapshotted.
    expect(parseInjections('4:1:worker-kill,4:2:node-kill', { ...LIMITS, snapshotEvery: 'auto' })).toHaveLength(2);
  });

  it('is what compileJobOptions applies: --steps bounds --inject', () => {
    const err = refusal(() => compileJobOptions({ nodes: '2', steps: '5', inject: '5:1:worker-kill' }));
    expect(err.field).toBe('--inject');
    expect(err.message).toContain('--steps 5');
    expect(compileJobOptions({ nodes: '2', steps: '5', inject: '4:1:worker-kill' }).injections).toHaveLength(1);
    expect(refusal(() => compileJobOptions({ nodes: '2', snapshotEvery: '3', inject: '4:1:worker-kill-mid-snapshot' })).field).toBe('--inject');
  });
});

describe('--inject help', () => {
  it('lists every injection kind the domain knows, each with what it does', () => {
    const help = injectHelp();
    expect(INJECTION_KINDS).toEqual(Object.values(InjectionKind));
    for (const kind of INJECTION_KINDS) expect(help).toContain(`${kind} (${INJECTION_KIND_SUMMARY[kind]})`);
  });
});
