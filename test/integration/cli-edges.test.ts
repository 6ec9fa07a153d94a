// The edges of the command line, as a user meets them: every bad option, command or port exits 2
// with one line naming the flag (no raw gRPC text, no log lines), input that could do nothing is
// refused, help lists every injection kind, and `ftrain coordinator` keeps its console to progress
// lines and tells nodes an address they can use.

import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { takenPort } from '../support/ports.ts';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../../common/proto.ts';
import { InjectionKind } from '../../domain/inject-spec.ts';
import { SMALL_MODEL, runCli, startCli, type CliResult } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-edges-'));
const QUICK = { timeoutMs: 30_000 };

/** Lines of the output that are JSON log records (pino's), which the console must not show. */
function jsonLines(text: string): string[] {
  return text.split('\n').filter((line) => {
    if (!line.trim().startsWith('{')) return false;
    try {
      JSON.parse(line);
      return true;
    } catch {
      return false;
    }
  });
}

/** Exit 2 with exactly one line on stderr, and nothing that is not ftrain's own sentence. */
function expectOneRefusal(res: CliResult, line: RegExp): void {
  expect(res.code, res.stderr).toBe(2);
  expect(res.stderr.trimEnd().split('\n'), res.stderr).toHaveLength(1);
  expect(res.stderr).toMatch(line);
  expect(res.stderr + res.stdout).not.toMatch(/No address added|resolved errors|EADDRINUSE/);
  expect(jsonLines(res.stdout + res.stderr)).toEqual([]);
}

describe('ports that are taken', () => {
  let taken: Awaited<ReturnType<typeof takenPort>>;
  let port = 0;
  beforeAll(async () => {
    taken = await takenPort();
    port = taken.port;
  });
  afterAll(() => taken.release());

  it('--port, --listen and an explicit --dashboard-port each exit 2 naming the flag', async () => {
    const small = ['--nodes', '1', '--steps', '1', '--backend', 'cpu', ...SMALL_MODEL];
    const [run, coordinator, dashboard] = await Promise.all([
      runCli(['run', ...small, '--port', String(port), '--no-dashboard', '--log-file', join(dir, 'port.log')], QUICK),
      runCli(['coordinator', ...small, '--listen', `127.0.0.1:${port}`, '--no-dashboard', '--log-file', join(dir, 'listen.log')], QUICK),
      runCli(['run', ...small, '--dashboard-port', String(port), '--log-file', join(dir, 'dashboard.log')], QUICK),
    ]);
    const p = String(port);
    expectOneRefusal(run, new RegExp(`^ftrain: --port: cannot listen on 127\\.0\\.0\\.1:${p}: the port is in use; pick another port \\(0: any free one\\)$`, 'm'));
    expectOneRefusal(coordinator, new RegExp(`^ftrain: --listen: cannot listen on 127\\.0\\.0\\.1:${p}: the port is in use`, 'm'));
    expectOneRefusal(dashboard, new RegExp(`^ftrain: --dashboard-port: cannot serve the dashboard on 127\\.0\\.0\\.1:${p}: the port is in use`, 'm'));
    // Refused before any node started: no node ever trained.
    expect(run.stdout + coordinator.stdout + dashboard.stdout).not.toMatch(/^step /m);
  });
});

describe('unknown options and commands', () => {
  it.each([
    [['run', '--nope'], /^error: unknown option '--nope'/m],
    [['bench', 'erasure', '--nope'], /^error: unknown option '--nope'/m],
    [['experiment', 'churn', '--rates'], /^error: option '--rates <list>' argument missing/m],
    [['frobnicate'], /^error: unknown command 'frobnicate'/m],
    [['bench', 'nope'], /^error: unknown command 'nope'/m],
    [['report'], /^error: missing required argument 'file'/m],
  ])('ftrain %j exits 2', async (args, message) => {
    const res = await runCli(args, QUICK);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr).toMatch(message);
  });

  it('--help and --version still exit 0, at the top and in a nested command', async () => {
    const results = await Promise.all([['--help'], ['bench', 'erasure', '--help'], ['--version']].map((args) => runCli(args, QUICK)));
    for (const res of results) expect(res.code, res.stderr).toBe(0);
    expect(results[0]!.stdout).toMatch(/Usage: ftrain/);
    expect(results[1]!.stdout).toMatch(/Usage: ftrain bench erasure/);
    expect(results[2]!.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });
});

