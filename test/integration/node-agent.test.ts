// `ftrain node` turned away: nothing at the coordinator's address, a name that does not resolve,
// a node id already in use (on this machine, in the same snapshot directory; or elsewhere). Each
// ends the node at once with one line and its own exit code, and never restarts the worker; a
// duplicate touches nothing of the live node's. And the warm standby worker: it takes a killed
// worker's place on the node's fixed port, and dies with its agent.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CoordinatorServer } from '../../coordinator/coordinator-server.ts';
import { EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED } from '../../domain/exit-codes.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { isAlive, runCli, startCli, type CliResult, type RunningCli } from '../support/cli.ts';
import { closedPort, takenPort } from '../support/ports.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-node-agent-'));

/** The lines of stderr that the node itself says to a person (not its JSON logs). */
function nodeLines(stderr: string, nodeId: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith(`ftrain node ${nodeId}: `));
}

/** How many worker processes the agent started (its "worker started" log). */
function workerStarts(stderr: string): number {
  return stderr.split('\n').filter((l) => l.includes('"msg":"worker started"')).length;
}

/** Runs `ftrain ...`, timing the whole run and the first stderr line matching `mark`. */
async function timedRun(args: string[], mark: RegExp, timeoutMs: number): Promise<CliResult & { totalMs: number; afterMarkMs: number | null }> {
  const started = Date.now();
  const cli = startCli(args, { timeoutMs });
  let markAt: number | null = null;
  let seen = '';
  cli.child.stderr!.on('data', (d: Buffer) => {
    seen += d.toString();
    if (markAt === null && mark.test(seen)) markAt = Date.now();
  });
  const res = await cli.result;
  const ended = Date.now();
  return { ...res, totalMs: ended - started, afterMarkMs: markAt === null ? null : ended - markAt };
}

/** Every entry of `path` with its size and mtime, to show nothing in it changed. */
function listing(path: string): string[] {
  return readdirSync(path)
    .sort()
    .map((name) => {
      const s = statSync(join(path, name));
      return `${name} ${s.size} ${s.mtimeMs}`;
    });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a node with no coordinator to join', () => {
  it('gives up after --connect-timeout with progress lines and one final line, and never restarts its worker', async () => {
    const port = await closedPort();
    const snapshotDir = join(dir, 'unreachable');
    const res = await timedRun(
      ['node', '--coordinator', `127.0.0.1:${port}`, '--connect-timeout', '3', '--node-id', 'a1', '--snapshot-dir', snapshotDir],
      /ftrain node a1: waiting for the coordinator/,
      45_000,
    );
    expect(res.code, res.stderr).toBe(EXIT_UNREACHABLE);
    const lines = nodeLines(res.stderr, 'a1');
    const progress = lines.filter((l) => l.includes('waiting for the coordinator'));
    expect(progress.length, res.stderr).toBeGreaterThanOrEqual(1);
    expect(progress[0]).toMatch(new RegExp(`waiting for the coordinator at 127\\.0\\.0\\.1:${port} \\(attempt 1: connection refused\\); retrying, giving up in [1-3] s$`));
    // One final line, the last thing the node says.
    const final = lines.filter((l) => !l.includes('waiting for the coordinator'));
    expect(final, res.stderr).toEqual([`ftrain node a1: the coordinator at 127.0.0.1:${port} could not be reached for 3 s (connection refused); is it running, and is the address right?`]);
    expect(res.stderr.trimEnd().split('\n').at(-1)).toBe(final[0]);
    expect(workerStarts(res.stderr)).toBe(1);
    // From its first failed attempt to the end: the 3 s, and the node's shutdown.
    expect(res.afterMarkMs).not.toBeNull();
    expect(res.afterMarkMs!).toBeLessThan(3000 + 2500);
    // The directory it owned is gone with it.
    expect(existsSync(snapshotDir)).toBe(false);
  });

  it('waits at most 60 s by default, on `ftrain node` and `ftrain worker`', async () => {
    for (const command of ['node', 'worker']) {
      const res = await runCli([command, '--help'], { timeoutMs: 30_000 });
      const m = res.stdout.match(/--connect-timeout <s>[\s\S]*?\(default: "(\d+)"\)/);
      expect(m, res.stdout).not.toBeNull();
      expect(Number(m![1])).toBeGreaterThan(0);
      expect(Number(m![1])).toBeLessThanOrEqual(60);
    }
  });

  it('fails within 15 s, with one line, when the host name does not resolve', async () => {
    const snapshotDir = join(dir, 'unresolved');
    const res = await timedRun(['node', '--coordinator', 'ftrain-no-such-host.invalid:7070', '--node-id', 'b1', '--snapshot-dir', snapshotDir], /$^/, 20_000);
    expect(res.code, res.stderr).toBe(EXIT_UNRESOLVED);
    expect(res.totalMs).toBeLessThan(15_000);
    const final = nodeLines(res.stderr, 'b1').filter((l) => !l.includes('retrying'));
    expect(final, res.stderr).toHaveLength(1);
    expect(final[0]).toMatch(/^ftrain node b1: the coordinator's host name "ftrain-no-such-host\.invalid" (does not resolve|could not be resolved for \d+(\.\d)? s) \(\w+/);
    expect(res.stderr.trimEnd().split('\n').at(-1)).toBe(final[0]);
    // Nothing was started: no worker, no snapshot directory.
    expect(workerStarts(res.stderr)).toBe(0);
    expect(existsSync(snapshotDir)).toBe(false);
  });
});

