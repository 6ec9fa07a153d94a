import { describe, expect, it } from 'vitest';
import { IllegalTransitionError, NodeState, transition } from '../../coordinator/core/node-lifecycle.ts';

describe('node life cycle', () => {
  it('allows the training path', () => {
    let s: NodeState = NodeState.registered;
    for (const next of [NodeState.assigned, NodeState.ready, NodeState.training, NodeState.stopped] as const) s = transition('n', s, next);
    expect(s).toBe(NodeState.stopped);
  });

  it('refuses illegal moves with both states named', () => {
    expect(() => transition('n1', NodeState.lost, NodeState.training)).toThrow(IllegalTransitionError);
    expect(() => transition('n1', NodeState.registered, NodeState.training)).toThrow('node n1: illegal transition registered -> training');
  });
});
