// The life cycle of a node as the coordinator sees it, with guarded transitions.

export const NodeState = {
  /** Registered; its command stream may not be open yet. */
  registered: 'registered',
  /** Holds a stage assignment, not yet connected to its peers. */
  assigned: 'assigned',
  /** Connected to its pipeline peers, waiting for Start. */
  ready: 'ready',
  training: 'training',
  /** Halted by a recovery; waits for its new assignment. */
  recovering: 'recovering',
  /** Registered beyond the job's stage count; holds no stage. */
  spare: 'spare',
  /** Told to stop; gone or going. */
  stopped: 'stopped',
  /** Failed: process exit, broken command stream, expired lease or a fault it reported. */
  lost: 'lost',
} as const;
export type NodeState = (typeof NodeState)[keyof typeof NodeState];

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

/** A node that still counts as part of the cluster. */
export function isLive(state: NodeState): boolean {
  return state !== NodeState.lost && state !== NodeState.stopped;
}
