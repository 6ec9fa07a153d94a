// `ftrain node`: the node agent. Runs the node's snapshot manager and its worker as separate
// processes, restarts a crashed worker beside the snapshots (the SMP outlives it), and treats
// the death of the SMP as the loss of the node. On Kubernetes the kubelet plays this part and
// runs `ftrain worker` and `ftrain snapshot-manager` as two containers.

import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Logger } from '../common/logging.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { EXIT_FENCED } from '../domain/exit-codes.ts';

/** Pause before a crashed worker is started again. */
export const RESTART_DELAY_MS = 50;

export interface SupervisorOptions {
  readonly nodeId: string;
  /** Flags for `ftrain worker` (without --snapshot-dir). */
  readonly workerArgs: readonly string[];
  /** Flags for `ftrain snapshot-manager` (its listen address). */
  readonly smpArgs: readonly string[];
  readonly snapshotDir: string;
  readonly maxRestarts: number;
  readonly logLevel: string;
  readonly logger: Logger;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

export class NodeSupervisor {
  private smp: ChildProcess | null = null;
  private worker: ChildProcess | null = null;
  private restarts = 0;
  private ending = false;
  private departing = false;
  private finish!: (code: number) => void;
  readonly done = new Promise<number>((resolve) => (this.finish = resolve));

  constructor(private readonly o: SupervisorOptions) {}

  private spawnChild(args: string[]): ChildProcess {
    // stdin is a pipe that is never written: the child exits when it closes (this process died).
    return spawn(process.execPath, [FTRAIN_BIN, ...args], { stdio: ['pipe', 'inherit', 'inherit'], env: { ...process.env, FTRAIN_MANAGED: '1', FTRAIN_NODE_AGENT_PID: String(process.pid) } });
  }

  start(): void {
    this.smp = this.spawnChild(['snapshot-manager', '--dir', this.o.snapshotDir, '--log-level', this.o.logLevel, '--node-id', this.o.nodeId, ...this.o.smpArgs]);
    this.smp.on('exit', (code, signal) => {
      if (this.ending) return;
      this.o.logger.error({ detail: describeExit(code, signal) }, 'snapshot manager died: this node has lost its snapshots');
      this.end(1);
    });
    this.startWorker();
  }

  private startWorker(): void {
    const worker = this.spawnChild(['worker', ...this.o.workerArgs, '--snapshot-dir', this.o.snapshotDir]);
    this.worker = worker;
    this.o.logger.info({ pid: worker.pid, restarts: this.restarts }, 'worker started');
    worker.on('exit', (code, signal) => {
      if (this.ending) return;
      if (this.departing) {
        this.end(143);
        return;
      }
      if (code === 0) {
        this.end(0);
        return;
      }
      if (code === EXIT_FENCED) {
        // Declared lost while frozen or cut off: its snapshots are stale; the node goes.
        this.o.logger.error({ detail: describeExit(code, signal) }, 'worker fenced by the coordinator: this node leaves the job');
        this.end(EXIT_FENCED);
        return;
      }
      const detail = describeExit(code, signal);
      if (this.restarts >= this.o.maxRestarts) {
        this.o.logger.error({ detail, restarts: this.restarts }, 'worker failed too often; giving up');
        this.end(1);
        return;
      }
      this.restarts += 1;
      this.o.logger.warn({ detail, restart: this.restarts }, 'worker died; restarting it beside its snapshots');
      setTimeout(() => this.startWorker(), RESTART_DELAY_MS);
    });
  }

  /**
   * A preemption notice (SIGTERM): the worker asks the coordinator to move its stage and exits
   * when told to or when `graceMs` is over; the snapshot manager serves until then (its shards
   * and snapshots are read during the move), and goes with it.
   */
  depart(graceMs: number): void {
    if (this.ending || this.departing) return;
    const worker = this.worker;
    if (!worker || worker.exitCode !== null || worker.signalCode !== null || graceMs <= 0) {
      this.end(143);
      return;
    }
    this.departing = true;
    this.o.logger.warn({ graceMs }, 'preemption notice: the worker hands its stage over');
    worker.kill('SIGTERM');
    // The worker exits by itself within the grace period; if not, everything goes now.
    setTimeout(() => this.end(143, 0), graceMs + 1000).unref();
  }

  /**
   * Stops both processes, removes the node's snapshots
   * (the node is leaving; a killed manager cannot do it) and settles `done`.
   */
  end(code: number, graceMs = 3000): void {
    if (this.ending) return;
    this.ending = true;
    const alive = [this.worker, this.smp].filter((c): c is ChildProcess => !!c && c.exitCode === null && c.signalCode === null);
    // The worker goes at once: SIGTERM would be a preemption notice, a handover this node can no
    // longer make (its snapshot manager is gone, or the node is ending). The snapshot manager
    // gets SIGTERM and removes its slots; SIGKILL follows after `graceMs`.
    if (this.worker && alive.includes(this.worker)) this.worker.kill('SIGKILL');
    if (this.smp && alive.includes(this.smp)) this.smp.kill('SIGTERM');
    const timer = setTimeout(() => alive.forEach((c) => c.kill('SIGKILL')), graceMs);
    void Promise.all(alive.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))))).then(() => {
      clearTimeout(timer);
      rmSync(this.o.snapshotDir, { recursive: true, force: true });
      this.finish(code);
    });
  }
}
