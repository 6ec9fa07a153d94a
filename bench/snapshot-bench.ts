// `ftrain bench snapshot`: what the lazy asynchronous snapshot of DESIGN.md ("Snapshots") costs
// the training loop, against a synchronous disk checkpoint and a plain memcpy of the same bytes,
// all in one run on one synthetic state. Figures are medians over the runs; raw values go along.
//
// The state lives in a SharedArrayBuffer: it stands for state the copy engine can read while
// compute goes on, so the hand-off to the writer thread shares the bytes instead of copying or
// transferring them. The contract is the snapshot's: nothing writes the state between the
// request and the commit (the next optimizer update awaits the commit).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
import { COMPILED, runtimeModule } from '../common/package-root.ts';
import { Prng } from '../domain/prng.ts';
import { DEFAULT_SLOT_COUNT, writeFileDurably, type SnapshotHeader, type SnapshotRecord } from '../domain/snapshot-slots.ts';
import { SnapshotWriter } from '../worker/snapshot-writer.ts';
import { gbps, median, sig } from './stats.ts';

export interface SnapshotBenchOptions {
  readonly stateMb: number;
  readonly runs: number;
  readonly diskDir: string;
  readonly shmDir: string;
  readonly progress: (line: string) => void;
}

const MIB = 1024 * 1024;
/** statfs f_type of tmpfs: a "disk" directory of this type is RAM, not a disk. */
const TMPFS_MAGIC = 0x01021994;
/** Steps per arm of the step-overhead experiment; the first of each arm is warm-up, not timed. */
const STEPS_PER_ARM = 10;
/** The synthetic compute step lasts about this many times the memcpy of the state. */
const COMPUTE_TO_MEMCPY = 10;
/** Floats the compute step works over: small enough to stay in L1, so the step is CPU-bound. */
const COMPUTE_FLOATS = 1024;
/** The synthetic optimizer update writes one float in this many (one per 4 KiB page). */
const UPDATE_STRIDE_FLOATS = 1024;
const SINK_READY_TIMEOUT_MS = 30_000;
const SINK_EXIT_GRACE_MS = 2_000;
const TARGETS = { stallRatioMin: 20, fractionOfMemcpyMin: 0.3, stepOverheadPctMax: 3 } as const;

const SOCKET_SINK = fileURLToPath(runtimeModule(new URL('./socket-sink-process.ts', import.meta.url)));

export interface ShmPathFigures {
  /** Loop blocked per snapshot: from the request until control returns to the loop. */
  readonly stallMs: number;
  /** The same, when the state must first be copied out of its owner into a fresh buffer. */
  readonly stallMsWithCopyOut: number;
  /** From the request until the commit record is written, as the loop sees it. */
  readonly commitMs: number;
  /** State bytes / commitMs. */
  readonly gbps: number;
  /** Time inside the writer thread until the commit: slot file write and commit record. */
  readonly writerMs: number;
  /** After the commit: the writer's crc32 of the bytes, sealed into the record. */
  readonly sealMs: number;
  /** Request to commit of the copy-out variant (SnapshotWriter, buffer transferred). */
  readonly commitMsWithCopyOut: number;
}

export interface SocketPathFigures {
  /** State bytes / time from the request until the sink acked the last byte (sent by a thread). */
  readonly gbps: number;
  /** Loop blocked when a worker thread sends: posting the shared buffer to it. */
  readonly stallMsWorker: number;
  /**
   * Loop blocked when the loop sends itself: until the last byte is handed to the kernel. The
   * send progresses only in the loop's own write() calls, so compute cannot overlap it.
   */
  readonly stallMsInline: number;
  readonly gbpsInline: number;
  /** The child process that received the bytes (gone when the bench returns). */
  readonly sinkPid: number;
}

