// The snapshot manager (SMP) of a node: owns the node's snapshot slot directory on tmpfs, which
// outlives the worker process, and checks every newly sealed snapshot against its checksum,
// withdrawing the commit record of a corrupt one so that it is never restored.

import { watch, type FSWatcher } from 'node:fs';
import type { Logger } from '../common/logging.ts';
import { CorruptSnapshotError, SnapshotSlots } from './snapshot-slots.ts';

/** How often the directory is rescanned in case a watch event was missed. */
export const RESCAN_MS = 1000;

export class SnapshotManager {
  readonly slots: SnapshotSlots;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Commit records already checked, by slot: "step:crc". */
  private readonly checked = new Map<number, string>();
  verified = 0;
  corrupt = 0;

  constructor(
    dir: string,
    slotCount: number,
    private readonly log: Logger,
  ) {
    this.slots = new SnapshotSlots(dir, slotCount);
  }

  start(): void {
    this.watcher = watch(this.slots.dir, () => this.scan());
    this.timer = setInterval(() => this.scan(), RESCAN_MS);
    this.scan();
  }

  /** Verifies each commit record not seen before. */
  scan(): void {
    for (const record of this.slots.records()) {
      if (record.crc32 === null) continue; // its writer seals it within milliseconds
      const key = `${record.step}:${record.crc32}`;
      if (this.checked.get(record.slot) === key) continue;
      this.checked.set(record.slot, key);
      try {
        this.slots.read(record);
        this.verified += 1;
        this.log.debug({ step: record.step, slot: record.slot, bytes: record.bytes }, 'snapshot verified');
      } catch (err) {
        if (!(err instanceof CorruptSnapshotError)) throw err;
        this.corrupt += 1;
        this.slots.dropOne(record);
        this.log.error({ step: record.step, slot: record.slot, err: err.message }, 'corrupt snapshot withdrawn');
      }
    }
  }

  /** Stops watching; `removeSlots` deletes the snapshots (the node is leaving). */
  close(removeSlots: boolean): void {
    this.watcher?.close();
    if (this.timer) clearInterval(this.timer);
    if (removeSlots) this.slots.remove();
  }
}
