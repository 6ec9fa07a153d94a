// The disk tier: durable checkpoints of one stage (write, fsync, atomic rename), the baseline
// in-memory snapshots are measured against and the last resort when every copy in RAM is gone.

import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { CorruptSnapshotError, writeFileDurably, type SnapshotHeader } from '../domain/snapshot-slots.ts';

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
    this.dir = join(root, `stage-${stage}`);
    mkdirSync(this.dir, { recursive: true });
  }

  private base(step: number): string {
    return join(this.dir, `step-${String(step).padStart(9, '0')}`);
  }

  /** Steps with a complete checkpoint (its record is renamed into place last). */
  steps(): number[] {
    if (!existsSync(this.dir)) return [];
    return readdirSync(this.dir)
      .map((f) => f.match(/^step-(\d+)\.json$/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
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
}

/** Leaves a marker so a person can tell what the directory is. */
export function describeCheckpointDir(root: string): void {
  mkdirSync(root, { recursive: true });
  const readme = join(root, 'README.txt');
  if (!existsSync(readme)) writeFileSync(readme, 'ftrain disk checkpoints: stage-N/step-S.{bin,json}; start `ftrain run --checkpoint-dir` with this directory to resume.\n');
}
