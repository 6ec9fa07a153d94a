// The worker's side of the in-memory snapshots: the slot directory its snapshot manager owns,
// the copy of each step's state into it (one copy, on the training loop, into a slot whose pages
// are in place; a writer thread commits and seals it while the next step computes, and the next
// optimizer update waits for the commit), and restoring a committed snapshot into the stage.

import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SnapshotHeader, SnapshotRecord } from '../domain/snapshot-slots.ts';
import { IN_PLACE_SLOTS, SnapshotSlots, stepsToKeep } from '../domain/snapshot-slots.ts';
import { errorMessage } from '../domain/errors.ts';
import type { Logger } from '../common/logging.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { FaultPoint, WorkerFaults } from './fault-port.ts';
import { SnapshotWriter } from './snapshot-writer.ts';
import { importStageState, importedInPlace, inPlaceTargets, stageStateLayout, stageStateViews } from './stage-state.ts';
import type { StageTrainer } from './stage-trainer.ts';
import type { ShareSource } from '../domain/commands.ts';
import { shareRange, sliceChunks } from '../domain/share-layout.ts';
import { gatherShares, type ShareFetch } from './share-restore.ts';

/** Figures of the last snapshot, sent with the next step report. */
export interface SnapshotFigures {
  step: number;
  stallMs: number;
  copyMs: number;
  bytes: number;
}

/** The stage a node's worker holds, for its successor (StageSnapshots.rememberAssignment). */
export interface RememberedAssignment {
  readonly stage: number;
  readonly job: JobOptions;
  readonly dataSha256: string | null;
}

const ASSIGNMENT_FILE = 'stage-assignment.json';

/** Where a restore finds the stage's other shares of its step (share-restore.ts), and how it asks. */
export interface ShareSources {
  readonly sources: readonly ShareSource[];
  readonly fetch: ShareFetch;
  /** The one source serves the whole state (a live replica's worker, Worker.FetchState): this node's own share is not used. */
  readonly whole?: boolean;
}

export class StageSnapshots {
  readonly slots: SnapshotSlots;
  private writer: SnapshotWriter | null = null;
  /** The snapshot being written, awaited before the next optimizer update. */
  private pending: Promise<void> | null = null;
  last: SnapshotFigures = { step: -1, stallMs: 0, copyMs: 0, bytes: 0 };
  /** The slots' preparation under way, if any. */
  private preparing: Promise<void> | null = null;
  /**
   * The stage and step whose snapshot was last taken from, or restored into, its tensors; null when
   * they were changed otherwise since (CheckFree, a disk checkpoint, a reset). While the stage's
   * completed steps and optimizer steps still equal the snapshot's, its tensors hold exactly the
   * snapshot's values: only an optimizer update changes them.
   */
  private inMemory: { readonly trainer: StageTrainer; readonly step: number; readonly adamT: number } | null = null;
  /** The share of the state this slot snapshots (`--replicas`, sharded); null: the whole state. */
  private share: { readonly index: number; readonly count: number } | null = null;

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

  /**
   * Writes down the stage this node's worker now holds and the job it is built for, beside the
   * slots, so that a worker which replaces it (after a crash) can build the same stage at once.
   */
  rememberAssignment(a: RememberedAssignment): void {
    const path = join(this.slots.dir, ASSIGNMENT_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(a));
    renameSync(`${path}.tmp`, path);
  }

  /** What rememberAssignment wrote, or null (none, or unreadable). */
  rememberedAssignment(): RememberedAssignment | null {
    try {
      const a = JSON.parse(readFileSync(join(this.slots.dir, ASSIGNMENT_FILE), 'utf8')) as RememberedAssignment;
      return Number.isInteger(a.stage) && typeof a.job === 'object' && a.job !== null ? a : null;
    } catch {
      return null;
    }
  }

  /** Starts the writer thread (once), for a job that snapshots. */
  startWriter(job: JobOptions): void {
    this.writer ??= new SnapshotWriter(this.slots.dir, this.slots.slotCount, this.faults.writerThreadHooks(job));
  }

