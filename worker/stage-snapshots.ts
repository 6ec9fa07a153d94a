// The worker's side of the in-memory snapshots: the slot directory its snapshot manager owns,
// the lazy asynchronous copy of each step's state into it (a writer thread writes the slot while
// the next step computes; the next optimizer update waits for the commit), and restoring a
// committed snapshot into the stage.

import type { SnapshotHeader } from '../domain/snapshot-slots.ts';
import { SnapshotSlots } from '../domain/snapshot-slots.ts';
import { errorMessage } from '../domain/errors.ts';
import type { Logger } from '../common/logging.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { FaultPoint, WorkerFaults } from './fault-port.ts';
import { SnapshotWriter } from './snapshot-writer.ts';
import { importStageState } from './stage-state.ts';
import type { StageTrainer } from './stage-trainer.ts';

/**
 * Where each step's state is copied out of tfjs: two buffers made and touched once per stage (at
 * its assignment, off the training loop), used in turn. A buffer goes back when the writer thread
 * has sealed the snapshot it holds; with both still in use, a fresh buffer serves that step.
 */
export class StagingBuffers {
  private readonly free: SharedArrayBuffer[] = [];
  private bytes = 0;

  /** Makes and touches both buffers for states of `bytes` bytes (again only when that changes). */
  prepare(bytes: number): void {
    if (bytes === this.bytes && this.free.length > 0) return;
    this.bytes = bytes;
    this.free.length = 0;
    for (let i = 0; i < 2; i++) {
      const buffer = new SharedArrayBuffer(bytes);
      // Written once now, so the copy on the training loop finds its pages mapped.
      new Uint8Array(buffer).fill(0);
      this.free.push(buffer);
    }
  }

  /** A buffer of `bytes` bytes no write still reads, or a fresh one. */
  take(bytes: number): ArrayBuffer | SharedArrayBuffer {
    return bytes === this.bytes ? (this.free.pop() ?? new ArrayBuffer(bytes)) : new ArrayBuffer(bytes);
  }

  /** A buffer the writer has sealed: it may be written again. */
  give(buffer: ArrayBuffer | SharedArrayBuffer): void {
    if (buffer instanceof SharedArrayBuffer && buffer.byteLength === this.bytes && this.free.length < 2) this.free.push(buffer);
  }
}

/** Figures of the last snapshot, sent with the next step report. */
export interface SnapshotFigures {
  step: number;
  stallMs: number;
  copyMs: number;
  bytes: number;
}

export class StageSnapshots {
  readonly slots: SnapshotSlots;
  private writer: SnapshotWriter | null = null;
  /** The snapshot being written, awaited before the next optimizer update. */
  private pending: Promise<void> | null = null;
  last: SnapshotFigures = { step: -1, stallMs: 0, copyMs: 0, bytes: 0 };
  /** Where each snapshot's state is copied out of tfjs. */
  readonly staging = new StagingBuffers();

  constructor(
    dir: string,
    slotCount: number,
    private readonly faults: WorkerFaults,
    private readonly log: Logger,
  ) {
    this.slots = new SnapshotSlots(dir, slotCount);
  }

  get writing(): boolean {
    return this.writer !== null;
  }

  /** Committed snapshots the slot directory holds: the stage they belong to and their steps. */
  held(): { stage: number; steps: number[] } | null {
    const records = this.slots.records();
    if (records.length === 0) return null;
    const stage = records.at(-1)!.header.stage;
    return { stage, steps: records.filter((r) => r.header.stage === stage).map((r) => r.step) };
  }

  /** Starts the writer thread (once), for a job that snapshots. */
  startWriter(job: JobOptions): void {
    this.writer ??= new SnapshotWriter(this.slots.dir, this.slots.slotCount, this.faults.writerThreadHooks(job));
  }

  /** Loads the stage's committed snapshot of `step`; later snapshots belong to an abandoned timeline. */
  restore(trainer: StageTrainer, step: number): void {
    const record = this.slots.find(step);
    if (!record) throw new Error(`no committed snapshot of step ${step} in ${this.slots.dir}`);
    const started = performance.now();
    importStageState(trainer, record.header, this.slots.read(record));
    this.slots.dropAfter(step);
    this.last = { step, stallMs: 0, copyMs: 0, bytes: record.bytes };
    this.log.info({ step, bytes: record.bytes, ms: performance.now() - started }, 'restored snapshot');
  }

  /** A fresh start: snapshots of an earlier run must never be restored. */
  destroy(): void {
    this.slots.destroy();
  }

  /**
   * Starts the lazy snapshot of the state after the step just completed. The caller copied it
   * out of tfjs (the weights are between updates; `exportMs` counts toward the stall); the
   * buffer is transferred to the writer thread, which writes the slot while the next step
   * computes, and the next update waits for its commit.
   */
  take(state: { header: SnapshotHeader; buffer: ArrayBuffer | SharedArrayBuffer }, at: FaultPoint, epoch: number, exportMs: number, protectedCommitStep: number): void {
    const writer = this.writer;
    if (!writer) return;
    const t0 = performance.now();
    const { buffer } = state;
    const header: SnapshotHeader = { ...state.header, epoch };
    const held = this.slots.records().map((r) => r.step);
    // Kept: the newest snapshot, the one before it (the global commit step is one of the two
    // when snapshots stay local), and the protected commit step (erasure-coded by every stage).
    const protectedSteps = [...held.slice(-2), protectedCommitStep];
    const figures: SnapshotFigures = { step: this.last.step, stallMs: 0, copyMs: 0, bytes: buffer.byteLength };
    const started = performance.now();
    const write = (async () => {
      await this.faults.beforeSnapshot(at);
      const pendingWrite = writer.write(header, [buffer], protectedSteps);
      // The staging buffer is read until the checksum is sealed in; then it may take a new state.
      void pendingWrite.sealed.finally(() => this.staging.give(buffer)).catch(() => undefined);
      const { record } = await pendingWrite.committed;
      figures.step = record.step;
      figures.copyMs = performance.now() - started;
      this.last = figures;
    })().catch((err: unknown) => {
      // Training goes on; the stage's committed step (and so the global one) stays behind, which
      // the progress output and the report show.
      this.log.error({ err: errorMessage(err), step: header.step }, 'snapshot failed');
    });
    figures.stallMs = exportMs + performance.now() - t0;
    const pending: Promise<void> = write.finally(() => {
      if (this.pending === pending) this.pending = null;
    });
    this.pending = pending;
  }

  /** Right before an optimizer update: the previous snapshot's copy must be complete (its wait counts as stall). */
  async beforeUpdate(): Promise<void> {
    if (!this.pending) return;
    const t0 = performance.now();
    await this.pending;
    this.last.stallMs += performance.now() - t0;
  }

  /** Waits for the snapshot under way, whatever becomes of it. */
  async settle(): Promise<void> {
    await this.pending?.catch(() => undefined);
  }

  close(): void {
    void this.writer?.close();
  }
}