export interface SnapshotBenchResult {
  readonly stateBytes: number;
  readonly runs: number;
  readonly shmDir: string;
  readonly diskDir: string;
  readonly shmDirIsTmpfs: boolean;
  readonly diskDirIsTmpfs: boolean;
  /** Other load on the machine skews every figure that overlaps threads: it is shown with them. */
  readonly machine: { readonly cpus: number; readonly loadAverage1mBefore: number; readonly loadAverage1mAfter: number };
  readonly stallMs: number;
  readonly stallMsWithCopyOut: number;
  readonly snapshotGBps: number;
  readonly diskStallMs: number;
  readonly diskGBps: number;
  readonly memcpyGBps: number;
  /** diskStallMs / stallMs. */
  readonly stallRatio: number;
  /** snapshotGBps / memcpyGBps. */
  readonly fractionOfMemcpy: number;
  /** (median step with a snapshot every step - median step without) / median without, in %. */
  readonly stepOverheadPct: number;
  readonly stepMsWithout: number;
  readonly stepMsWith: number;
  /** Where the overhead goes: compute slowed by the writer thread, or waiting for the commit. */
  readonly stepBreakdown: {
    readonly computeMsWithout: number;
    readonly computeMsWith: number;
    readonly waitMsWithout: number;
    readonly waitMsWith: number;
  };
  /** What the synthetic compute step was calibrated to: COMPUTE_TO_MEMCPY x the memcpy time. */
  readonly computeMsTarget: number;
  /** crc32 of the state on one thread: what sealing a snapshot costs after its commit. */
  readonly crc32GBps: number;
  readonly paths: { readonly shm: ShmPathFigures; readonly socket: SocketPathFigures };
  readonly chosen: 'shm' | 'socket';
  readonly reason: string;
  readonly targets: {
    readonly stallRatio: { readonly min: number; readonly met: boolean };
    readonly fractionOfMemcpy: { readonly min: number; readonly met: boolean };
    readonly stepOverheadPct: { readonly max: number; readonly met: boolean };
  };
  /** Per-run values (step figures: per-run medians over the timed steps of each arm). */
  readonly raw: Readonly<Record<string, readonly number[]>>;
}

function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}

function isTmpfs(dir: string): boolean {
  return statfsSync(dir).type === TMPFS_MAGIC;
}

/** Undo actions, run last-in first-out at the end, on error too, or at once on a signal. */
class Teardown {
  private readonly steps: { readonly now: () => void; readonly later: () => Promise<void> }[] = [];

  constructor(private readonly progress: (line: string) => void) {}

  /** `now` must be synchronous (it runs in a signal handler); `later` may wait for the effect. */
  add(now: () => void, later: () => Promise<void> = async () => now()): void {
    this.steps.push({ now, later });
  }

  async run(): Promise<void> {
    for (const s of this.steps.splice(0).reverse()) {
      try {
        await s.later();
      } catch (err) {
        this.progress(`bench snapshot: clean-up step failed: ${(err as Error).message}`);
      }
    }
  }

  runNow(): void {
    for (const s of this.steps.splice(0).reverse()) {
      try {
        s.now();
      } catch {
        // exiting on a signal: do as much as can be done
      }
    }
  }
}

/** stateBytes of float32 weights-like values (uniform in +-0.01), not zeros or a pattern. */
function syntheticState(stateBytes: number): { buffer: SharedArrayBuffer; bytes: Uint8Array; floats: Float32Array } {
  const buffer = new SharedArrayBuffer(stateBytes);
  const floats = new Float32Array(buffer);
  const prng = new Prng(0x5eed);
  for (let i = 0; i < floats.length; i++) floats[i] = (prng.next() - 0.5) * 0.02;
  return { buffer, bytes: new Uint8Array(buffer), floats };
}

function stateHeader(step: number, floats: number): SnapshotHeader {
  return { stage: 0, step, tensors: [{ name: 'state', shape: [floats], offset: 0, length: floats }], scalars: {} };
}

