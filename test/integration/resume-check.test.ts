// A resume that does not fit the checkpoints in --checkpoint-dir is refused by `ftrain run`
// before any node starts, exit 2, naming what differs; a --checkpoint-dir that is a regular file
// likewise. A resume that fits still resumes.

import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { SMALL_MODEL, runCli, type CliResult } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-resume-check-'));
const ckpt = join(dir, 'ck');
// SMALL_MODEL has --d-model 32 --heads 2.
const BASE = ['--backend', 'cpu', '--seed', '5', '--dashboard-port', '0', ...SMALL_MODEL];
/** Long enough for a refusal; on the old code these runs started nodes and ran into the 60 s recovery timeout. */
const REFUSAL_TIMEOUT_MS = 20_000;

/** Every file under the checkpoint directory with its size: a refused run must leave it as it was. */
function listing(root: string): string[] {
  return readdirSync(root, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => `${join(e.parentPath, e.name)} ${readFileSync(join(e.parentPath, e.name)).length}`)
    .sort();
}

async function refused(name: string, args: string[]): Promise<CliResult & { ms: number; log: string }> {
  const logFile = join(dir, `${name}.log`);
  const started = Date.now();
  const res = await runCli(['run', ...args, '--log-file', logFile], { timeoutMs: REFUSAL_TIMEOUT_MS });
  const ms = Date.now() - started;
  const log = existsSync(logFile) ? readFileSync(logFile, 'utf8') : '';
  // No node was started: the launcher never printed its start line, and no node or worker logged.
  expect(res.stdout).not.toMatch(/coordinator on|-> node-/);
  expect(log).not.toMatch(/"name":"(node|worker|snapshot-manager)"/);
  return { ...res, ms, log };
}

describe('ftrain run checks a resume against --checkpoint-dir before starting nodes', () => {
  let before: string[];

  beforeAll(async () => {
    const first = await runCli(['run', '--nodes', '2', '--steps', '6', '--checkpoint-every', '2', '--checkpoint-dir', ckpt, ...BASE, '--log-file', join(dir, 'first.log')]);
    expect(first.code, first.stdout + first.stderr).toBe(0);
    before = listing(ckpt);
    expect(before.some((f) => /stage-1\/step-0+6\.json /.test(f))).toBe(true);
  }, 60_000);

  it('refuses another model shape at once, exit 2, naming --d-model and both values', async () => {
    const res = await refused('d-model', ['--nodes', '2', '--steps', '10', '--checkpoint-dir', ckpt, ...BASE, '--d-model', '64']);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toBe(`ftrain: --checkpoint-dir: ${ckpt} holds checkpoints of another model: --d-model 32 there, 64 here (start a new directory, or resume with the same shape)\n`);
    expect(res.ms).toBeLessThan(5000);
    expect(listing(ckpt)).toEqual(before);
  });

  it('refuses --steps that the checkpoints already reach, exit 2, naming --steps', async () => {
    const res = await refused('steps', ['--nodes', '2', '--steps', '6', '--checkpoint-dir', ckpt, ...BASE]);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^ftrain: --checkpoint-dir: .* holds checkpoints that reach step 6; --steps 6 would have nothing to train: give --steps above 6\n$/);
    expect(listing(ckpt)).toEqual(before);
  });

  it('refuses another --nodes instead of starting from scratch, exit 2', async () => {
    const res = await refused('nodes', ['--nodes', '3', '--steps', '10', '--checkpoint-dir', ckpt, ...BASE]);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toMatch(/^ftrain: --checkpoint-dir: .* holds the checkpoints of a 2-stage job; --nodes 3 here \(resume with --nodes 2, or start a new directory\)\n$/);
    expect(listing(ckpt)).toEqual(before);
  });

  it('refuses a --checkpoint-dir that is a regular file, exit 2', async () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'not a directory\n');
    const res = await refused('file', ['--nodes', '2', '--steps', '4', '--checkpoint-every', '2', '--checkpoint-dir', file, ...BASE]);
    expect(res.code, res.stdout + res.stderr).toBe(2);
    expect(res.stderr).toBe(`ftrain: --checkpoint-dir: ${file} is a file, not a directory (give a directory, or a path that does not exist yet)\n`);
  });

  it('still resumes a job that fits, saying what merely differs (another --seed)', async () => {
    const res = await runCli(['run', '--nodes', '2', '--steps', '8', '--checkpoint-dir', ckpt, ...BASE, '--seed', '6', '--log-file', join(dir, 'resume.log')]);
    expect(res.code, res.stdout + res.stderr).toBe(0);
    expect(res.stdout).toMatch(/^note: --seed 6 here, 5 in the run that wrote the checkpoints: /m);
    expect(res.stdout).toMatch(/^resuming from the disk checkpoint of step 6$/m);
    expect(res.stdout).toMatch(/^finished: /m);
  });
});
