// The socket-free simulation of `ftrain bench coordinator --simulate` at a small size: the pure
// coordinator core through an hour of spot churn must keep training and recover every failure.

import { describe, expect, it } from 'vitest';
import { runCoordinatorSimulation } from '../../bench/coordinator-sim.ts';

describe('coordinator simulation', () => {
  it('drives 500 nodes through a simulated hour of churn: steps complete and every failure is recovered', () => {
    const r = runCoordinatorSimulation({ nodes: 500, stages: 8, spares: 20, hours: 1, churnPerHour: 0.02, stepMs: 60_000, heartbeatMs: 30_000, seed: 7, progress: () => {} });
    expect(r.runFailure).toBeNull();
    expect(r.failuresInjected).toBe(Math.round(500 * 0.02 * 0.9));
    expect(r.preemptions).toBeGreaterThan(0);
    expect(r.abruptLosses).toBeGreaterThan(0);
    expect(r.failuresRecovered).toBe(r.failuresInjected);
    expect(r.sparesLost).toBe(0);
    expect(r.falseLosses).toBe(0);
    expect(r.nodesJoined).toBe(r.failuresInjected);
    // An hour of 60 s steps, less what the recoveries cost.
    expect(r.stepsCompleted).toBeGreaterThan(30);
    expect(r.stepsCompleted).toBeLessThanOrEqual(60);
    expect(r.eventsFed).toBeGreaterThan(500 * 60);
    expect(r.eventsPerSecond).toBeGreaterThan(0);
    expect(r.peakRssBytes).toBeGreaterThan(0);
  }, 30_000);
});
