// The snapshot manager's memory report to the coordinator (Coordinator.ReportMemory), once per
// rescan tick (about a second): its own process (resident set and peak, common/process-memory.ts),
// its slot files on tmpfs (SnapshotSlots.residentBytes: allocated blocks) and the shards it holds
// for other nodes (ShardStore.heldBytes), sampled together, each with the most seen since this
// manager started. The shards live in this process's heap: they are inside its resident set, not
// beside it. The worker's memory travels with its heartbeats instead.

import type { Logger } from '../common/logging.ts';
import { ProcessMemorySampler } from '../common/process-memory.ts';
import { deadline } from '../common/proto.ts';
import { encodeMemoryReport } from '../common/wire/coordinator-wire.ts';
import type { SmpMemoryReport } from '../domain/node-reports.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';

/** What the report is read from: the manager's slots, its shard store, who it is. */
export interface MemorySources {
  readonly nodeId: string;
  /** Its SnapshotManager address (known once it serves). */
  address(): string;
  slotBytes(): number;
  shardBytes(): number;
}

export class SmpMemoryReporter {
  private readonly process: ProcessMemorySampler;
  private peakSlotBytes = 0;
  private peakShardBytes = 0;
  private sending = false;

  constructor(
    private readonly sources: MemorySources,
    private readonly coordinator: Pick<CoordinatorClient, 'ReportMemory'> | null,
    private readonly log: Logger,
    process = new ProcessMemorySampler(),
    /** The protected commit step each reply carries. */
    private readonly onProtectedCommitStep: (step: number) => void = () => {},
  ) {
    this.process = process;
  }

  /** Takes a sample (and moves the peaks): `nowMs` is the caller's clock. */
  sample(nowMs: number): SmpMemoryReport {
    const slotBytes = this.sources.slotBytes();
    const shardBytes = this.sources.shardBytes();
    this.peakSlotBytes = Math.max(this.peakSlotBytes, slotBytes);
    this.peakShardBytes = Math.max(this.peakShardBytes, shardBytes);
    return {
      nodeId: this.sources.nodeId,
      smpAddress: this.sources.address(),
      process: this.process.sample(nowMs),
      slotBytes,
      peakSlotBytes: this.peakSlotBytes,
      shardBytes,
      peakShardBytes: this.peakShardBytes,
    };
  }

  /** Samples, and sends the sample unless the last one is still on its way (not awaited). */
  report(nowMs = Date.now()): void {
    const report = this.sample(nowMs);
    if (!this.coordinator || this.sending) return;
    this.sending = true;
    this.coordinator.ReportMemory(encodeMemoryReport(report), { deadline: deadline() }, (err, reply) => {
      this.sending = false;
      // Before its worker registers the node is unknown to the coordinator: the next tick says it again.
      if (err) this.log.debug({ err: err.details || err.message }, 'memory report not taken');
      else if (reply) this.onProtectedCommitStep(Number(reply.protectedCommitStep));
    });
  }
}