  /**
   * Loads the stage's committed snapshot of `step`; later snapshots belong to an abandoned
   * timeline. A stage whose tensors already hold that snapshot (it took or restored it and has
   * applied no update since: a survivor halted within the next step) keeps them: nothing is read.
   * The bytes are read on the thread pool (SnapshotSlots.readIntoAsync): this thread stays free,
   * and nothing else may use the stage until it settles. Returns whether the snapshot was read.
   */
  async restore(trainer: StageTrainer, step: number, shares: ShareSources | null = null): Promise<boolean> {
    // A stage whose tensors hold the step keeps them (the coordinator names no sources then): with
    // no snapshot of it here (beginRestore), or only its own share of it.
    const local = this.slots.find(step);
    const keeps = (local === null || (local.header.share !== undefined && (shares?.sources.length ?? 0) === 0)) && !trainer.torn && !trainer.unwritten && trainer.completedSteps === step;
    if (keeps && local) return this.keepInMemory(trainer, step, local.bytes);
    if (!keeps && this.restoresFromShares(step, shares?.sources ?? [])) return this.restoreFromShares(trainer, step, shares);
    const { record, held, started } = this.beginRestore(trainer, step);
    if (!held && record) {
      const targets = inPlaceTargets(trainer, record.header);
      if (targets) {
        await this.slots.readIntoAsync(record, targets);
        importedInPlace(trainer, record.header);
      } else {
        importStageState(trainer, record.header, this.slots.read(record));
      }
    }
    return this.endRestore(trainer, step, record, held, started);
  }

  /** A stage whose tensors hold `step` (untorn) and whose slots hold only its own share of it: nothing read. */
  private keepInMemory(trainer: StageTrainer, step: number, ownShareBytes: number): boolean {
    if (!this.holds(trainer, step)) this.inMemory = { trainer, step, adamT: trainer.adam.t };
    this.slots.dropAfter(step);
    this.last = { step, stallMs: 0, copyMs: 0, bytes: ownShareBytes };
    this.log.info({ step }, 'the stage holds the step in memory: kept, no share gathered');
    return false;
  }

  /**
   * restore, reading on this thread: for a repair that must be done before anything else runs.
   * A share cannot be restored alone: its other shares are fetched by `restore`.
   */
  restoreNow(trainer: StageTrainer, step: number): boolean {
    const { record, held, started } = this.beginRestore(trainer, step);
    if (!held && record.header.share) {
      throw new Error(`the snapshot of step ${step} in ${this.slots.dir} is share ${record.header.share.index} of ${record.header.share.count}: it is restored with its other shares, not alone`);
    }
    if (!held && record) {
      const targets = inPlaceTargets(trainer, record.header);
      if (targets) {
        this.slots.readInto(record, targets);
        importedInPlace(trainer, record.header);
      } else {
        importStageState(trainer, record.header, this.slots.read(record));
      }
    }
    return this.endRestore(trainer, step, record, held, started);
  }

  /** Whether a restore of `step` gathers shares: this node's record of it is a share, or `sources` are given and it holds no whole one. */
  restoresFromShares(step: number, sources: readonly ShareSource[]): boolean {
    const local = this.slots.find(step);
    if (local) return local.header.share !== undefined;
    return sources.length > 0;
  }