/** Starts the sink child process; `listening` resolves once it listens on socketPath. */
function startSocketSink(socketPath: string, stateBytes: number): { child: ChildProcess; listening: Promise<void> } {
  // Compiled, the sink is plain JavaScript; from the sources it needs tsx, resolved here rather
  // than from the child's cwd, so the bench runs from any directory.
  const loader = COMPILED ? [] : ['--import', import.meta.resolve('tsx')];
  const child = spawn(process.execPath, [...loader, SOCKET_SINK, socketPath, String(stateBytes)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const listening = new Promise<void>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error(`the socket sink did not listen within ${SINK_READY_TIMEOUT_MS} ms; stderr: ${stderr}`)), SINK_READY_TIMEOUT_MS);
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('ready\n')) {
        clearTimeout(timer);
        resolvePromise();
      }
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`could not start the socket sink: ${err.message}`, { cause: err }));
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the socket sink exited (code ${code}, signal ${signal}) before listening; stderr: ${stderr}`));
    });
  });
  return { child, listening };
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.stdin?.end(); // the sink exits when its stdin closes
  const timer = setTimeout(() => child.kill('SIGKILL'), SINK_EXIT_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

// Runs in a worker thread (plain JS, evaluated): sends the shared state over its own connection
// to the sink and reports each ack. Sockets cannot move between threads, so it opens its own.
const SOCKET_SENDER_THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const { connect } = require('node:net');
const waiting = [];
const socket = connect(workerData.socketPath, () => parentPort.postMessage({ type: 'ready' }));
socket.on('data', (acks) => { for (let i = 0; i < acks.length; i++) waiting.shift()(); });
socket.on('error', (err) => { throw err; });
parentPort.on('message', (m) => {
  waiting.push(() => parentPort.postMessage({ type: 'acked', id: m.id }));
  socket.write(Buffer.from(m.state));
});
`;

type SenderThreadMessage = { readonly type: 'ready' } | { readonly type: 'acked'; readonly id: number };

/** The socket path with the send on a worker thread: the loop only posts the shared buffer. */
class ThreadSocketSender {
  readonly ready: Promise<void>;
  private readonly thread: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();

  constructor(socketPath: string) {
    this.thread = new Worker(SOCKET_SENDER_THREAD, { eval: true, workerData: { socketPath } });
    this.ready = new Promise((resolve, reject) => {
      this.thread.on('message', (m: SenderThreadMessage) => {
        if (m.type === 'ready') return resolve();
        this.pending.get(m.id)?.resolve();
        this.pending.delete(m.id);
      });
      const fail = (err: Error) => {
        reject(err);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      };
      this.thread.on('error', fail);
      this.thread.on('exit', (code) => fail(new Error(`socket sender thread exited with code ${code}`)));
    });
    this.ready.catch(() => {}); // also observed by send(); a failure is reported there
  }

  /** Resolves when the sink has all the bytes. The state must not change until then. */
  send(state: SharedArrayBuffer): Promise<void> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.thread.postMessage({ id, state });
    });
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}

/** The socket path with the send on the loop's own thread. */
class InlineSocketSender {
  readonly ready: Promise<void>;
  private readonly socket: Socket;
  private readonly waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(socketPath: string) {
    this.socket = connect(socketPath);
    this.ready = new Promise((resolve, reject) => {
      this.socket.once('connect', () => resolve());
      this.socket.on('error', (err) => {
        reject(err);
        for (const w of this.waiting.splice(0)) w.reject(err);
      });
    });
    this.ready.catch(() => {});
    this.socket.on('data', (acks: Buffer) => {
      for (let i = 0; i < acks.length; i++) this.waiting.shift()?.resolve();
    });
  }

  /** `written`: every byte handed to the kernel; `acked`: the sink has them all. */
  send(state: SharedArrayBuffer): { written: Promise<void>; acked: Promise<void> } {
    const acked = new Promise<void>((resolve, reject) => this.waiting.push({ resolve, reject }));
    const written = new Promise<void>((resolve, reject) => this.socket.write(Buffer.from(state), (err) => (err ? reject(err) : resolve())));
    return { written, acked };
  }

  close(): void {
    this.socket.destroy();
  }
}

let computeSink = 0;

/** CPU-bound arithmetic over a small array: the stand-in for a step's forward and backward. */
function computeStep(work: Float64Array, rounds: number): number {
  let acc = 0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < work.length; i++) {
      const x = work[i]!;
      acc += Math.sqrt(x * x + r) / (1 + x * x);
    }
  }
  return acc;
}

