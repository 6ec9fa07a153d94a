// Real kills of real processes: a worker SIGKILLed mid-training, Ctrl-C, and a launcher that
// dies. No process may outlive the run.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SMALL_MODEL, isAlive, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-kill-'));

/**
 * Starts an unbounded 3-stage run and returns its worker pids by stage once training is under
 * way. Snapshots are off: a lost worker ends the run (recovery is tested in recovery.test.ts).
 */
async function startRun(name: string) {
  const run = startCli(['run', '--nodes', '3', '--backend', 'wasm', ...SMALL_MODEL, '--snapshot-every', '0', '--log-file', join(dir, `${name}.log`)]);
  const pids: number[] = [];
  for (let stage = 0; stage < 3; stage++) {
    const { match } = await run.waitForLine(new RegExp(`^  stage ${stage} -> node-${stage} \\(pid (\\d+),`));
    pids.push(Number(match[1]));
  }
  await run.waitForLine(/^step \d+  loss/);
  return { run, pids };
}

async function waitDead(pids: number[], ms = 5000): Promise<number[]> {
  const until = Date.now() + ms;
  while (Date.now() < until && pids.some(isAlive)) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(isAlive);
}

/** Every process below `pid`. */
function descendantsOf(pid: number): number[] {
  const children = childrenOf(pid);
  return [...children, ...children.flatMap(descendantsOf)];
}

function childrenOf(pid: number): number[] {
  return processesBelow(pid).map((p) => p.pid);
}

function processesBelow(pid: number): { pid: number; args: string }[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim().match(/^(\d+)\s+(.*)$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => ({ pid: Number(m[1]), args: m[2]! }));
  } catch {
    return []; // ps exits 1 when nothing matches
  }
}

/** The ftrain processes below `pid` (tsx may add helper processes of its own). */
function ftrainTree(pid: number): number[] {
  const tree = descendantsOf(pid);
  return tree.filter((p) => {
    try {
      return execFileSync('ps', ['-o', 'args=', '-p', String(p)], { encoding: 'utf8' }).includes('bin/ftrain.js');
    } catch {
      return false;
    }
  });
}

describe('failures of real processes', () => {
  it('reports the killed node and stage within 2 s and ends the run with a clear error, leaving no process', async () => {
    const { run, pids } = await startRun('sigkill');
    // launcher -> 3 node agents -> a worker, its warm standby (started once the worker trains) and
    // a snapshot manager each
    const tree = descendantsOf(run.child.pid!);
    expect(ftrainTree(run.child.pid!)).toHaveLength(12);
    expect(tree).toEqual(expect.arrayContaining(pids));
    // Stage 0, with snapshots off and no disk checkpoint: nothing can bring it back (CheckFree
    // rebuilds only intermediate stages), so the run must end at once, saying why.
    const killedAt = Date.now();
    process.kill(pids[0]!, 'SIGKILL');
    const { line, atMs } = await run.waitForLine(/^FAILED: /, 10_000);
    expect(atMs - killedAt).toBeLessThan(2000);
    expect(line).toContain('node node-0 (stage 0) failed');
    expect(line).toContain('nothing can bring stage 0 back');
    const res = await run.result;
    expect(res.code).toBe(1);
    // The summary says the run failed and points to the FAILED line, without repeating it.
    expect(res.stdout).toMatch(/^failed after \d+ step\(s\): the FAILED line above says why$/m);
    expect(res.stdout.split(line.slice('FAILED: '.length)).length - 1).toBe(1);
    expect(await waitDead(tree)).toEqual([]);
  });

  it('declares a frozen node (SIGSTOP) lost when its lease expires, and kills it at the end', async () => {
    const run = startCli(['run', '--nodes', '2', '--backend', 'wasm', ...SMALL_MODEL, '--snapshot-every', '0', '--lease-ms', '1500', '--heartbeat-ms', '250', '--log-file', join(dir, 'freeze.log')]);
    const { match } = await run.waitForLine(/^  stage 1 -> node-1 \(pid (\d+),/);
    const frozen = Number(match[1]);
    await run.waitForLine(/^step \d+  loss/);
    // Until its first heartbeat a node has a long grace (its heartbeat thread may start slowly on
    // a loaded machine): freeze it only once the lease runs.
    const beating = () => readFileSync(join(dir, 'freeze.log'), 'utf8').split('\n').some((l) => l.includes('"nodeId":"node-1"') && l.includes('first heartbeat taken'));
    const until = Date.now() + 15_000;
    while (!beating() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    expect(beating(), 'node-1 sent a heartbeat before the freeze').toBe(true);
    const stoppedAt = Date.now();
    process.kill(frozen, 'SIGSTOP');
    const { line, atMs } = await run.waitForLine(/^FAILED: /, 15_000);
    expect(line).toContain('node node-1 (stage 1) failed: its lease expired');
    expect(atMs - stoppedAt).toBeGreaterThanOrEqual(1000);
    expect(atMs - stoppedAt).toBeLessThan(3000);
    const res = await run.result;
    expect(res.code).toBe(1);
    expect(await waitDead([frozen], 10_000)).toEqual([]);
  });

  it('stops every child cleanly on Ctrl-C after the step under way', async () => {
    const { run, pids } = await startRun('sigint');
    const tree = descendantsOf(run.child.pid!);
    expect(tree).toEqual(expect.arrayContaining(pids));
    run.child.kill('SIGINT');
    const res = await run.result;
    expect(res.code).toBe(0);
    expect(res.stdout).toContain('stopping after the current step');
    expect(res.stdout).toMatch(/^finished: training complete/m);
    expect(res.stdout).toMatch(/weights sha256 [0-9a-f]{64}/);
    expect(await waitDead(tree)).toEqual([]);
  });

  it('stops gracefully on a Ctrl-C sent to the whole process group, as a terminal sends it', async () => {
    // Every process of the run gets SIGINT: only the launcher acts on it; the node agents, the
    // workers and the snapshot managers it started must live on until the run has stopped.
    const run = startCli(['run', '--nodes', '3', '--backend', 'wasm', ...SMALL_MODEL, '--log-file', join(dir, 'group-sigint.log')], { detached: true });
    await run.waitForLine(/^step \d+  loss/);
    const tree = descendantsOf(run.child.pid!);
    process.kill(-run.child.pid!, 'SIGINT');
    const res = await run.result;
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).not.toMatch(/RECOVERING|FAILED/);
    expect(res.stdout).toMatch(/^finished: training complete/m);
    // Not even a standby worker died of it.
    expect(readFileSync(join(dir, 'group-sigint.log'), 'utf8')).not.toContain('killed by SIGINT');
    expect(await waitDead(tree)).toEqual([]);
  });

  it('leaves no node behind when the launcher itself is killed', async () => {
    const { run, pids } = await startRun('launcher-kill');
    const tree = descendantsOf(run.child.pid!);
    expect(tree).toEqual(expect.arrayContaining(pids));
    run.child.kill('SIGKILL');
    await run.result;
    expect(await waitDead(tree, 10_000)).toEqual([]);
    // The node agents removed their in-memory snapshots on the way out.
    if (existsSync('/dev/shm')) expect(readdirSync('/dev/shm').filter((n) => n.startsWith(`ftrain-run-${run.child.pid}-`))).toEqual([]);
  });
});
