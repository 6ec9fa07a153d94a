// The spot fleet of `ftrain chaos`: once a hit node is gone, a new `ftrain node` process takes
// its place after a delay, as a cloud replaces a reclaimed instance. The fleet owns these
// processes and their tmpfs snapshot directories, and ends them all, whatever happens.

import type { ChaosSecurity } from './chaos-security.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isLive } from '../coordinator/core/node-lifecycle.ts';
import type { ClusterStatus } from './coordinator-status.ts';
import { isAlive, isGroupAlive, sendSignal } from './process-control.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { hostOf, isLoopbackHost } from '../domain/host-port.ts';


/** How often the fleet looks whether a node's processes are gone. */
export const GONE_POLL_MS = 200;
/** A replacement that has not registered with the coordinator by then is given up on. */
export const JOIN_TIMEOUT_MS = 60_000;

export interface FleetOptions {
  readonly coordinator: string;
  readonly replaceAfterMs: number;
  /** The nodes' JSON logs. */
  readonly logFile: string;
  /** The nodes' stdout and stderr. */
  readonly outputFd: number;
  /** How the nodes it starts join the job. */
  readonly security: ChaosSecurity;
  readonly print: (line: string) => void;
}

interface Replacement {
  readonly nodeId: string;
  readonly child: ChildProcess;
  readonly snapshotDir: string;
  readonly startedAtMs: number;
  /** Registered with the coordinator, or given up on. */
  settled: boolean;
}

export interface ReplaceResult {
  /** The node started, or null when none was (chaos ended first). */
  readonly replacement: string | null;
  readonly notes: readonly string[];
}

