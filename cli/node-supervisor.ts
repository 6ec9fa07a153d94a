// `ftrain node`: the node agent. Owns the node's snapshot directory (snapshot-dir-lock.ts), runs
// the node's snapshot manager and its worker as separate processes, restarts a crashed worker
// beside the snapshots (the SMP outlives it), and treats the death of the SMP as the loss of the
// node. A worker that exits with a code of FINAL_WORKER_EXITS (fenced, refused, coordinator
// unreachable or unresolvable) is not restarted: a new one would be turned away the same way, so
// the node ends at once with that code and the worker's exit note as its one line. On Kubernetes
// the kubelet plays this part and runs `ftrain worker` and `ftrain snapshot-manager` as two
// containers.
//
// A warm standby (unless `standby` is off): once the active worker trains, the agent starts a
// second worker with the same flags and `--standby` (agent-channel.ts): it loads
// everything and initialises the tfjs backend, then waits without listening or registering. When
// the active worker crashes, the standby is told to take over at once (no RESTART_DELAY_MS, no
// process or tfjs start): it listens, registers with the snapshots of this node, and is restored
// as a restarted worker would be. A promotion counts as a restart. With no live standby, the
// worker is restarted as before. The standby goes whenever the node ends or departs.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import type { Readable } from 'node:stream';
import type { Logger } from '../common/logging.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { EXIT_USAGE, EXIT_FENCED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED, FINAL_WORKER_EXITS } from '../domain/exit-codes.ts';
import { EXIT_NOTE_FD, EXIT_NOTE_FD_ENV, LISTEN_FLAG_ENV, exitNoteOf } from './join-failure.ts';
import { SnapshotDirLock } from './snapshot-dir-lock.ts';
import { AGENT_CHANNEL_STDIO, SUCCESSOR_ENV, tellTakeOver, workerMessageOf, type WorkerMessage } from './agent-channel.ts';

/** Pause before a crashed worker is started again. */
export const RESTART_DELAY_MS = 50;
/** How long the agent waits, after the worker exited, for the rest of its exit note. */
const EXIT_NOTE_WAIT_MS = 1000;

/** What the node says when a worker exited with a final code but left no note (it was killed, say). */
const FINAL_EXIT_WORDS: Readonly<Record<number, string>> = {
  [EXIT_USAGE]: 'the worker refused its options (see the line above)',
  [EXIT_FENCED]: 'the coordinator declared this node lost (fenced): it leaves the job',
  [EXIT_REFUSED]: 'the coordinator refused this node',
  [EXIT_UNREACHABLE]: 'the coordinator could not be reached',
  [EXIT_UNRESOLVED]: "the coordinator's host name does not resolve",
};

/** How the node ended: its exit code, and the one line that says why when it was turned away. */
export interface NodeEnd {
  readonly code: number;
  readonly reason: string | null;
}

export interface SupervisorOptions {
  readonly nodeId: string;
  /** Flags for `ftrain worker` (without --snapshot-dir). */
  readonly workerArgs: readonly string[];
  /** Flags for `ftrain snapshot-manager` (its listen address). */
  readonly smpArgs: readonly string[];
  readonly snapshotDir: string;
  readonly maxRestarts: number;
  /** Keep a warm standby worker that takes over when the worker crashes. */
  readonly standby: boolean;
  readonly logLevel: string;
  readonly logger: Logger;
}

/** A worker process of this agent: the active one, or the standby waiting to take over. */
interface WorkerProcess {
  readonly child: ChildProcess;
  readonly exitNote: (waitMs: number) => Promise<string | null>;
  /** A standby that said it is warm (and listens for `take-over`). */
  ready: boolean;
  /** A standby promoted before it was ready: told to take over as soon as it is. */
  takeOverPending: boolean;
}

function running(c: ChildProcess): boolean {
  return c.exitCode === null && c.signalCode === null;
}

function describeExit(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ? `killed by ${signal}` : `exit code ${code}`;
}

export class NodeSupervisor {
  private smp: ChildProcess | null = null;
  private worker: WorkerProcess | null = null;
  private standby: WorkerProcess | null = null;
  /** When the last worker died (performance.now()), until its successor has registered; how it came. */
  private replacing: { readonly diedAtMs: number; readonly via: 'standby' | 'restart' } | null = null;
  private restarts = 0;
  private ending = false;
  private departing = false;
  private lock: SnapshotDirLock | null = null;
  private finalWords: string | null = null;
  private finish!: (end: NodeEnd) => void;
  readonly done = new Promise<NodeEnd>((resolve) => (this.finish = resolve));

  constructor(private readonly o: SupervisorOptions) {}