/** Rounds of computeStep that last about targetMs on this machine. */
function calibrateRounds(work: Float64Array, targetMs: number): number {
  let rounds = 64;
  for (let i = 0; i < 5; i++) {
    const started = performance.now();
    computeSink += computeStep(work, rounds);
    const ms = performance.now() - started;
    rounds = Math.max(1, Math.round((rounds * targetMs) / Math.max(ms, 0.01)));
  }
  return rounds;
}

/** The stand-in for an optimizer update: writes the state (one float per page). */
function optimizerUpdate(state: Float32Array): void {
  for (let i = 0; i < state.length; i += UPDATE_STRIDE_FLOATS) state[i] = state[i]! * 0.999;
}

/** Medians over the timed steps of one arm. */
interface ArmTimes {
  readonly stepMs: number;
  /** The compute part alone: slower with snapshots only if the writer thread competes for the CPU. */
  readonly computeMs: number;
  /** From the end of compute until the update may run: the wait for the commit, if any. */
  readonly waitMs: number;
}

/**
 * Steps of compute then update, alternating one with a snapshot and one without, so that both
 * arms see the same machine (a shared 2-core VM drifts by more than the effect measured). A step
 * with a snapshot starts it as its compute starts, on the state the previous update left, and
 * waits for it before its own update; a step without yields to the event loop once instead, as
 * that wait does. The first pair is warm-up.
 */
async function stepPairs(
  state: Float32Array,
  work: Float64Array,
  rounds: number,
  snapshot: () => Promise<unknown>,
): Promise<{ withSnapshots: ArmTimes; without: ArmTimes }> {
  const arms = { withSnapshots: { stepMs: [] as number[], computeMs: [] as number[], waitMs: [] as number[] }, without: { stepMs: [] as number[], computeMs: [] as number[], waitMs: [] as number[] } };
  for (let s = 0; s < 2 * STEPS_PER_ARM; s++) {
    const withSnapshot = s % 2 === 0;
    const started = performance.now();
    const pending = withSnapshot ? snapshot() : null;
    computeSink += computeStep(work, rounds);
    const computed = performance.now();
    if (pending) await pending;
    else await nextTurn();
    const waited = performance.now();
    optimizerUpdate(state);
    if (s < 2) continue;
    const arm = withSnapshot ? arms.withSnapshots : arms.without;
    arm.stepMs.push(performance.now() - started);
    arm.computeMs.push(computed - started);
    arm.waitMs.push(waited - computed);
  }
  const times = (a: typeof arms.without): ArmTimes => ({ stepMs: median(a.stepMs), computeMs: median(a.computeMs), waitMs: median(a.waitMs) });
  return { withSnapshots: times(arms.withSnapshots), without: times(arms.without) };
}

export async function runSnapshotBench(o: SnapshotBenchOptions): Promise<SnapshotBenchResult> {
  const teardown = new Teardown(o.progress);
  const onSignal = (signal: NodeJS.Signals) => {
    teardown.runNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await measure(o, teardown);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await teardown.run();
  }
}