describe('a node whose worker refuses its options', () => {
  it('ends at once with one line naming the flag, exit 2, and never restarts its worker', async () => {
    // The worker's --listen port is taken: a new worker would meet the same.
    const busy = await takenPort();
    const taken = busy.port;
    try {
      const snapshotDir = join(dir, 'listen-taken');
      const res = await timedRun(['node', '--coordinator', `127.0.0.1:${await closedPort()}`, '--listen', `127.0.0.1:${taken}`, '--node-id', 'c1', '--snapshot-dir', snapshotDir], /$^/, 30_000);
      expect(res.code, res.stderr).toBe(2);
      expect(res.totalMs).toBeLessThan(15_000);
      const lines = nodeLines(res.stderr, 'c1');
      expect(lines, res.stderr).toEqual([`ftrain node c1: --listen: cannot listen on 127.0.0.1:${taken}: the port is in use; pick another port (0: any free one)`]);
      expect(res.stderr.trimEnd().split('\n').at(-1)).toBe(lines[0]);
      expect(workerStarts(res.stderr)).toBe(1);
      expect(existsSync(snapshotDir)).toBe(false);
    } finally {
      await busy.release();
    }
  });
});

describe('a node whose snapshot manager cannot listen', () => {
  it('ends at once with exit 2 and one line naming --snapshot-manager-port', async () => {
    const busy = await takenPort();
    const taken = busy.port;
    try {
      const snapshotDir = join(dir, 'smp-port-taken');
      const res = await timedRun(['node', '--coordinator', `127.0.0.1:${await closedPort()}`, '--snapshot-manager-port', String(taken), '--node-id', 'd1', '--snapshot-dir', snapshotDir], /$^/, 30_000);
      expect(res.code, res.stderr).toBe(2);
      expect(res.totalMs).toBeLessThan(15_000);
      const final = nodeLines(res.stderr, 'd1').filter((l) => !l.includes('waiting for the coordinator'));
      expect(final, res.stderr).toEqual([`ftrain node d1: --snapshot-manager-port: cannot listen on 127.0.0.1:${taken}: the port is in use; pick another port (0: any free one)`]);
      expect(res.stderr.trimEnd().split('\n').at(-1)).toBe(final[0]);
      expect(existsSync(snapshotDir)).toBe(false);
    } finally {
      await busy.release();
    }
  });
});