  private spawnChild(args: string[], exitNote = false, extraEnv: NodeJS.ProcessEnv = {}, channel = false, ownGroup = false): ChildProcess {
    // stdin is a pipe that is never written: the child exits when it closes (this process died).
    // The worker and the snapshot manager get a pipe more, for their exit note; a worker also the
    // channel to this agent (agent-channel.ts).
    const env: NodeJS.ProcessEnv = { ...process.env, ...extraEnv, FTRAIN_MANAGED: '1', FTRAIN_NODE_AGENT_PID: String(process.pid) };
    if (exitNote) env[EXIT_NOTE_FD_ENV] = String(EXIT_NOTE_FD);
    const stdio: StdioOptions = exitNote ? ['pipe', 'inherit', 'inherit', 'pipe'] : ['pipe', 'inherit', 'inherit'];
    if (channel) stdio.push(AGENT_CHANNEL_STDIO);
    // `ownGroup`: a process group of its own, out of reach of a terminal's Ctrl-C to the group
    // (which a managed process ignores only once its code runs; a standby may still be loading).
    return spawn(process.execPath, [FTRAIN_BIN, ...args], { stdio, env, detached: ownGroup });
  }

  /**
   * Claims the snapshot directory, then starts the snapshot manager and the worker. Throws
   * SnapshotDirTakenError (nothing started, nothing touched) when a live agent owns the directory.
   */
  start(): void {
    this.lock = SnapshotDirLock.claim(this.o.snapshotDir, this.o.nodeId);
    // Its address is the node's --listen host and --snapshot-manager-port: a refusal names that flag.
    const smp = this.spawnChild(['snapshot-manager', '--dir', this.o.snapshotDir, '--log-level', this.o.logLevel, '--node-id', this.o.nodeId, ...this.o.smpArgs], true, { [LISTEN_FLAG_ENV]: '--snapshot-manager-port' });
    this.smp = smp;
    const smpNote = exitNoteOf(smp.stdio[EXIT_NOTE_FD] as Readable);
    smp.on('exit', async (code, signal) => {
      if (this.ending) return;
      if (code === EXIT_USAGE) {
        // It refused its options (its port taken): the node cannot run; a restart would not help.
        const note = await smpNote(EXIT_NOTE_WAIT_MS);
        if (this.ending) return;
        this.finalWords = note ?? 'the snapshot manager refused its options';
        this.end(EXIT_USAGE);
        return;
      }
      this.o.logger.error({ detail: describeExit(code, signal) }, 'snapshot manager died: this node has lost its snapshots');
      this.end(1);
    });
    this.startWorker();
  }

  /** Starts a worker process: the active one, or (`standby`) one that waits to take over. */
  private spawnWorker(standby: boolean): WorkerProcess {
    // A worker started after the last one died (not a standby, which is told at take-over)
    // builds the stage its predecessor held ahead of its assignment.
    const env = !standby && this.restarts > 0 ? { [SUCCESSOR_ENV]: '1' } : {};
    const child = this.spawnChild(['worker', ...this.o.workerArgs, '--snapshot-dir', this.o.snapshotDir, ...(standby ? ['--standby'] : [])], true, env, true, standby);
    const w: WorkerProcess = { child, exitNote: exitNoteOf(child.stdio[EXIT_NOTE_FD] as Readable), ready: false, takeOverPending: false };
    child.on('message', (raw) => {
      const m = workerMessageOf(raw);
      if (m) this.onMessage(w, m);
    });
    child.on('exit', (code, signal) => {
      if (w === this.worker) void this.onWorkerExit(w, code, signal);
      else if (w === this.standby) this.onStandbyExit(code, signal);
    });
    return w;
  }

  private startWorker(): void {
    this.worker = this.spawnWorker(false);
    this.o.logger.info({ pid: this.worker.child.pid, restarts: this.restarts }, 'worker started');
  }

  /**
   * Once the active worker trains: a standby, unless there is one or the node is going. Not
   * sooner: its start would take CPU from the worker's restore and the node's recovery.
   */
  private startStandby(): void {
    if (!this.o.standby || this.standby || this.ending || this.departing) return;
    this.standby = this.spawnWorker(true);
    this.o.logger.debug({ pid: this.standby.child.pid }, 'standby worker started');
  }

  private onMessage(w: WorkerProcess, m: WorkerMessage): void {
    if (m.type === 'standby-ready') {
      w.ready = true;
      this.o.logger.debug({ pid: w.child.pid, warmUpMs: Math.round(m.warmUpMs), rssBytes: m.rssBytes, failure: m.failure }, 'standby worker ready');
      if (w.takeOverPending) this.takeOver(w);
      return;
    }
    if (w !== this.worker) return;
    if (m.type === 'training') {
      this.startStandby();
      return;
    }
    if (this.replacing) {
      // From the death of the last worker to its successor's registration: what a standby saves.
      const afterDeathMs = Math.round(performance.now() - this.replacing.diedAtMs);
      this.o.logger.info({ pid: w.child.pid, address: m.address, via: this.replacing.via, afterDeathMs }, 'worker registered after the last one died');
      this.replacing = null;
    }
  }