  /**
   * restore from the shares of `step`: this node's own (if it holds one) and those the sources
   * serve, gathered into one buffer of the whole state (share-restore.ts), then copied into the
   * stage's tensors on this thread with no await between: a stage others can read is never seen
   * half restored, and one whose shares cannot all be had is left as it was. The slots keep only
   * this node's own share; `last` is its record's figures.
   */
  private async restoreFromShares(trainer: StageTrainer, step: number, shares: ShareSources | null): Promise<boolean> {
    const local = this.slots.find(step);
    const own = local && local.header.stage === trainer.slot && !shares?.whole ? local : null;
    const started = performance.now();
    const held = this.holds(trainer, step);
    let wholeBytes = 0;
    if (!held) {
      const gathered = await gatherShares({
        slot: trainer.slot,
        step,
        layout: stageStateLayout(trainer),
        local: own,
        localDir: this.slots.dir,
        readLocal: (record, target) => this.slots.readIntoAsync(record, [target]),
        sources: shares?.sources ?? [],
        fetch: shares?.fetch ?? (() => {
          throw new Error('no way to fetch shares was given');
        }),
      });
      wholeBytes = gathered.data.byteLength;
      const targets = inPlaceTargets(trainer, gathered.header);
      if (targets) {
        let at = 0;
        for (const t of targets) {
          t.set(gathered.data.subarray(at, at + t.byteLength));
          at += t.byteLength;
        }
        importedInPlace(trainer, gathered.header);
      } else {
        importStageState(trainer, gathered.header, gathered.data);
      }
      this.inMemory = { trainer, step, adamT: trainer.adam.t };
    }
    this.slots.dropAfter(step);
    if (own) this.last = { step, stallMs: 0, copyMs: 0, bytes: own.bytes };
    if (held) this.log.info({ step, bytes: own?.bytes ?? 0 }, 'snapshot already in memory: kept, nothing read');
    else this.log.info({ step, bytes: wholeBytes, ownShareBytes: own?.bytes ?? 0, sources: shares?.sources.length ?? 0, ms: performance.now() - started }, 'restored snapshot from its shares');
    return !held;
  }

  /**
   * The record to read, or none when the stage's tensors hold the step already. Without a
   * committed snapshot of the step, a stage whose tensors are whole at that step keeps them: the
   * live replicas go on from the step they hold in memory (ReportHalted's memory_step).
   */
  private beginRestore(trainer: StageTrainer, step: number): { record: SnapshotRecord; held: boolean; started: number } | { record: null; held: true; started: number } {
    const record = this.slots.find(step);
    const started = performance.now();
    if (!record) {
      if (!trainer.torn && !trainer.unwritten && trainer.completedSteps === step) return { record: null, held: true, started };
      throw new Error(`no committed snapshot of step ${step} in ${this.slots.dir}`);
    }
    return { record, held: this.holds(trainer, step), started };
  }

  private endRestore(trainer: StageTrainer, step: number, record: SnapshotRecord | null, held: boolean, started: number): boolean {
    const bytes = record?.bytes ?? 0;
    if (!held) this.inMemory = { trainer, step, adamT: trainer.adam.t };
    this.slots.dropAfter(step);
    this.last = { step, stallMs: 0, copyMs: 0, bytes };
    if (!record) this.log.info({ step }, 'the stage holds the step in memory (no snapshot of it): kept, nothing read');
    else if (held) this.log.info({ step, bytes }, 'snapshot already in memory: kept, nothing read');
    else this.log.info({ step, bytes, ms: performance.now() - started }, 'restored snapshot');
    return !held;
  }

  /** Whether the stage's tensors hold its snapshot of `step` as it is (see inMemory). */
  holds(trainer: StageTrainer, step: number): boolean {
    const m = this.inMemory;
    return m !== null && !trainer.torn && m.trainer === trainer && m.step === step && trainer.completedSteps === step && trainer.adam.t === m.adamT;
  }

  /**
   * Whether a committed snapshot of `step` this node can restore alone is held (one a torn stage
   * can go back to): a whole one, not a share.
   */
  hasCommitted(step: number): boolean {
    const record = this.slots.find(step);
    return record !== null && record.header.share === undefined;
  }

  /** The share of the state this slot snapshots from now on (from its assignment); a count of 0 or 1: the whole state. */
  setShare(index: number, count: number): void {
    if (count > 1 && !(Number.isInteger(index) && index >= 0 && index < count)) throw new RangeError(`share ${index} of ${count} does not exist`);
    this.share = count > 1 ? { index, count } : null;
  }

  /** Bytes a snapshot of a state of `wholeBytes` bytes takes in a slot: the share's when sharded. */
  snapshotBytes(wholeBytes: number): number {
    return this.share ? shareRange(wholeBytes, this.share.index, this.share.count).bytes : wholeBytes;
  }

  /** The stage's tensors were changed other than by a step or a snapshot (CheckFree, a checkpoint, a reset). */
  forgetInMemory(): void {
    this.inMemory = null;
  }

