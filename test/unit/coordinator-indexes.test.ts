// The coordinator core's kept answers, each against the scan it replaces (quick-checked over
// random histories, as etcd-io/raft checks its quorum maths against a naive version): the slots'
// step extent (steps completed, step under way), the search for a slot whose node is not ready,
// the node order that `available` reads, the median of every stage's step times, and the commit
// tracker's answers through reports, parking, catch-ups and rollbacks.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CommitTracker } from '../../coordinator/core/commit-tracker.ts';
import { EveryCursor } from '../../coordinator/core/every-cursor.ts';
import { Membership, byNodeId } from '../../coordinator/core/membership.ts';
import { median } from '../../coordinator/core/snapshot-interval.ts';
import { SortedSamples } from '../../coordinator/core/sorted-samples.ts';
import { StepExtent } from '../../coordinator/core/step-extent.ts';
import { NodeState } from '../../domain/run-status.ts';

describe('StepExtent', () => {
  it('keeps the minimum and maximum of values that move one at a time, or says it cannot', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -1, max: 6 }), { minLength: 1, maxLength: 12 }), fc.array(fc.tuple(fc.nat(), fc.integer({ min: -1, max: 8 })), { maxLength: 60 }), (start, moves) => {
        const values = [...start];
        let e = StepExtent.of(values);
        for (const [i, to] of moves) {
          const k = i % values.length;
          const ok = e.move(values[k]!, to);
          values[k] = to;
          if (!ok) e = StepExtent.of(values);
          expect([e.min, e.max]).toEqual([Math.min(...values), Math.max(...values)]);
        }
      }),
    );
  });

  it('of nothing is as Math.min and Math.max of nothing', () => {
    const e = StepExtent.of([]);
    expect([e.min, e.max]).toEqual([Infinity, -Infinity]);
  });

  it('says it cannot tell once the last value at the minimum moves up', () => {
    const e = StepExtent.of([3, 4, 4]);
    expect(e.move(4, 5)).toBe(true);
    expect([e.min, e.max]).toEqual([3, 5]);
    expect(e.move(3, 4)).toBe(false);
  });
});

describe('EveryCursor', () => {
  it('answers as Array.every whatever the predicate did between questions', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 9 }), fc.nat(), fc.boolean()), { maxLength: 80 }), fc.integer({ min: 1, max: 10 }), (flips, n) => {
        const holds = Array.from({ length: n }, () => false);
        const cursor = new EveryCursor();
        for (const [, i, value] of flips) {
          holds[i % n] = value;
          expect(cursor.every(n, (k) => holds[k]!)).toBe(holds.every((h) => h));
        }
      }),
    );
  });

  it('reads each index about once while indices only come to hold', () => {
    const n = 1000;
    const holds = Array.from({ length: n }, () => false);
    const cursor = new EveryCursor();
    let reads = 0;
    // Ready in a shuffled order, as nodes answer.
    const order = Array.from({ length: n }, (_, i) => (i * 7919) % n);
    for (const i of order) {
      holds[i] = true;
      cursor.every(n, (k) => (reads++, holds[k]!));
    }
    expect(cursor.every(n, (k) => holds[k]!)).toBe(true);
    expect(reads).toBeLessThan(4 * n);
  });

  it('is false for an index that fails and true for no index at all', () => {
    expect(new EveryCursor().every(3, (i) => i !== 2)).toBe(false);
    expect(new EveryCursor().every(0, () => false)).toBe(true);
  });
});

