// The durable state as store records: a round trip gives the state back, a step changes one
// record, and a thousand nodes fit in a transaction etcd accepts.

import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { recordChanges, stateFromRecords, stateRecords, StoredStateError } from '../../coordinator/state-records.ts';
import { Scenario, scenarioCommands } from '../scenario/scenario-harness.ts';
import type { DurableCoordinatorState } from '../../coordinator/core/durable-state.ts';

const DIR = fileURLToPath(new URL('../scenario/coordinator', import.meta.url));

/** The state of a scenario file after its first `n` commands. */
function stateAfter(file: string, n: number): { scenario: Scenario; state: DurableCoordinatorState; commands: string[] } {
  const commands = scenarioCommands(join(DIR, file));
  const scenario = new Scenario();
  for (const c of commands.slice(0, n)) scenario.run(c);
  return { scenario, state: scenario.durable(), commands };
}

describe('state records', () => {
  it.each(['replica-away.txt', 'erasure-recovery.txt', 'departures.txt'])('give back the state they were made of (%s, at every command)', (file) => {
    const commands = scenarioCommands(join(DIR, file));
    const scenario = new Scenario();
    for (const c of commands) {
      scenario.run(c);
      if (c.startsWith('at ')) continue;
      const state = scenario.durable();
      expect(stateFromRecords(stateRecords(state))).toEqual(JSON.parse(JSON.stringify(state)));
    }
  });

  it('change nothing for a heartbeat (leases are not stored)', () => {
    const { scenario, state, commands } = stateAfter('placement-and-steps.txt', 1000);
    expect(commands.length).toBeGreaterThan(0);
    const before = stateRecords(state);
    scenario.heartbeatAll();
    expect(recordChanges(before, stateRecords(scenario.durable()))).toEqual({ puts: new Map(), deletes: [] });
  });

  it('keep a thousand nodes and slots within 128 records of etcd transaction', () => {
    const { state } = stateAfter('placement-and-steps.txt', 1000);
    const node = state.nodes[0]!;
    const slot = state.commits.stages[0]!;
    const big: DurableCoordinatorState = {
      ...state,
      nodes: Array.from({ length: 1000 }, (_, i) => ({ ...node, nodeId: `n${i}`, address: `10.0.${i >> 8}.${i & 255}:7000` })),
      commits: { ...state.commits, stages: Array.from({ length: 1000 }, (_, i) => ({ ...slot, nodeId: `n${i}` })) },
    };
    const records = stateRecords(big);
    expect(records.size).toBeLessThanOrEqual(128);
    // One slot's step moves: one record changes.
    const next: DurableCoordinatorState = { ...big, commits: { ...big.commits, stages: big.commits.stages.map((s, i) => (i === 517 ? { ...s, lastStep: s.lastStep + 1 } : s)) } };
    const changes = recordChanges(records, stateRecords(next));
    expect([...changes.puts.keys()]).toEqual(['slots/0016']);
    expect(changes.deletes).toEqual([]);
  });

  it('say what is missing when the store holds no state', () => {
    expect(() => stateFromRecords(new Map())).toThrow(StoredStateError);
    expect(() => stateFromRecords(new Map([['job', '{}']]))).toThrow(/no coordinator state \(no run record\)/);
  });
});
