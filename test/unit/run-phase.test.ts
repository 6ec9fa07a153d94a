// The run's phases move through a transition table that refuses illegal moves.

import { describe, expect, it } from 'vitest';
import { IllegalPhaseTransitionError, hasEnded, transitionPhase } from '../../coordinator/core/run-phase.ts';
import { RunPhase } from '../../domain/run-status.ts';

describe('run phases', () => {
  it('allow the moves of a run and refuse the others', () => {
    const path: RunPhase[] = ['waiting-for-nodes', 'starting', 'training', 'recovering', 'recovering', 'starting', 'training', 'complete', 'finished'];
    for (let i = 1; i < path.length; i++) expect(transitionPhase(path[i - 1]!, path[i]!)).toBe(path[i]);
    expect(() => transitionPhase(RunPhase.waiting, RunPhase.training)).toThrow(IllegalPhaseTransitionError);
    expect(() => transitionPhase(RunPhase.finished, RunPhase.stopped)).toThrow(/run phase: illegal transition finished -> stopped/);
    expect(() => transitionPhase(RunPhase.complete, RunPhase.recovering)).toThrow(IllegalPhaseTransitionError);
  });

  it('let any phase that has not ended fail or stop, and nothing leave an ended one', () => {
    for (const from of Object.values(RunPhase)) {
      for (const to of [RunPhase.failed, RunPhase.stopped]) {
        if (hasEnded(from)) expect(() => transitionPhase(from, to)).toThrow(IllegalPhaseTransitionError);
        else expect(transitionPhase(from, to)).toBe(to);
      }
    }
  });
});