/** Loopback when the coordinator is (the local job); otherwise every interface, so that other machines reach the node. */
export function listenAddress(coordinator: string): string {
  // With several coordinators (A,B), the first tells.
  return isLoopbackHost(hostOf(coordinator.split(',')[0]!)) ? '127.0.0.1:0' : '0.0.0.0:0';
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export class ChaosFleet {
  private readonly started: Replacement[] = [];
  private pending = 0;
  private next = 1;
  private readonly shmBase = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  /** Ends the waits of replace() when chaos ends. */
  private readonly stopping = new AbortController();

  constructor(private readonly o: FleetOptions) {}

  /** Replacements started so far (node ids). */
  get nodeIds(): string[] {
    return this.started.map((r) => r.nodeId);
  }

  /** The pids of the fleet's node agents still running. */
  get agentPids(): number[] {
    return this.started.filter((r) => r.child.exitCode === null && r.child.signalCode === null && r.child.pid !== undefined).map((r) => r.child.pid!);
  }

  /**
   * Waits (at most `goneTimeoutMs`) until every pid of `formerId` has exited, SIGKILLing them
   * then if not, waits replaceAfterMs, and starts a new node. Never rejects.
   */
  async replace(formerId: string, pids: readonly number[], goneTimeoutMs: number, takenIds: () => ReadonlySet<string>): Promise<ReplaceResult> {
    this.pending += 1;
    const notes: string[] = [];
    try {
      const until = Date.now() + goneTimeoutMs;
      while (pids.some(isAlive) && Date.now() < until && !this.stopping.signal.aborted) await sleep(GONE_POLL_MS, this.stopping.signal);
      if (this.stopping.signal.aborted) return { replacement: null, notes };
      const left = pids.filter(isAlive);
      if (left.length > 0) {
        notes.push(`${formerId} still had pids ${left.join(', ')} ${Math.round(goneTimeoutMs / 1000)} s after the event: killed them`);
        for (const pid of left) sendSignal(pid, 'SIGKILL');
      }
      await sleep(this.o.replaceAfterMs, this.stopping.signal);
      if (this.stopping.signal.aborted) return { replacement: null, notes };
      const taken = takenIds();
      let nodeId = `chaos-${this.next++}`;
      while (taken.has(nodeId)) nodeId = `chaos-${this.next++}`;
      await this.start(nodeId);
      this.o.print(`started ${nodeId} in place of ${formerId}`);
      return { replacement: nodeId, notes };
    } finally {
      this.pending -= 1;
    }
  }

  private async start(nodeId: string): Promise<void> {
    const securityArgs = await this.o.security.nodeArgs(nodeId);
    const snapshotDir = join(this.shmBase, `ftrain-chaos-${process.pid}-${nodeId}`);
    // Its own process group, so that its worker and snapshot manager can be killed with it; stdin
    // is a pipe never written: if chaos dies, it closes and the node ends (FTRAIN_MANAGED).
    const child = spawn(
      process.execPath,
      [FTRAIN_BIN, 'node', '--coordinator', this.o.coordinator, '--node-id', nodeId, '--listen', listenAddress(this.o.coordinator), '--snapshot-dir', snapshotDir, '--log-file', this.o.logFile, ...securityArgs],
      { detached: true, stdio: ['pipe', this.o.outputFd, this.o.outputFd], env: { ...process.env, ...this.o.security.env, FTRAIN_MANAGED: '1' } },
    );
    child.on('error', (err) => this.o.print(`${nodeId} could not start: ${err.message}`));
    this.started.push({ nodeId, child, snapshotDir, startedAtMs: Date.now(), settled: false });
  }

  /**
   * True when no replacement is waiting to start and every one started has registered (or
   * exited, or was given up on after JOIN_TIMEOUT_MS); its notes say which were given up on.
   */
  settled(status: ClusterStatus, notes: string[]): boolean {
    if (this.pending > 0) return false;
    for (const r of this.started) {
      if (r.settled) continue;
      const known = status.nodes.find((n) => n.nodeId === r.nodeId);
      const exited = r.child.exitCode !== null || r.child.signalCode !== null;
      if ((known && isLive(known.state)) || exited) {
        r.settled = true;
      } else if (Date.now() - r.startedAtMs > JOIN_TIMEOUT_MS) {
        r.settled = true;
        notes.push(`${r.nodeId} did not register with the coordinator within ${JOIN_TIMEOUT_MS / 1000} s`);
      } else {
        return false;
      }
    }
    return true;
  }

  /**
   * Ends every replacement: `signal` first (SIGTERM: a preemption notice, the node hands its
   * stage over; null: none, they were told to stop), SIGKILL to the process groups of those left
   * after `waitMs`; then removes their snapshot directories. Bounded by waitMs + 5 s.
   */
  async stop(signal: NodeJS.Signals | null, waitMs: number): Promise<string[]> {
    this.stopping.abort();
    const notes: string[] = [];
    const running = () => this.started.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
    if (signal) for (const r of running()) r.child.kill(signal);
    const until = Date.now() + waitMs;
    while (running().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, GONE_POLL_MS));
    const left = running();
    if (left.length > 0) notes.push(`replacement node(s) ${left.map((r) => r.nodeId).join(', ')} still ran ${Math.round(waitMs / 1000)} s after chaos ended: killed`);
    for (const r of left) sendSignal(-r.child.pid!, 'SIGKILL');
    const killUntil = Date.now() + 5000;
    while (this.started.some((r) => r.child.pid !== undefined && isGroupAlive(r.child.pid)) && Date.now() < killUntil) {
      for (const r of this.started) if (r.child.pid !== undefined && isGroupAlive(r.child.pid)) sendSignal(-r.child.pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, GONE_POLL_MS));
    }
    this.removeDirs();
    return notes;
  }

  /** For a process exit handler: kills every group, removes every directory, now. */
  killNow(): void {
    this.stopping.abort();
    for (const r of this.started) if (r.child.pid !== undefined) sendSignal(-r.child.pid, 'SIGKILL');
    this.removeDirs();
  }

  private removeDirs(): void {
    for (const r of this.started) rmSync(r.snapshotDir, { recursive: true, force: true });
  }
}
