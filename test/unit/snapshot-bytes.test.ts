// `bench replicas`' snapshot bytes per node: the nodes that held a stage at the end, their peak
// slot-file bytes and the shards they held for others, averaged; spares and nodes without a
// stage do not count.

import { describe, expect, it } from 'vitest';
import { bytesPerNode } from '../../bench/replicas-bench.ts';
import type { RunReport } from '../../observability/run-report.ts';

describe('bytesPerNode', () => {
  it('averages the peaks of the nodes that hold a stage', () => {
    const report = {
      nodes: [
        { nodeId: 'a', stage: 0 },
        { nodeId: 'b', stage: 1 },
        { nodeId: 'spare', stage: null },
      ],
      memory: [
        { nodeId: 'a', peakSlotBytes: 300, peakShardBytes: 100 },
        { nodeId: 'b', peakSlotBytes: 500, peakShardBytes: null },
        { nodeId: 'spare', peakSlotBytes: 0, peakShardBytes: 900 },
      ],
    } as unknown as RunReport;
    expect(bytesPerNode(report)).toEqual({ slotBytes: 400, shardBytes: 50, totalBytes: 450 });
  });

  it('refuses a run in which no node said its memory', () => {
    expect(() => bytesPerNode({ nodes: [{ nodeId: 'a', stage: 0 }], memory: [] } as unknown as RunReport)).toThrow(/no node reported its memory/);
  });
});
