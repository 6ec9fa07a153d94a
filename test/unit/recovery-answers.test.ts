// The answers a recovery waits for (coordinator/core/recovery-answers.ts): which questions are
// overdue, and the bound on a recovery that starts over each time a node it placed is given up.

import { describe, expect, it } from 'vitest';
import { MAX_RECOVERY_RESTARTS, RecoveryAnswers } from '../../coordinator/core/recovery-answers.ts';
import { Scenario } from '../scenario/scenario-harness.ts';

describe('recovery answers', () => {
  it('lists the questions older than the bound, a newer ask replacing an older one, an answer removing it', () => {
    const a = new RecoveryAnswers();
    a.ask(3, 'n3', 'halt', 1, 1000);
    a.ask(1, 'n1', 'halt', 1, 1000);
    a.ask(2, 'n2', 'halt', 1, 1000);
    a.ask(2, 'n2', 'assign', 1, 4000);
    a.answered(1);
    expect(a.size).toBe(2);
    // Strictly older than the bound: at exactly the bound the answer is not late yet.
    expect(a.overdue(6000, 5000)).toEqual([]);
    expect(a.overdue(6001, 5000).map((u) => [u.slot, u.nodeId, u.ask])).toEqual([[3, 'n3', 'halt']]);
    expect(a.overdue(9001, 5000).map((u) => [u.slot, u.ask])).toEqual([
      [2, 'assign'],
      [3, 'halt'],
    ]);
  });

  it('fails the run once a recovery has started over more than MAX_RECOVERY_RESTARTS times, each new node never answering', () => {
    const s = new Scenario();
    const run = (line: string) => s.run(line);
    run('job nodes=2 replicas=2 spares=1 steps=20 lease=600000 heartbeat=10000 snapshot-every=1 ec=off on-replica-loss=stop recovery-timeout=5000');
    for (const n of ['n0', 'n1', 'n2', 'n3', 'n4']) run(`register ${n} addr=w${n}:1 smp=s${n}:1`);
    run('open n0 n1 n2 n3 n4');
    for (const [n, slot] of [['n0', 0], ['n1', 1], ['n2', 2], ['n3', 3]] as const) run(`ready ${n} stage=${slot}`);
    run('at 10');
    run('steps 0..2 snap');
    run('at 1000');
    run('close n1');
    expect(run('probe n1 dead')).toContain('stage-assigned 1 -> n4');
    let now = 1001;
    let epoch = 1;
    const survivors = [['n0', 0], ['n2', 2], ['n3', 3]] as const;
    const round = (): string[] => {
      const out: string[] = [];
      run(`at ${now}`);
      for (const [n, slot] of survivors) out.push(...run(`halted ${n} stage=${slot} epoch=${epoch} steps=1,2`));
      for (const [n, slot] of survivors) out.push(...run(`ready ${n} stage=${slot} epoch=${epoch}`));
      return out;
    };
    // Each round the node placed on slot 1 never answers its assignment: given up, the recovery
    // starts over in a new epoch, and a newly joined node takes slot 1.
    expect(round().some((l) => l.startsWith('send n4 assign stage=1/2'))).toBe(true);
    let failed: string[] = [];
    for (let k = 1; k <= MAX_RECOVERY_RESTARTS + 1 && failed.length === 0; k++) {
      now += 5001;
      run(`at ${now}`);
      const out = run('tick');
      expect(out.some((l) => /did not answer its assignment of epoch \d+ within 5000 ms/.test(l))).toBe(true);
      failed = out.filter((l) => l.startsWith('run-failed'));
      if (failed.length > 0) {
        expect(k).toBe(MAX_RECOVERY_RESTARTS + 1);
        break;
      }
      epoch += 1;
      run(`register j${k} addr=wj${k}:1 smp=sj${k}:1`);
      expect(run(`open j${k}`)).toContain(`stage-assigned 1 -> j${k}`);
      expect(round().some((l) => l.startsWith(`send j${k} assign stage=1/2`) && l.includes(`epoch=${epoch}`))).toBe(true);
    }
    expect(failed).toEqual([
      `run-failed n1 stage=1: its command stream to the coordinator broke (process died or network lost); recovery gave up after starting over ${MAX_RECOVERY_RESTARTS + 1} times: each time a node was lost before every stage was ready (nodes are lost faster than a recovery completes)`,
    ]);
  });
});
