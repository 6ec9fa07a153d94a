// Memory per node, as the nodes say it: the worker's process with each heartbeat, the snapshot
// manager's process, slot files and shards in its own reports (ReportMemory). Keeps the newest
// sample of each part and its peak over the run, per node id: a worker or manager restarted under
// the same id starts its own peaks again, the run's are kept here.
//
// A node's total is worker RSS + snapshot manager RSS + slot bytes. The shards live in the
// manager's heap, inside its RSS, so they are not added again. The peak total is the largest total
// the samples gave as they came in (each new sample of one part summed with the newest of the
// others): sampled, so a peak between samples can be missed. The sum of the parts' peaks (which
// need not have happened at once) is kept beside it as an upper bound.

import type { ProcessMemory, SmpMemoryReport } from '../../domain/node-reports.ts';

/** One node's memory in bytes; null: not reported (yet, or ever: a node without a snapshot manager). */
export interface NodeMemory {
  readonly nodeId: string;
  readonly stage: number | null;
  readonly workerRssBytes: number | null;
  readonly workerPeakRssBytes: number | null;
  readonly smpRssBytes: number | null;
  readonly smpPeakRssBytes: number | null;
  readonly slotBytes: number | null;
  readonly peakSlotBytes: number | null;
  /** Shards held for other nodes' stages: inside smpRssBytes. */
  readonly shardBytes: number | null;
  readonly peakShardBytes: number | null;
  /** worker RSS + snapshot manager RSS + slot bytes, of the parts reported; null: none was. */
  readonly totalBytes: number | null;
  /** The largest totalBytes the samples gave. */
  readonly peakTotalBytes: number | null;
  /** workerPeakRssBytes + smpPeakRssBytes + peakSlotBytes: at least peakTotalBytes. */
  readonly sumOfPeaksBytes: number | null;
}

interface Part {
  bytes: number;
  peakBytes: number;
}

interface MemoryRecord {
  worker: Part | null;
  smp: Part | null;
  slots: Part | null;
  shards: Part | null;
  peakTotalBytes: number;
}

function update(part: Part | null, bytes: number, peakBytes: number): Part {
  return { bytes, peakBytes: Math.max(part?.peakBytes ?? 0, peakBytes, bytes) };
}

export class NodeMemoryTracker {
  private readonly nodes = new Map<string, MemoryRecord>();

  private record(nodeId: string): MemoryRecord {
    let r = this.nodes.get(nodeId);
    if (!r) {
      r = { worker: null, smp: null, slots: null, shards: null, peakTotalBytes: 0 };
      this.nodes.set(nodeId, r);
    }
    return r;
  }

  /** A worker's heartbeat said its process's memory. */
  worker(nodeId: string, m: ProcessMemory): void {
    const r = this.record(nodeId);
    r.worker = update(r.worker, m.rssBytes, m.peakRssBytes);
    this.sampled(r);
  }

  /** A node's snapshot manager said what it holds. */
  smp(m: SmpMemoryReport): void {
    const r = this.record(m.nodeId);
    r.smp = update(r.smp, m.process.rssBytes, m.process.peakRssBytes);
    r.slots = update(r.slots, m.slotBytes, m.peakSlotBytes);
    r.shards = update(r.shards, m.shardBytes, m.peakShardBytes);
    this.sampled(r);
  }

  private sampled(r: MemoryRecord): void {
    r.peakTotalBytes = Math.max(r.peakTotalBytes, total(r, 'bytes')!);
  }

  /** Every node given, in the order given, with what is known of its memory. */
  list(nodes: readonly { readonly nodeId: string; readonly stage: number | null }[]): NodeMemory[] {
    return nodes.map(({ nodeId, stage }) => {
      const r = this.nodes.get(nodeId);
      return {
        nodeId,
        stage,
        workerRssBytes: r?.worker?.bytes ?? null,
        workerPeakRssBytes: r?.worker?.peakBytes ?? null,
        smpRssBytes: r?.smp?.bytes ?? null,
        smpPeakRssBytes: r?.smp?.peakBytes ?? null,
        slotBytes: r?.slots?.bytes ?? null,
        peakSlotBytes: r?.slots?.peakBytes ?? null,
        shardBytes: r?.shards?.bytes ?? null,
        peakShardBytes: r?.shards?.peakBytes ?? null,
        totalBytes: r ? total(r, 'bytes') : null,
        peakTotalBytes: r ? r.peakTotalBytes : null,
        sumOfPeaksBytes: r ? total(r, 'peakBytes') : null,
      };
    });
  }
}

/** worker + smp + slots (never the shards: they are inside the smp's RSS); null when none is known. */
function total(r: MemoryRecord, which: keyof Part): number | null {
  const parts = [r.worker, r.smp, r.slots].filter((p): p is Part => p !== null);
  return parts.length === 0 ? null : parts.reduce((sum, p) => sum + p[which], 0);
}

/** The largest peak total over `nodes`: the RAM the busiest node needed; null when none reported. */
export function peakRamPerNodeBytes(nodes: readonly NodeMemory[]): number | null {
  const peaks = nodes.map((n) => n.peakTotalBytes).filter((b): b is number => b !== null);
  return peaks.length === 0 ? null : Math.max(...peaks);
}