describe('input that would do nothing', () => {
  it('refuses an --inject step the run never reaches', async () => {
    const res = await runCli(['run', '--nodes', '2', '--steps', '3', '--inject', '1:1:worker-kill,3:1:worker-kill'], QUICK);
    expectOneRefusal(res, /^ftrain: --inject: "3:1:worker-kill": the run never reaches step 3: --steps 3 trains steps 0 to 2/m);
  });

  it('refuses a binary file and text that is not UTF-8 as --data, naming the file and what is there', async () => {
    const latin1 = join(dir, 'latin1.txt');
    writeFileSync(latin1, Buffer.from(`${'Call me Ishmael. '.repeat(20)}Caf\xe9`, 'latin1'));
    const [binary, notUtf8] = await Promise.all([
      runCli(['run', '--steps', '1', '--data', process.execPath, '--log-file', join(dir, 'binary.log')], QUICK),
      runCli(['run', '--steps', '1', '--data', latin1, '--log-file', join(dir, 'latin1.log')], QUICK),
    ]);
    const execPath = process.execPath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    expectOneRefusal(binary, new RegExp(`^ftrain: data file ${execPath} is not UTF-8 text: byte \\d+ (is a NUL|\\(0x[0-9a-f]{2}\\) begins no valid UTF-8 character)`, 'm'));
    expectOneRefusal(notUtf8, new RegExp(`^ftrain: data file .*latin1\\.txt is not UTF-8 text: byte ${17 * 20 + 3} \\(0xe9\\) begins no valid UTF-8 character; pass --data with a UTF-8 text file$`, 'm'));
  });
});

describe('help', () => {
  it('of run and coordinator lists every injection kind under --inject', async () => {
    const results = await Promise.all([['run', '--help'], ['coordinator', '--help']].map((args) => runCli(args, QUICK)));
    for (const res of results) {
      expect(res.code).toBe(0);
      // The --inject entry: from its flag to the next option line.
      const entry = res.stdout.split(/\n {2}(?=-)/).find((chunk) => chunk.startsWith('--inject'));
      expect(entry, res.stdout).toBeDefined();
      const text = entry!.replace(/\s+/g, ' ');
      for (const kind of Object.values(InjectionKind)) expect(text).toContain(`${kind} (`);
    }
  });
});

describe('ftrain coordinator', () => {
  it('keeps JSON logs off the console, in the file it names, and gives nodes an address they can use', async () => {
    const cwd = mkdtempSync(join(dir, 'coordinator-'));
    const coordinator = startCli(['coordinator', '--listen', '127.0.0.1:0', '--nodes', '2', '--backend', 'cpu', ...SMALL_MODEL, '--no-dashboard'], { cwd, timeoutMs: 60_000 });
    try {
      const started = await coordinator.waitForLine(/^ftrain coordinator on 127\.0\.0\.1:(\d+): waiting for 2 nodes/, 30_000);
      const port = Number(started.match[1]);
      const hint = await coordinator.waitForLine(/nodes join with:/, 5_000);
      expect(hint.line).toContain(`ftrain node --coordinator 127.0.0.1:${port}`);
      expect(hint.line).toContain('only nodes on this machine can join');
      expect(hint.line).toContain('--join-token-file FILE');
      // No token given: one is made and shown once; a node joins with it.
      const token = (await coordinator.waitForLine(/^ {2}join token \(made now, shown once.*\): (\S+)$/, 5_000)).match[1]!;
      const logs = await coordinator.waitForLine(/^ {2}logs: (.+)$/, 5_000);
      // A node registers (the coordinator logs it), then the user presses Ctrl-C.
      const proto = loadProto();
      const client = new proto.ftrain.v1.Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
      await new Promise<void>((resolve, reject) =>
        client.Register({ nodeId: 'probe', address: '127.0.0.1:1', pid: 1, hostname: 'probe', joinToken: token }, { deadline: deadline() }, (err) => (err ? reject(err) : resolve())),
      );
      client.close();
      await new Promise((r) => setTimeout(r, 500));
      coordinator.child.kill('SIGINT');
      const res = await coordinator.result;
      expect(res.code, res.stderr).toBe(0);
      expect(jsonLines(res.stdout)).toEqual([]);
      expect(jsonLines(res.stderr)).toEqual([]);
      expect(res.stderr).toBe('');
      // The logs went to the file it announced, under .ftrain/logs by default.
      const logFile = logs.match[1]!;
      expect(logFile).toMatch(/\/\.ftrain\/logs\/coordinator-[^/]+\.log$/);
      expect(readdirSync(join(cwd, '.ftrain', 'logs'))).toHaveLength(1);
      expect(readFileSync(logFile, 'utf8')).toMatch(/"msg":"node registered"/);
    } finally {
      coordinator.child.kill('SIGKILL');
    }
  });
});
