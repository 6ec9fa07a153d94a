// The life cycle of a worker as it sees itself, with guarded transitions.
//
//   starting -> idle -> assigning -> ready -> training -> halting -> halted -> assigning ...
//   any state -> stopped

export const WorkerState = {
  /** Not registered with the coordinator yet. */
  starting: 'starting',
  /** Registered, holds no stage (a spare, or waiting for the first assignment). */
  idle: 'idle',
  /** Applying an assignment: building the stage, restoring or rebuilding it, connecting to peers. */
  assigning: 'assigning',
  /** Assigned and connected, waiting for Start. */
  ready: 'ready',
  training: 'training',
  /** Told to halt: abandoning the step under way, then reporting the snapshots held. */
  halting: 'halting',
  /** Halted for a recovery: waiting for the next assignment. */
  halted: 'halted',
  /** Stopping or stopped: nothing more happens. */
  stopped: 'stopped',
} as const;
export type WorkerState = (typeof WorkerState)[keyof typeof WorkerState];

const ALLOWED: Record<WorkerState, readonly WorkerState[]> = {
  starting: ['idle', 'stopped'],
  idle: ['assigning', 'stopped'],
  assigning: ['ready', 'halting', 'stopped'],
  ready: ['training', 'halting', 'stopped'],
  training: ['halting', 'stopped'],
  halting: ['halted', 'stopped'],
  // A second failure during a restore halts again, in a newer epoch.
  halted: ['assigning', 'halting', 'stopped'],
  stopped: [],
};

/** Thrown when the worker's core asks for a state change its life cycle does not allow. */
export class IllegalWorkerTransitionError extends Error {
  override readonly name = 'IllegalWorkerTransitionError';
  constructor(
    readonly from: WorkerState,
    readonly to: WorkerState,
  ) {
    super(`worker: illegal transition ${from} -> ${to}`);
  }
}

export function transitionWorker(from: WorkerState, to: WorkerState): WorkerState {
  if (!ALLOWED[from].includes(to)) throw new IllegalWorkerTransitionError(from, to);
  return to;
}
