// The job `ftrain chaos` hits in local mode: `ftrain run` as a child process, without --steps
// (it trains until told to stop) and without --respawn (chaos replaces lost nodes itself). It
// runs in a process group of its own, so that chaos alone decides when it stops (a Ctrl-C of the
// terminal reaches chaos only) and can kill all of it at once if it must.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RecoveredFailure } from '../domain/run-status.ts';
import { descendantProcesses, groupMembers, isGroupAlive, sendSignal } from './process-control.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';


/** How long `ftrain run` may take to print its coordinator address. */
export const ADDRESS_TIMEOUT_MS = 60_000;
/** How long the run's processes may take to follow it out. */
const STRAGGLER_WAIT_MS = 3000;
/** After SIGKILL to its group, how long to wait for the run to be reaped. */
const KILL_WAIT_MS = 5000;

/** Thrown when `ftrain run` exits or stays silent before it says where its coordinator is. */
export class JobStartError extends Error {
  override readonly name = 'JobStartError';
  constructor(
    message: string,
    readonly outputPath: string,
  ) {
    super(`${message}; its output: ${outputPath}`);
  }
}

export interface JobExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** The parts of the run report chaos reads (README "Run report"). */
export interface ChaosRunReport {
  readonly status: string;
  readonly reason: string;
  readonly steps: number;
  readonly failures: readonly RecoveredFailure[];
}

export class LocalJob {
  readonly reportPath: string;
  readonly logFile: string;
  readonly outputPath: string;
  private child: ChildProcess | null = null;
  private output: WriteStream | null = null;
  private exitInfo: JobExit | null = null;
  private exitedPromise: Promise<JobExit> = new Promise(() => {});

  constructor(
    private readonly runArgs: readonly string[],
    workDir: string,
    /** Added to the run's environment (the join token). */
    private readonly env: Readonly<Record<string, string>> = {},
  ) {
    this.reportPath = join(workDir, 'report.json');
    this.logFile = join(workDir, 'run.log');
    this.outputPath = join(workDir, 'run-output.txt');
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  /** Null while the run is running. */
  get exit(): JobExit | null {
    return this.exitInfo;
  }

  get exited(): Promise<JobExit> {
    return this.exitedPromise;
  }

  /** Starts the run; resolves with its coordinator's address (HOST:PORT), or the coordinators' (A,B) under --ha. */
  start(timeoutMs = ADDRESS_TIMEOUT_MS): Promise<string> {
    const args = [FTRAIN_BIN, 'run', ...this.runArgs, '--respawn', '0', '--report', this.reportPath, '--log-file', this.logFile];
    const output = createWriteStream(this.outputPath, { flags: 'a' });
    this.output = output;
    const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...this.env } });
    this.child = child;
    this.exitedPromise = new Promise((resolve) =>
      child.on('exit', (code, signal) => {
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      }),
    );
    child.stderr!.on('data', (d: Buffer) => output.write(d));
    return new Promise((resolve, reject) => {
      let buffered = '';
      let found = false;
      const timer = setTimeout(() => reject(new JobStartError(`ftrain run printed no coordinator address within ${timeoutMs / 1000} s`, this.outputPath)), timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        output.write(d);
        if (found) return;
        buffered += d.toString();
        // `coordinator on HOST:PORT`, or with --ha `coordinators on A,B`.
        const m = buffered.match(/coordinators? on ([^\s,]+:\d+(?:,[^\s,]+:\d+)*)/);
        if (m) {
          found = true;
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.on('error', (err) => {
        clearTimeout(timer);
        reject(new JobStartError(`ftrain run could not start: ${err.message}`, this.outputPath));
      });
      void this.exitedPromise.then((e) => {
        clearTimeout(timer);
        if (!found) reject(new JobStartError(`ftrain run exited (${e.signal ?? `code ${e.code}`}) before it printed its coordinator address`, this.outputPath));
      });
    });
  }

  /**
   * Stops the run as Ctrl-C does (it finishes the step under way, writes the report and stops its
   * nodes); SIGKILL to its whole group after `timeoutMs`. Returns the exit and anything odd seen.
   */
  async stop(timeoutMs: number): Promise<{ exit: JobExit | null; notes: string[] }> {
    const notes: string[] = [];
    const child = this.child;
    if (!child || child.pid === undefined) return { exit: null, notes };
    if (this.exitInfo === null) {
      sendSignal(child.pid, 'SIGINT');
      const timedOut = await Promise.race([this.exitedPromise.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), timeoutMs).unref())]);
      if (timedOut) {
        notes.push(`ftrain run had not stopped ${Math.round(timeoutMs / 1000)} s after SIGINT: killed it`);
        sendSignal(-child.pid, 'SIGKILL');
        await Promise.race([this.exitedPromise, new Promise((r) => setTimeout(r, KILL_WAIT_MS).unref())]);
      }
    }
    // No process of the run may outlive it (the launcher promises as much; a node's worker and
    // snapshot manager exit just after their agent): check, after a moment.
    const settleUntil = Date.now() + STRAGGLER_WAIT_MS;
    while (isGroupAlive(child.pid) && Date.now() < settleUntil) await new Promise((r) => setTimeout(r, 100));
    if (isGroupAlive(child.pid)) {
      const members = groupMembers(child.pid);
      notes.push(`processes of ftrain run (process group ${child.pid}) outlived it by ${STRAGGLER_WAIT_MS / 1000} s: ${members.join(', ') || 'unknown'}; killed them`);
    }
    const until = Date.now() + KILL_WAIT_MS;
    while (isGroupAlive(child.pid) && Date.now() < until) {
      sendSignal(-child.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 200));
    }
    const dirs = this.leftoverDirs();
    if (dirs.length > 0) {
      notes.push(`ftrain run left ${dirs.length} snapshot director${dirs.length === 1 ? 'y' : 'ies'} behind: removed`);
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    }
    await new Promise<void>((r) => (this.output ? this.output.end(() => r()) : r()));
    return { exit: this.exitInfo, notes };
  }

  /** The run's report, or null if it wrote none (or not one chaos can read). */
  readReport(): ChaosRunReport | null {
    if (!existsSync(this.reportPath)) return null;
    try {
      const r = JSON.parse(readFileSync(this.reportPath, 'utf8')) as Partial<ChaosRunReport>;
      if (typeof r.status !== 'string' || typeof r.steps !== 'number' || !Array.isArray(r.failures)) return null;
      return { status: r.status, reason: typeof r.reason === 'string' ? r.reason : '', steps: r.steps, failures: r.failures };
    } catch {
      return null;
    }
  }

  /** For a process exit handler: kills the run's whole group and removes its snapshots, now. */
  killNow(): void {
    const pid = this.child?.pid;
    if (pid === undefined) return;
    // Under --ha its etcd members run in groups of their own.
    for (const p of descendantProcesses(pid)) sendSignal(p.pid, 'SIGKILL');
    sendSignal(-pid, 'SIGCONT');
    sendSignal(-pid, 'SIGKILL');
    for (const d of this.leftoverDirs()) rmSync(d, { recursive: true, force: true });
  }

  /** The launcher's tmpfs snapshot directories (cli/local-cluster.ts names them ftrain-run-PID-...). */
  private leftoverDirs(): string[] {
    const pid = this.child?.pid;
    if (pid === undefined) return [];
    const base = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
    try {
      return readdirSync(base)
        .filter((n) => n.startsWith(`ftrain-run-${pid}-`))
        .map((n) => join(base, n));
    } catch {
      return [];
    }
  }
}