async function measure(o: SnapshotBenchOptions, teardown: Teardown): Promise<SnapshotBenchResult> {
  const loadAverage1mBefore = loadavg()[0]!;
  const stateBytes = o.stateMb * MIB;
  const shmDir = resolve(o.shmDir);
  const diskDir = resolve(o.diskDir);
  mkdirSync(shmDir, { recursive: true });
  mkdirSync(diskDir, { recursive: true });
  const shmDirIsTmpfs = isTmpfs(shmDir);
  const diskDirIsTmpfs = isTmpfs(diskDir);
  if (!shmDirIsTmpfs) o.progress(`bench snapshot: warning: ${shmDir} is not tmpfs, so the "in-memory" slots go to a disk`);
  if (diskDirIsTmpfs) o.progress(`bench snapshot: warning: ${diskDir} is tmpfs, so the "disk" checkpoint stays in RAM; pass --disk-dir on a real disk`);

  const shmRunDir = mkdtempSync(join(shmDir, 'ftrain-snapshot-bench-'));
  teardown.add(() => rmSync(shmRunDir, { recursive: true, force: true }));
  const diskRunDir = mkdtempSync(join(diskDir, 'ftrain-snapshot-bench-'));
  teardown.add(() => rmSync(diskRunDir, { recursive: true, force: true }));
  const socketDir = mkdtempSync(join(tmpdir(), 'ftrain-snapshot-sock-'));
  teardown.add(() => rmSync(socketDir, { recursive: true, force: true }));
  const socketPath = join(socketDir, 'sink.sock');
  const checkpointPath = join(diskRunDir, 'checkpoint.bin');

  o.progress(`bench snapshot: ${o.stateMb} MiB state, ${o.runs} run(s); slots in ${shmRunDir}, checkpoint in ${diskRunDir}`);
  const state = syntheticState(stateBytes);
  const floats = state.floats.length;
  const stateCrc = crc32(state.bytes);
  const memcpyTarget = new Uint8Array(stateBytes).fill(1); // touched, so the copy measures copying

  // The state is shared, not transferred: the writer reads it in place while the loop computes.
  const shared = new SnapshotWriter(join(shmRunDir, 'shared'), DEFAULT_SLOT_COUNT);
  teardown.add(
    () => void shared.close(),
    () => shared.close(),
  );
  const copyOutWriter = new SnapshotWriter(join(shmRunDir, 'copy-out'), DEFAULT_SLOT_COUNT);
  teardown.add(
    () => void copyOutWriter.close(),
    () => copyOutWriter.close(),
  );
  const { child: sink, listening } = startSocketSink(socketPath, stateBytes);
  teardown.add(
    () => sink.kill('SIGKILL'),
    () => stopChild(sink),
  );
  await listening;
  const threadSender = new ThreadSocketSender(socketPath);
  teardown.add(
    () => void threadSender.close(),
    () => threadSender.close(),
  );
  const inlineSender = new InlineSocketSender(socketPath);
  teardown.add(() => inlineSender.close());
  await Promise.all([threadSender.ready, inlineSender.ready]);

  const checkRecord = (what: string, record: SnapshotRecord) => {
    if (record.bytes !== stateBytes || record.crc32 !== stateCrc) {
      throw new Error(`${what} sealed ${record.bytes} bytes with crc32 ${record.crc32?.toString(16)}, the state has ${stateBytes} bytes with crc32 ${stateCrc.toString(16)}`);
    }
  };
  const copyOut = () => {
    const copy = new ArrayBuffer(stateBytes);
    new Uint8Array(copy).set(state.bytes);
    return copy;
  };

  // Thread start-up, JIT, and the first write of every slot file (which allocates its tmpfs
  // pages): one-time costs, not what a step pays once snapshots cycle through the slots.
  o.progress('bench snapshot: warm-up');
  let step = 0;
  let copyOutStep = 0;
  for (let slot = 0; slot < DEFAULT_SLOT_COUNT; slot++) {
    checkRecord('the shared-state snapshot', (await shared.write(stateHeader(++step, floats), [state.buffer]).sealed).record);
    checkRecord('the copy-out snapshot', (await copyOutWriter.write(stateHeader(++copyOutStep, floats), [copyOut()]).sealed).record);
  }
  await threadSender.send(state.buffer);
  await inlineSender.send(state.buffer).acked;
  memcpyTarget.set(state.bytes);

  const raw = {
    stallMs: [] as number[],
    snapshotMs: [] as number[],
    writerMs: [] as number[],
    sealMs: [] as number[],
    stallMsWithCopyOut: [] as number[],
    snapshotMsWithCopyOut: [] as number[],
    diskStallMs: [] as number[],
    memcpyMs: [] as number[],
    crc32Ms: [] as number[],
    socketMs: [] as number[],
    socketStallMsWorker: [] as number[],
    socketMsInline: [] as number[],
    socketStallMsInline: [] as number[],
    stepMsWithout: [] as number[],
    stepMsWith: [] as number[],
    computeMsWithout: [] as number[],
    computeMsWith: [] as number[],
    waitMsWithout: [] as number[],
    waitMsWith: [] as number[],
    stepOverheadPct: [] as number[],
  };

  for (let run = 1; run <= o.runs; run++) {
    let t0 = performance.now();
    memcpyTarget.set(state.bytes);
    raw.memcpyMs.push(performance.now() - t0);

    t0 = performance.now();
    const pending = shared.write(stateHeader(++step, floats), [state.buffer]);
    raw.stallMs.push(performance.now() - t0);
    const { commitMs } = await pending.committed;
    raw.snapshotMs.push(performance.now() - t0);
    raw.writerMs.push(commitMs);
    raw.sealMs.push((await pending.sealed).sealMs);

    rmSync(checkpointPath, { force: true });
    t0 = performance.now();
    writeFileDurably(checkpointPath, [state.bytes]);
    raw.diskStallMs.push(performance.now() - t0);

    t0 = performance.now();
    const delivered = threadSender.send(state.buffer);
    raw.socketStallMsWorker.push(performance.now() - t0);
    await delivered;
    raw.socketMs.push(performance.now() - t0);

    t0 = performance.now();
    const inline = inlineSender.send(state.buffer);
    await inline.written;
    raw.socketStallMsInline.push(performance.now() - t0);
    await inline.acked;
    raw.socketMsInline.push(performance.now() - t0);

    t0 = performance.now();
    computeSink += crc32(state.bytes);
    raw.crc32Ms.push(performance.now() - t0);

    o.progress(
      `bench snapshot: run ${run}/${o.runs}: stall ${sig(raw.stallMs.at(-1)!)} ms, commit ${sig(raw.snapshotMs.at(-1)!)} ms; ` +
        `disk ${sig(raw.diskStallMs.at(-1)!)} ms; memcpy ${sig(raw.memcpyMs.at(-1)!)} ms; socket ${sig(raw.socketMs.at(-1)!)} ms`,
    );
  }
  rmSync(checkpointPath, { force: true });

  // Apart from the rest: each copy is a fresh 256 MiB allocation whose garbage collection would
  // otherwise land in the other figures' timings.
  for (let run = 1; run <= o.runs; run++) {
    const t0 = performance.now();
    const pending = copyOutWriter.write(stateHeader(++copyOutStep, floats), [copyOut()]);
    raw.stallMsWithCopyOut.push(performance.now() - t0);
    await pending.committed;
    raw.snapshotMsWithCopyOut.push(performance.now() - t0);
    await pending.sealed;
    o.progress(`bench snapshot: copy-out ${run}/${o.runs}: stall ${sig(raw.stallMsWithCopyOut.at(-1)!)} ms, commit ${sig(raw.snapshotMsWithCopyOut.at(-1)!)} ms`);
  }

  // Step overhead. The state's bytes change from here on (the updates), so it comes last.
  const memcpyMs = median(raw.memcpyMs);
  const computeMsTarget = COMPUTE_TO_MEMCPY * memcpyMs;
  const work = Float64Array.from({ length: COMPUTE_FLOATS }, (_, i) => Math.sin(i));
  const rounds = calibrateRounds(work, computeMsTarget);
  for (let run = 1; run <= o.runs; run++) {
    // The update changes the shared state, so it waits for the seal, not just the commit.
    const snapshotEveryStep = () => shared.write(stateHeader(++step, floats), [state.buffer]).sealed;
    const { withSnapshots: withArm, without: withoutArm } = await stepPairs(state.floats, work, rounds, snapshotEveryStep);
    const without = withoutArm.stepMs;
    const withSnapshots = withArm.stepMs;
    raw.stepMsWithout.push(without);
    raw.stepMsWith.push(withSnapshots);
    raw.computeMsWithout.push(withoutArm.computeMs);
    raw.computeMsWith.push(withArm.computeMs);
    raw.waitMsWithout.push(withoutArm.waitMs);
    raw.waitMsWith.push(withArm.waitMs);
    raw.stepOverheadPct.push(((withSnapshots - without) / without) * 100);
    o.progress(
      `bench snapshot: steps ${run}/${o.runs}: ${sig(without)} ms without snapshots, ${sig(withSnapshots)} ms with one every step ` +
        `(compute ${sig(withoutArm.computeMs)} -> ${sig(withArm.computeMs)} ms, commit wait ${sig(withArm.waitMs)} ms)`,
    );
  }

  const stallMs = median(raw.stallMs);
  const snapshotMs = median(raw.snapshotMs);
  const snapshotGBps = gbps(stateBytes, snapshotMs);
  const diskStallMs = median(raw.diskStallMs);
  const memcpyGBps = gbps(stateBytes, memcpyMs);
  const stallRatio = diskStallMs / stallMs;
  const fractionOfMemcpy = snapshotGBps / memcpyGBps;
  const stepOverheadPct = median(raw.stepOverheadPct);
  const shm: ShmPathFigures = {
    stallMs: sig(stallMs),
    stallMsWithCopyOut: sig(median(raw.stallMsWithCopyOut)),
    commitMs: sig(snapshotMs),
    gbps: sig(snapshotGBps),
    writerMs: sig(median(raw.writerMs)),
    sealMs: sig(median(raw.sealMs)),
    commitMsWithCopyOut: sig(median(raw.snapshotMsWithCopyOut)),
  };
  const socket: SocketPathFigures = {
    gbps: sig(gbps(stateBytes, median(raw.socketMs))),
    stallMsWorker: sig(median(raw.socketStallMsWorker)),
    stallMsInline: sig(median(raw.socketStallMsInline)),
    gbpsInline: sig(gbps(stateBytes, median(raw.socketMsInline))),
    sinkPid: sink.pid ?? -1,
  };
  const chosen = shm.gbps >= socket.gbps ? 'shm' : 'socket';
  const reason =
    chosen === 'shm'
      ? `a committed slot file in ${shmDir} took ${shm.gbps} GB/s (to the commit record; the crc32 is sealed in after it) against ${socket.gbps} GB/s streamed over a Unix socket to another process, for a stall of ${shm.stallMs} ms against ${socket.stallMsWorker} ms.`
      : `streaming over a Unix socket to another process took ${socket.gbps} GB/s against ${shm.gbps} GB/s for a committed slot file in ${shmDir} (to its commit record; the crc32 is sealed in after it), for a stall of ${socket.stallMsWorker} ms against ${shm.stallMs} ms.`;

  return {
    stateBytes,
    runs: o.runs,
    shmDir,
    diskDir,
    shmDirIsTmpfs,
    diskDirIsTmpfs,
    machine: { cpus: availableParallelism(), loadAverage1mBefore: sig(loadAverage1mBefore), loadAverage1mAfter: sig(loadavg()[0]!) },
    stallMs: shm.stallMs,
    stallMsWithCopyOut: shm.stallMsWithCopyOut,
    snapshotGBps: shm.gbps,
    diskStallMs: sig(diskStallMs),
    diskGBps: sig(gbps(stateBytes, diskStallMs)),
    memcpyGBps: sig(memcpyGBps),
    stallRatio: sig(stallRatio),
    fractionOfMemcpy: sig(fractionOfMemcpy),
    stepOverheadPct: sig(stepOverheadPct),
    stepMsWithout: sig(median(raw.stepMsWithout)),
    stepMsWith: sig(median(raw.stepMsWith)),
    stepBreakdown: {
      computeMsWithout: sig(median(raw.computeMsWithout)),
      computeMsWith: sig(median(raw.computeMsWith)),
      waitMsWithout: sig(median(raw.waitMsWithout)),
      waitMsWith: sig(median(raw.waitMsWith)),
    },
    computeMsTarget: sig(computeMsTarget),
    crc32GBps: sig(gbps(stateBytes, median(raw.crc32Ms))),
    paths: { shm, socket },
    chosen,
    reason,
    targets: {
      stallRatio: { min: TARGETS.stallRatioMin, met: stallRatio >= TARGETS.stallRatioMin },
      fractionOfMemcpy: { min: TARGETS.fractionOfMemcpyMin, met: fractionOfMemcpy >= TARGETS.fractionOfMemcpyMin },
      stepOverheadPct: { max: TARGETS.stepOverheadPctMax, met: stepOverheadPct <= TARGETS.stepOverheadPctMax },
    },
    raw: Object.fromEntries(Object.entries(raw).map(([k, xs]) => [k, xs.map(sig)])),
  };
}
