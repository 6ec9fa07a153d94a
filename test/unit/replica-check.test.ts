// The replicas' consistency check: digests in, a verdict once every replica of a stage has given
// one; the odd one out of a majority is named, two that differ cannot be told apart.

import { describe, expect, it } from 'vitest';
import { ReplicaCheck } from '../../coordinator/core/replica-check.ts';

describe('ReplicaCheck', () => {
  // Two stages, three replicas: slots 0, 2, 4 are stage 0; 1, 3, 5 stage 1.
  const shape = { stages: 2, replicas: 3 };

  it('waits for every replica of the stage, then agrees and remembers the state agreed on', () => {
    const c = new ReplicaCheck(shape);
    expect(c.record(0, 9, 'aaaaaaaa')).toBeNull();
    expect(c.record(1, 9, 'bbbbbbbb')).toBeNull(); // another stage
    expect(c.record(2, 9, 'aaaaaaaa')).toBeNull();
    expect(c.agreedState(0)).toBe(-1);
    expect(c.record(4, 9, 'aaaaaaaa')).toEqual({ kind: 'agree', stage: 0, step: 9 });
    expect(c.agreedState(0)).toBe(10);
    expect(c.agreedState(1)).toBe(-1);
  });

  it('names the replica that differs from the majority', () => {
    const c = new ReplicaCheck(shape);
    c.record(1, 19, 'cccccccc');
    c.record(3, 19, 'dddddddd');
    expect(c.record(5, 19, 'cccccccc')).toEqual({ kind: 'odd', stage: 1, step: 19, odd: [3], digests: ['cccccccc', 'dddddddd', 'cccccccc'] });
  });

  it('cannot say which of two replicas is right', () => {
    const c = new ReplicaCheck({ stages: 1, replicas: 2 });
    c.record(0, 4, '00000001');
    expect(c.record(1, 4, '00000002')).toEqual({ kind: 'undecided', stage: 0, step: 4, digests: ['00000001', '00000002'] });
  });

  it('takes a step trained again after a rollback at its newer word', () => {
    const c = new ReplicaCheck({ stages: 1, replicas: 2 });
    c.record(0, 4, '00000001');
    c.record(0, 4, '00000002');
    expect(c.record(1, 4, '00000002')).toEqual({ kind: 'agree', stage: 0, step: 4 });
  });
});
