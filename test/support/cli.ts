// Runs the real `ftrain` command in a child process, as a user would.

import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const FTRAIN = fileURLToPath(new URL('../../bin/ftrain.js', import.meta.url));

export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunningCli {
  readonly child: ChildProcess;
  readonly result: Promise<CliResult>;
  /** Resolves with the first stdout line matching `pattern` (and when it arrived). */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<{ line: string; match: RegExpMatchArray; atMs: number }>;
  stdout(): string;
}

/** `detached`: the command leads a process group of its own, as a shell's foreground job does (signal it with process.kill(-pid)). */
export function startCli(args: string[], options: { timeoutMs?: number; cwd?: string; detached?: boolean } = {}): RunningCli {
  const child = spawn(process.execPath, [FTRAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], cwd: options.cwd, detached: options.detached ?? false });
  let stdout = '';
  let stderr = '';
  const lineWaiters: { pattern: RegExp; resolve: (v: { line: string; match: RegExpMatchArray; atMs: number }) => void }[] = [];
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => {
    const atMs = Date.now();
    stdout += d.toString();
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      for (const w of [...lineWaiters]) {
        const match = line.match(w.pattern);
        if (match) {
          lineWaiters.splice(lineWaiters.indexOf(w), 1);
          w.resolve({ line, match, atMs });
        }
      }
    }
  });
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 170_000);
  const result = new Promise<CliResult>((resolve) =>
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return {
    child,
    result,
    stdout: () => stdout,
    waitForLine(pattern, timeoutMs = 120_000) {
      for (const line of stdout.split('\n')) {
        const match = line.match(pattern);
        if (match) return Promise.resolve({ line, match, atMs: Date.now() });
      }
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; stdout:\n${stdout}\nstderr:\n${stderr}`)), timeoutMs);
        lineWaiters.push({ pattern, resolve: (v) => (clearTimeout(t), resolve(v)) });
        void result.then(() => setTimeout(() => reject(new Error(`exited before a line matching ${pattern}; stdout:\n${stdout}\nstderr:\n${stderr}`)), 50));
      });
    },
  };
}

export function runCli(args: string[], options: { timeoutMs?: number; cwd?: string } = {}): Promise<CliResult> {
  return startCli(args, options).result;
}

/** True while a process with this pid exists. */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A small model for tests that need many runs: fast on the cpu backend. */
export const SMALL_MODEL = ['--d-model', '32', '--heads', '2', '--seq-len', '32', '--micro-batch-size', '2', '--micro-batches', '2'];
