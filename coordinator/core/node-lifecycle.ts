// The life cycle of a node as the coordinator sees it, with guarded transitions (the states are
// in domain/run-status.ts: tools read them too).

import { NodeState } from '../../domain/run-status.ts';

export { NodeState, isLive } from '../../domain/run-status.ts';

const ALLOWED: Record<NodeState, readonly NodeState[]> = {
  registered: ['assigned', 'spare', 'recovering', 'stopped', 'lost'],
  spare: ['assigned', 'recovering', 'stopped', 'lost'],
  assigned: ['ready', 'recovering', 'stopped', 'lost'],
  ready: ['training', 'recovering', 'stopped', 'lost'],
  training: ['recovering', 'stopped', 'lost'],
  recovering: ['assigned', 'stopped', 'lost'],
  stopped: ['lost'],
  lost: [],
};

/** Thrown when code asks for a node state change the life cycle does not allow. */
export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  constructor(
    readonly nodeId: string,
    readonly from: NodeState,
    readonly to: NodeState,
  ) {
    super(`node ${nodeId}: illegal transition ${from} -> ${to}`);
  }
}

export function canTransition(from: NodeState, to: NodeState): boolean {
  return ALLOWED[from].includes(to);
}

/** Returns `to` if the move is legal; throws otherwise. */
export function transition(nodeId: string, from: NodeState, to: NodeState): NodeState {
  if (!canTransition(from, to)) throw new IllegalTransitionError(nodeId, from, to);
  return to;
}