describe('a duplicate node id', () => {
  let server: CoordinatorServer;
  let coordinator = '';
  let live: RunningCli;
  const liveDir = join(dir, 'dup-live');

  beforeAll(async () => {
    // Two stages: with one node registered, the job waits and nothing trains.
    const job = compileJobOptions({ nodes: 2, backend: 'cpu', dModel: 32, heads: 2, seqLen: 32, microBatchSize: 2, microBatches: 2 });
    server = new CoordinatorServer({ job, dataSha256: '', listen: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
    coordinator = `127.0.0.1:${await server.start()}`;
    live = startCli(['node', '--coordinator', coordinator, '--node-id', 'dup', '--snapshot-dir', liveDir, '--log-level', 'warn'], { timeoutMs: 170_000 });
    const until = Date.now() + 60_000;
    while (!server.status().nodes.some((n) => n.nodeId === 'dup') || !existsSync(join(liveDir, 'smp.json'))) {
      if (Date.now() > until) throw new Error('node dup did not register within 60 s');
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  afterAll(async () => {
    if (live.child.exitCode === null && live.child.signalCode === null) live.child.kill('SIGINT');
    const res = await live.result;
    server.requestStop('test over', false);
    await server.close();
    // Ctrl-C ends the live node, and its directory goes with it, its owner.
    expect(res.code).toBe(130);
    expect(existsSync(liveDir)).toBe(false);
  });

  it('in the same snapshot directory: exits at once, naming the owner, and touches nothing of it', async () => {
    const registered = server.status().nodes.find((n) => n.nodeId === 'dup')!;
    const before = listing(liveDir);
    const res = await timedRun(['node', '--coordinator', coordinator, '--node-id', 'dup', '--snapshot-dir', liveDir], /$^/, 30_000);
    expect(res.code, res.stderr).toBe(EXIT_REFUSED);
    expect(res.totalMs).toBeLessThan(10_000); // a process start: it starts nothing
    expect(nodeLines(res.stderr, 'dup'), res.stderr).toEqual([
      `ftrain node dup: the snapshot directory ${liveDir} belongs to node dup, whose node agent (pid ${live.child.pid}) is running; pick another --node-id, or another --snapshot-dir`,
    ]);
    expect(workerStarts(res.stderr)).toBe(0);
    expect(listing(liveDir)).toEqual(before);
    expect(isAlive(live.child.pid!)).toBe(true);
    const now = server.status().nodes.find((n) => n.nodeId === 'dup')!;
    expect([now.state, now.address, now.pid]).toEqual([registered.state, registered.address, registered.pid]);
  });

  it('in another snapshot directory: refused by the coordinator, ends at once without a restart', async () => {
    const otherDir = join(dir, 'dup-other');
    const before = listing(liveDir);
    const res = await timedRun(['node', '--coordinator', coordinator, '--node-id', 'dup', '--snapshot-dir', otherDir], /"msg":"worker started"/, 30_000);
    expect(res.code, res.stderr).toBe(EXIT_REFUSED);
    expect(res.afterMarkMs).not.toBeNull();
    expect(res.afterMarkMs!).toBeLessThan(10_000); // one worker start, one refusal
    const registered = server.status().nodes.find((n) => n.nodeId === 'dup')!;
    expect(nodeLines(res.stderr, 'dup'), res.stderr).toEqual([
      `ftrain node dup: refused by the coordinator at ${coordinator}: node id dup is already registered by a live node at ${registered.address}; give each node a unique --node-id`,
    ]);
    expect(res.stderr.trimEnd().split('\n').at(-1)).toMatch(/^ftrain node dup: refused/);
    expect(workerStarts(res.stderr)).toBe(1);
    // Its own directory is gone; the live node's is as it was, and the live node still runs.
    expect(existsSync(otherDir)).toBe(false);
    expect(listing(liveDir)).toEqual(before);
    expect(isAlive(live.child.pid!)).toBe(true);
  });
});

/** The JSON log lines of a node agent and its processes (on stderr) whose message is `msg`. */
function logLines(stderr: string, msg: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The command lines of the processes `pid` started. */
function childArgs(pid: number): Map<number, string> {
  try {
    const out = execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' });
    return new Map([...out.matchAll(/^\s*(\d+)\s+(.*)$/gm)].map((m) => [Number(m[1]), m[2]!]));
  } catch {
    return new Map(); // ps exits 1 when nothing matches
  }
}

/** Polls `probe` every 50 ms until it gives a value, for at most `ms`. */
async function until<T>(what: string, ms: number, probe: () => T | null | undefined | false): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v !== null && v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the warm standby worker of a node', () => {
  it('takes over a killed worker at once (warm or still starting), on the same fixed --listen port; a new standby follows; all go with the agent', async () => {
    const job = compileJobOptions({ nodes: 1, backend: 'cpu', dModel: 32, heads: 2, seqLen: 32, microBatchSize: 2, microBatches: 2 });
    const server = new CoordinatorServer({ job, dataSha256: '', listen: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
    const coordinator = `127.0.0.1:${await server.start()}`;
    const port = await closedPort();
    const node = startCli(['node', '--coordinator', coordinator, '--node-id', 'w1', '--listen', `127.0.0.1:${port}`, '--snapshot-dir', join(dir, 'standby'), '--log-level', 'debug'], { timeoutMs: 170_000 });
    let stderr = '';
    node.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const agentPid = node.child.pid!;
    try {
      const me = () => server.status().nodes.find((n) => n.nodeId === 'w1');
      // Once the worker trains, the agent starts a standby, which warms up and says so.
      const first = await until('a ready standby', 90_000, () => logLines(stderr, 'standby worker ready')[0]);
      const standbyPid = first.pid as number;
      const registered = me()!;
      expect(registered.address).toBe(`127.0.0.1:${port}`);
      expect(standbyPid).not.toBe(registered.pid);
      // Started by the agent with --standby, neither registered nor in the worker's place.
      expect(childArgs(agentPid).get(standbyPid)).toMatch(/ worker .*--standby/);
      expect(server.status().nodes.map((n) => n.pid)).not.toContain(standbyPid);
      // A snapshot to come back to: killed before the first, the stage could not be recovered.
      await until('a committed snapshot', 60_000, () => server.status().globalCommitStep >= 1);
      const stepsAtKill = server.status().completedSteps;

      process.kill(registered.pid, 'SIGKILL');
      // The standby registers in its place, on the port the dead worker held.
      const after = await until('the standby registered', 30_000, () => (me()?.pid === standbyPid ? me() : null));
      expect(after.address).toBe(`127.0.0.1:${port}`);
      expect(logLines(stderr, 'worker died; its standby takes over beside its snapshots')).toEqual([expect.objectContaining({ pid: standbyPid, restart: 1 })]);
      // The agent hears of the registration over its channel, a moment after the coordinator.
      const timed = await until("the agent's timing", 10_000, () => logLines(stderr, 'worker registered after the last one died')[0]);
      expect(timed).toMatchObject({ pid: standbyPid, via: 'standby', address: `127.0.0.1:${port}` });
      // No cold start: the agent started no worker but the first.
      expect(workerStarts(stderr)).toBe(1);
      // Once the new worker trains, a new standby is started.
      const next = await until('a second standby', 60_000, () => logLines(stderr, 'standby worker started').find((l) => l.pid !== standbyPid));
      const nextPid = next.pid as number;

      // Killed again at once, while that standby is still starting (nearly always: a process start
      // takes far longer than this poll): it is promoted all the same, and takes over once warm.
      process.kill(standbyPid, 'SIGKILL');
      await until('the second standby registered', 30_000, () => me()?.pid === nextPid);
      expect(me()!.address).toBe(`127.0.0.1:${port}`);
      const agentLines = stderr.split('\n').filter((l) => l.includes('"name":"node"'));
      const promoted = agentLines.findIndex((l) => l.includes('"msg":"worker died; its standby takes over') && l.includes(`"pid":${nextPid},`));
      const warm = agentLines.findIndex((l) => l.includes('"msg":"standby worker ready"') && l.includes(`"pid":${nextPid},`));
      expect(promoted, stderr).toBeGreaterThan(0);
      const promotion = JSON.parse(agentLines[promoted]!) as { restart: number; ready: boolean };
      expect(promotion.restart).toBe(2);
      // Promoted cold, it said it was warm after; promoted warm, before.
      expect(warm).toBeGreaterThan(0);
      expect(warm > promoted).toBe(!promotion.ready);
      expect(workerStarts(stderr)).toBe(1);

      // Training goes on, and a third standby is warmed.
      await until('training resumed', 60_000, () => server.status().completedSteps >= stepsAtKill + 3);
      const smpPid = me()!.smpPid;
      expect(smpPid).toBeGreaterThan(0);
      await until('a third standby', 60_000, () => logLines(stderr, 'standby worker started').length === 3);

      // The agent is killed: the worker, the standby and the snapshot manager go with it.
      const pids = [...logLines(stderr, 'standby worker started').map((l) => l.pid as number), smpPid];
      node.child.kill('SIGKILL');
      await node.result;
      const left = await until('no process left', 10_000, () => (pids.some(isAlive) ? null : []));
      expect(left).toEqual([]);
    } finally {
      if (isAlive(agentPid)) node.child.kill('SIGKILL');
      server.requestStop('test over', false);
      await server.close();
    }
  });
});