  /** A fresh start: snapshots of an earlier run must never be restored. */
  destroy(): void {
    this.slots.destroy();
    this.inMemory = null;
  }

  /**
   * Readies the slots for states of `bytes` bytes (at assignment, off the training loop): up to
   * IN_PLACE_SLOTS slots get their pages now, so a snapshot's copy lands in memory already in place.
   */
  prepare(bytes: number): void {
    const writer = this.writer;
    if (!writer) return;
    // In the writer thread, so a recovery does not wait for it. A slot being prepared must not
    // take a snapshot meanwhile: take() skips until the preparation is done (it takes a fraction
    // of a step).
    const preparing: Promise<void> = writer
      .prepare(bytes, IN_PLACE_SLOTS)
      .catch((err: unknown) => this.log.warn({ err: errorMessage(err) }, 'snapshot slots not prepared'))
      .finally(() => {
        if (this.preparing === preparing) this.preparing = null;
      });
    this.preparing = preparing;
  }

  /**
   * Snapshots the state after the step just completed. The one copy is on the training loop and
   * is the stall: the state goes from the backend (on wasm, straight from its heap) into a slot
   * file on tmpfs, in place, after the slot's commit record was withdrawn. The writer thread then
   * commits the slot and seals it with the checksum of its bytes while the next step computes;
   * the next optimizer update waits for the commit.
   *
   * Kept, never overwritten: the steps recovery may restore (stepsToKeep: every step from the
   * protected commit step on, and the newest). When every slot holds one of those, this step is
   * not snapshotted: the global commit step stays where it is, and a later step is snapshotted
   * once a slot is free again. After the commit, slots beyond IN_PLACE_SLOTS that hold none of
   * them are emptied.
   */
  take(trainer: StageTrainer, gradNorm: number, at: FaultPoint, epoch: number, protectedCommitStep: number): void {
    const writer = this.writer;
    if (!writer) return;
    if (this.preparing) {
      this.log.warn({ step: trainer.completedSteps }, 'snapshot skipped: the slots are still being prepared');
      return;
    }
    const t0 = performance.now();
    const held = this.slots.records().map((r) => r.step);
    const state = stageStateViews(trainer, gradNorm);
    const wholeBytes = state.values.reduce((n, v) => n + v.byteLength, 0);
    const share = this.share;
    const range = share ? shareRange(wholeBytes, share.index, share.count) : null;
    const slot = this.slots.freeSlot(stepsToKeep(held, protectedCommitStep), range ? range.bytes : wholeBytes);
    if (slot === null) {
      this.log.warn({ step: trainer.completedSteps, held, protectedCommitStep }, 'snapshot skipped: every slot holds a step recovery may need');
      return;
    }
    const views = state.values.map((v) => new Uint8Array(v.buffer, v.byteOffset, v.byteLength));
    // Sharded: only the share's range of the whole state's bytes, cut across the tensors' views.
    const header: SnapshotHeader = share && range ? { ...state.header, epoch, share: { index: share.index, count: share.count, offset: range.offset, wholeBytes } } : { ...state.header, epoch };
    const bytes = this.slots.writeData(slot, range ? sliceChunks(views, range.offset, range.bytes) : views);
    this.inMemory = { trainer, step: header.step, adamT: trainer.adam.t };
    const figures: SnapshotFigures = { step: this.last.step, stallMs: performance.now() - t0, copyMs: 0, bytes };
    const started = performance.now();
    const write = (async () => {
      await this.faults.beforeSnapshot(at);
      const { record } = await writer.commit(slot, header, bytes).committed;
      figures.step = record.step;
      figures.copyMs = figures.stallMs + performance.now() - started;
      this.last = figures;
      this.slots.release(stepsToKeep(this.slots.records().map((r) => r.step), protectedCommitStep), IN_PLACE_SLOTS);
    })().catch((err: unknown) => {
      // Training goes on; the stage's committed step (and so the global one) stays behind, which
      // the progress output and the report show.
      this.log.error({ err: errorMessage(err), step: header.step }, 'snapshot failed');
    });
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
