// The phases of a run, with guarded transitions: a move the table does not list is a bug in the
// core, refused loudly rather than carried out.
//
//   waiting-for-nodes -> starting -> training <-> recovering -> starting -> training ...
//   training -> complete -> finished;  any phase that has not ended -> failed | stopped

import { RunPhase } from '../../domain/run-status.ts';

export { RunPhase } from '../../domain/run-status.ts';

const ALLOWED: Record<RunPhase, readonly RunPhase[]> = {
  'waiting-for-nodes': ['starting', 'failed', 'stopped'],
  // A recovery that restores (or a second failure while it does) goes back to recovering.
  starting: ['training', 'recovering', 'failed', 'stopped'],
  training: ['recovering', 'complete', 'failed', 'stopped'],
  // Another failure while recovering keeps the phase; the restore moves on to starting.
  recovering: ['recovering', 'starting', 'failed', 'stopped'],
  // A node may die while the final weights are read.
  complete: ['finished', 'failed', 'stopped'],
  finished: [],
  failed: [],
  stopped: [],
};

/** Thrown when the core asks for a phase change the table does not allow. */
export class IllegalPhaseTransitionError extends Error {
  override readonly name = 'IllegalPhaseTransitionError';
  constructor(
    readonly from: RunPhase,
    readonly to: RunPhase,
  ) {
    super(`run phase: illegal transition ${from} -> ${to}`);
  }
}

/** Returns `to` if the run may move there from `from`; throws otherwise. */
export function transitionPhase(from: RunPhase, to: RunPhase): RunPhase {
  if (!ALLOWED[from].includes(to)) throw new IllegalPhaseTransitionError(from, to);
  return to;
}

/** The run is over: nothing moves it any more. */
export function hasEnded(phase: RunPhase): boolean {
  return phase === RunPhase.finished || phase === RunPhase.failed || phase === RunPhase.stopped;
}
