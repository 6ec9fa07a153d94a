// The disk tier: durable checkpoints of one stage (write, fsync, atomic rename), the baseline
// in-memory snapshots are measured against and the last resort when every copy in RAM is gone.

import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CHECKPOINT_README_FILE, checkpointBaseOf, completeCheckpointSteps, stageDirOf, writeCheckpointManifest } from '../common/checkpoint-dir.ts';
import { checkpointManifestOf } from '../domain/checkpoint-manifest.ts';
import { ProtocolError } from '../domain/errors.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { CorruptSnapshotError, writeFileDurably, type SnapshotHeader } from '../domain/snapshot-slots.ts';
import { importStageState } from './stage-state.ts';
import type { StageTrainer } from './stage-trainer.ts';

/** Checkpoints kept per stage. */
export const CHECKPOINTS_KEPT = 2;

interface CheckpointRecord {
  readonly step: number;
  readonly bytes: number;
  readonly crc32: number;
  readonly header: SnapshotHeader;
}

export class DiskCheckpoints {
  readonly dir: string;

  constructor(
    root: string,
    readonly stage: number,
  ) {
    this.dir = stageDirOf(root, stage);
    mkdirSync(this.dir, { recursive: true });
  }

  private base(step: number): string {
    return checkpointBaseOf(this.dir, step);
  }

  /** Steps with a complete checkpoint (its record is renamed into place last). */
  steps(): number[] {
    return completeCheckpointSteps(this.dir);
  }

  /** Writes and fsyncs the data, then the record; returns the time the caller was blocked. */
  write(header: SnapshotHeader, data: Uint8Array): number {
    const started = performance.now();
    const base = this.base(header.step);
    writeFileDurably(`${base}.bin`, [data]);
    const record: CheckpointRecord = { step: header.step, bytes: data.byteLength, crc32: crc32(data), header };
    writeFileDurably(`${base}.json.tmp`, [Buffer.from(JSON.stringify(record))]);
    renameSync(`${base}.json.tmp`, `${base}.json`);
    for (const old of this.steps().slice(0, -CHECKPOINTS_KEPT)) {
      rmSync(`${this.base(old)}.json`, { force: true });
      rmSync(`${this.base(old)}.bin`, { force: true });
    }
    return performance.now() - started;
  }

  read(step: number): { header: SnapshotHeader; data: Buffer } {
    const base = this.base(step);
    const record = JSON.parse(readFileSync(`${base}.json`, 'utf8')) as CheckpointRecord;
    const data = readFileSync(`${base}.bin`);
    if (data.length !== record.bytes || crc32(data) !== record.crc32) {
      throw new CorruptSnapshotError(-1, step, `disk checkpoint ${base}.bin does not match its record`);
    }
    return { header: record.header, data };
  }

  /**
   * Loads checkpoint `step` into `trainer`, a replica of this stage: a checkpoint is of a stage,
   * whichever replica wrote it, and every replica of the stage loads it. ProtocolError for a
   * checkpoint of another stage. Returns its bytes and the time it took.
   */
  restore(trainer: StageTrainer, step: number): { bytes: number; ms: number } {
    const started = performance.now();
    const { header, data } = this.read(step);
    if (header.stage !== this.stage) throw new ProtocolError(`disk checkpoint ${step} in ${this.dir} is of stage ${header.stage}, not ${this.stage}`);
    importStageState(trainer, { ...header, stage: trainer.slot }, data);
    return { bytes: data.length, ms: performance.now() - started };
  }
}

/**
 * Leaves a marker so a person can tell what the directory is and, when the job writes
 * checkpoints, the manifest of the job, which the coordinator checks the next resume against
 * (common/checkpoint-dir.ts). A job that only resumes (no --checkpoint-every) writes no manifest,
 * so it can resume from a directory it cannot write once the marker is there.
 */
export function describeCheckpointDir(root: string, job: JobOptions, dataSha256: string | null): void {
  mkdirSync(root, { recursive: true });
  const readme = join(root, CHECKPOINT_README_FILE);
  if (!existsSync(readme)) writeFileSync(readme, 'ftrain disk checkpoints: job.json (the job), stage-N/step-S.{bin,json}; start `ftrain run --checkpoint-dir` with this directory to resume.\n');
  if (job.checkpointEvery > 0) writeCheckpointManifest(root, checkpointManifestOf(job, dataSha256));
}
