// What a job survives, for real: the start lines say it, a lost node nothing can bring back ends
// the run at once (not after the recovery timeout), and an erasure code the nodes cannot hold is
// refused before anything starts.

import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SMALL_MODEL, runCli, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-survive-'));

describe('what a job survives', () => {
  it('a 2-node job says at start that a lost node ends the run, and fails at once when one is lost', async () => {
    const run = startCli(
      ['run', '--nodes', '2', '--steps', '60', '--backend', 'cpu', ...SMALL_MODEL, '--inject', '3:1:node-kill', '--no-dashboard', '--log-file', join(dir, 'two.log')],
      { timeoutMs: 90_000 },
    );
    const detected = await run.waitForLine(/^RECOVERING: stage 1 \(node-1\) failed/, 60_000);
    const res = await run.result;
    const afterKillMs = Date.now() - detected.atMs;
    const out = res.stdout;
    expect(res.code, out + res.stderr).toBe(1);
    // Well under the 60 s recovery timeout: nothing is waited for.
    expect(afterKillMs, out).toBeLessThan(10_000);
    // The start lines, before training: what it survives, and that a lost node ends it.
    const start = out.slice(0, out.indexOf('training to step'));
    expect(start).toMatch(/survives, by tier:\n {4}local snapshot: any number of worker crashes at once/);
    expect(start).toMatch(/cannot survive: a lost node ends the run: 2 nodes leave too few other nodes for erasure shards.*CheckFree needs a neighbour on both sides.*to survive more: --spares 1/);
    // One reason, saying why and what would have saved it; no promise to wait for a node.
    expect(out).not.toMatch(/waiting for a node to join/);
    const failed = new Set(out.split('\n').filter((l) => l.startsWith('FAILED: ')));
    expect([...failed], out).toHaveLength(1);
    // The loss is seen first either by the launcher (the node's process exited) or by the
    // coordinator (the node's command stream broke, then its snapshot manager does not answer).
    expect([...failed][0]).toMatch(
      /^FAILED: node node-1 \(stage 1\) failed: (its process exited \(killed by SIGKILL\)|its command stream to the coordinator broke \(process died or network lost\)); nothing can bring stage 1 back, whichever node joins: .*erasure coding is off.*CheckFree cannot rebuild stage 1.*would have saved the run$/,
    );
    // Said once: the summary at the end points to the FAILED line rather than repeating it.
    const reason = [...failed][0]!.slice('FAILED: '.length);
    expect(out.split(reason).length - 1, out).toBe(1);
    expect(out).toMatch(/^failed after \d+ step\(s\): the FAILED line above says why$/m);
    console.log(`survivability: the 2-node run exited ${afterKillMs} ms after the kill was detected`);
  }, 100_000);

  it('ftrain coordinator prints the same statement at start', async () => {
    const coord = startCli(['coordinator', '--nodes', '4', '--spares', '1', '--listen', '127.0.0.1:0', '--no-dashboard', '--log-file', join(dir, 'coord.log')], { timeoutMs: 30_000 });
    try {
      await coord.waitForLine(/a lost node's stage goes to one of the 1 spare\(s\) at once/, 20_000);
      expect(coord.stdout()).toMatch(/erasure rebuild: any 2 node losses at once \(RS\(3,1\)/);
      expect(coord.stdout()).toMatch(/cannot survive: 3 node losses at once/);
    } finally {
      coord.child.kill('SIGKILL');
      await coord.result;
    }
  }, 40_000);

  it('refuses --ec 9,9 on 2 nodes with exit 2, naming --ec and what fits', async () => {
    const res = await runCli(['run', '--ec', '9,9', '--nodes', '2', '--steps', '2', '--backend', 'cpu', ...SMALL_MODEL, '--no-dashboard', '--log-file', join(dir, 'ec.log')], { timeoutMs: 60_000 });
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^ftrain: --ec: 9,9 needs 18 other nodes to hold the shards; --nodes 2 --spares 0 gives 1/m);
    expect(res.stdout).not.toMatch(/coordinator on/);
  }, 70_000);
});