  private takeOver(w: WorkerProcess): void {
    w.takeOverPending = false;
    // A failed send means the standby is dying: its exit, as the active worker's, restarts one.
    tellTakeOver(w.child, (err) => this.o.logger.warn({ pid: w.child.pid, err: err.message }, 'could not tell the standby worker to take over'));
  }

  private onStandbyExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.standby = null;
    if (this.ending || this.departing) return;
    // Not started again until a worker starts training anew: a standby that cannot start does not spin.
    this.o.logger.warn({ detail: describeExit(code, signal) }, 'standby worker died; the next worker restart starts cold');
  }

  private async onWorkerExit(w: WorkerProcess, code: number | null, signal: NodeJS.Signals | null): Promise<void> {
    if (this.ending) return;
    if (this.departing) {
      this.end(143);
      return;
    }
    if (code === 0) {
      this.end(0);
      return;
    }
    if (code !== null && FINAL_WORKER_EXITS.has(code)) {
      // Fenced (declared lost while frozen or cut off: its snapshots are stale), refused, or
      // no coordinator to join: a new worker would meet the same, so the node goes now.
      const note = await w.exitNote(EXIT_NOTE_WAIT_MS);
      if (this.ending) return;
      // The note itself is the node's last line (the caller prints it): not logged twice.
      this.o.logger.info({ detail: describeExit(code, signal) }, 'the worker cannot join or rejoin: the node ends');
      this.finalWords = note ?? FINAL_EXIT_WORDS[code] ?? describeExit(code, signal);
      this.end(code);
      return;
    }
    const detail = describeExit(code, signal);
    if (this.restarts >= this.o.maxRestarts) {
      this.o.logger.error({ detail, restarts: this.restarts }, 'worker failed too often; giving up');
      this.end(1);
      return;
    }
    this.restarts += 1;
    const diedAtMs = performance.now();
    const standby = this.standby;
    if (standby && running(standby.child)) {
      this.standby = null;
      this.worker = standby;
      this.replacing = { diedAtMs, via: 'standby' };
      this.o.logger.warn({ detail, restart: this.restarts, pid: standby.child.pid, ready: standby.ready }, 'worker died; its standby takes over beside its snapshots');
      if (standby.ready) this.takeOver(standby);
      else standby.takeOverPending = true;
      return;
    }
    this.replacing = { diedAtMs, via: 'restart' };
    this.o.logger.warn({ detail, restart: this.restarts }, 'worker died; restarting it beside its snapshots');
    setTimeout(() => this.startWorker(), RESTART_DELAY_MS);
  }

  /**
   * A preemption notice (SIGTERM): the worker asks the coordinator to move its stage and exits
   * when told to or when `graceMs` is over; the snapshot manager serves until then (its shards
   * and snapshots are read during the move), and goes with it.
   */
  depart(graceMs: number): void {
    if (this.ending || this.departing) return;
    const worker = this.worker?.child;
    if (!worker || !running(worker) || graceMs <= 0) {
      this.end(143);
      return;
    }
    this.departing = true;
    this.o.logger.warn({ graceMs }, 'preemption notice: the worker hands its stage over');
    worker.kill('SIGTERM');
    // A standby has nothing to hand over, and no stage left to take over here.
    this.standby?.child.kill('SIGKILL');
    // The worker exits by itself within the grace period; if not, everything goes now.
    setTimeout(() => this.end(143, 0), graceMs + 1000).unref();
  }

  /**
   * Stops every process (worker, standby, snapshot manager), removes the node's snapshot
   * directory if this agent still owns it (the node is leaving; a killed manager cannot do it)
   * and settles `done`.
   */
  end(code: number, graceMs = 3000): void {
    if (this.ending) return;
    this.ending = true;
    const workers = [this.worker?.child, this.standby?.child].filter((c): c is ChildProcess => !!c && running(c));
    const alive = [...workers, ...(this.smp && running(this.smp) ? [this.smp] : [])];
    // The workers go at once: SIGTERM would be a preemption notice, a handover this node can no
    // longer make (its snapshot manager is gone, or the node is ending). The snapshot manager
    // gets SIGTERM and removes its slots; SIGKILL follows after `graceMs`.
    for (const w of workers) w.kill('SIGKILL');
    if (this.smp && alive.includes(this.smp)) this.smp.kill('SIGTERM');
    const timer = setTimeout(() => alive.forEach((c) => c.kill('SIGKILL')), graceMs);
    void Promise.all(alive.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r(null) : c.once('exit', r))))).then(() => {
      clearTimeout(timer);
      this.lock?.removeDir();
      this.finish({ code, reason: this.finalWords });
    });
  }
}
