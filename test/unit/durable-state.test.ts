// A new leader goes on from the old one's durable state: replayed over every coordinator
// scenario, a core restored (through JSON) at any point where training runs with no recovery
// under way, its nodes re-attached, answers every later event exactly as the core that never
// went away. Leases are not durable: both cores hear every live node beat at that point.

import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { DURABLE_STATE_VERSION } from '../../coordinator/core/durable-state.ts';
import { Scenario, scenarioCommands } from '../scenario/scenario-harness.ts';

const DIR = fileURLToPath(new URL('../scenario/coordinator', import.meta.url));

function runFrom(commands: readonly string[], k: number, takeover: boolean): string[] | null {
  const s = new Scenario();
  for (let i = 0; i < k; i++) {
    try {
      s.run(commands[i]!);
    } catch {
      return null;
    }
  }
  if (!s.steady) return null;
  const out: string[] = [];
  if (takeover) s.takeover();
  else s.heartbeatAll();
  for (let i = k; i < commands.length; i++) {
    try {
      out.push(`> ${commands[i]}`, ...s.run(commands[i]!));
    } catch (err) {
      out.push(`error: ${(err as Error).message}`);
    }
  }
  return out;
}

describe('durable coordinator state', () => {
  // takeover.txt and takeover-recovery.txt restore their own cores and re-attach their nodes one
  // by one: a takeover inside them would re-attach them first. refusals.txt sends a report ahead of its slot's next step on
  // purpose, which a slot's first report after a takeover may catch up to (training-progress.ts).
  const files = readdirSync(DIR).filter((f) => f.endsWith('.txt') && !f.startsWith('takeover') && f !== 'refusals.txt').sort();
  it.each(files)('a core restored anywhere in %s acts as the one that never went away', (file) => {
    const commands = scenarioCommands(join(DIR, file));
    let points = 0;
    for (let k = 1; k < commands.length; k++) {
      if (commands[k - 1]!.startsWith('job ')) continue;
      const kept = runFrom(commands, k, false);
      if (kept === null) continue;
      const restored = runFrom(commands, k, true);
      points += 1;
      expect(restored, `${file}: taken over before "${commands[k]}" (command ${k})`).toEqual(kept);
    }
    // A scenario that never trains steadily has no point to take over at; most do.
    if (!/unrecoverable|failures-without/.test(file)) expect(points).toBeGreaterThan(0);
  });

  it('refuses a stored state of another version, saying what to do', () => {
    const job = compileJobOptions({ nodes: 2, steps: 4 });
    const state = { ...new CoordinatorCore(job).durable(), version: DURABLE_STATE_VERSION + 1 };
    expect(() => CoordinatorCore.restore(job, state, 0)).toThrow(/version \d+, this coordinator reads version \d+: run the same ftrain version on every coordinator/);
  });
});