describe('Membership.available', () => {
  const register = (m: Membership, nodeId: string) => m.register({ nodeId, address: `${nodeId}:1`, pid: 1, hostname: 'h' }, 0);

  it('lists open nodes of the states asked in node order, as a sort of all nodes does', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.constantFrom('n', 'n0', 'n00', 'node-', 'N'), fc.integer({ min: 0, max: 12 }), fc.boolean(), fc.boolean()), { maxLength: 60 }), (joins) => {
        const m = new Membership(2500);
        for (const [prefix, k, open, spare] of joins) {
          const node = register(m, `${prefix}${k}`);
          node.commandsOpen = open;
          if (spare) m.move(node, NodeState.spare);
        }
        const naive = [...m.all()].filter((n) => n.commandsOpen && (n.state === NodeState.registered || n.state === NodeState.spare)).sort(byNodeId);
        expect(m.available(NodeState.registered, NodeState.spare).map((n) => n.nodeId)).toEqual(naive.map((n) => n.nodeId));
        expect(m.countAvailable(NodeState.registered)).toBe([...m.all()].filter((n) => n.commandsOpen && n.state === NodeState.registered).length);
      }),
    );
  });

  it('keeps ids that compare equal (n1, n01) in the order they joined, as a stable sort does', () => {
    const m = new Membership(2500);
    for (const id of ['n01', 'n2', 'n1']) register(m, id).commandsOpen = true;
    expect(m.available(NodeState.registered).map((n) => n.nodeId)).toEqual(['n01', 'n1', 'n2']);
  });

  it('puts n2 before n10, and keeps the order through a restore', () => {
    const m = new Membership(2500);
    for (const id of ['n10', 'n2', 'n1', 'n20']) register(m, id).commandsOpen = true;
    expect(m.available(NodeState.registered).map((n) => n.nodeId)).toEqual(['n1', 'n2', 'n10', 'n20']);
    const again = new Membership(2500);
    again.restore(m.durable(), 0);
    for (const n of again.all()) n.commandsOpen = true;
    expect(again.available(NodeState.registered).map((n) => n.nodeId)).toEqual(['n1', 'n2', 'n10', 'n20']);
  });
});

describe('CommitTracker steps', () => {
  const report = (stage: number, step: number) => ({ nodeId: `n${stage}`, stage, step, loss: 1, gradNorm: 1, computeMs: 1, waitMs: 0, stepMs: 1, tokens: 1, last: false });

  it('completed steps and the step under way follow reports, parking, catch-ups and rollbacks as scans do', () => {
    const action = fc.oneof(
      fc.tuple(fc.constant('step' as const), fc.nat()),
      fc.tuple(fc.constant('park' as const), fc.nat()),
      fc.tuple(fc.constant('catch-up' as const), fc.nat()),
      fc.tuple(fc.constant('roll-back' as const), fc.nat()),
    );
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 8 }), fc.array(action, { maxLength: 80 }), (slots, actions) => {
        const c = new CommitTracker(slots);
        let parked: number[] = [];
        let epoch = 0;
        for (const [kind, k] of actions) {
          const s = k % slots;
          if (kind === 'step' && !parked.includes(s)) c.recordStep(report(s, c.stage(s).lastStep + 1), null, 1, 1);
          if (kind === 'park') {
            parked = k % 3 === 0 ? [] : [s];
            c.park(parked);
          }
          if (kind === 'catch-up') c.setLastStep(s, c.stage(s).lastStep + 1 + (k % 3));
          if (kind === 'roll-back') c.rollBack(++epoch, Math.max(0, c.stage(s).lastStep - (k % 2)), -1);
          const active = c.stages.filter((_, i) => !parked.includes(i)).map((x) => x.lastStep);
          expect(c.completedSteps).toBe(Math.min(...active) + 1);
          expect(c.stepUnderWay).toBe(Math.max(...active) + 1);
          expect(c.activeSlots()).toEqual(c.stages.flatMap((_, i) => (parked.includes(i) ? [] : [i])));
          for (const last of [...active, -1]) expect(c.allAtLastStep(last)).toBe(active.every((x) => x === last));
        }
      }),
    );
  });
});

describe('SortedSamples', () => {
  it('gives the median of the samples in it, as sorting them does, through adds and deletes', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.integer({ min: 0, max: 20 }), fc.nat()), { maxLength: 100 }), (ops) => {
        const s = new SortedSamples();
        const naive: number[] = [];
        for (const [add, v, k] of ops) {
          const value = v / 4;
          if (add || naive.length === 0) {
            s.add(value);
            naive.push(value);
          } else {
            // A sample that is in, as a window pushes one out.
            const out = naive.splice(k % naive.length, 1)[0]!;
            expect(s.delete(out)).toBe(true);
          }
          expect(s.size).toBe(naive.length);
          expect(s.median()).toBe(median(naive));
        }
      }),
    );
  });

  it('deletes nothing that is not in it', () => {
    const s = new SortedSamples();
    s.add(3);
    expect(s.delete(4)).toBe(false);
    expect(s.median()).toBe(3);
    expect(new SortedSamples().median()).toBeNull();
  });
});
