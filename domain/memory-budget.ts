// The RAM a node needs, as one formula of the stage's state size S, the erasure code (k, m), and
// the versions consistency keeps. Per stage node (worker + snapshot manager + slots on tmpfs):
//
//   base + S x (WORKER + IN_PLACE_SLOTS + SHARD_VERSIONS x held / k + SMP_WORK)
//
//   WORKER          the worker's backend heap at its high-water mark: the state (parameters and
//                   two Adam moments), the running sum of the gradients and one micro-batch's
//                   (a third of the state each), and what the update's temporaries and the wasm
//                   allocator leave in use (measured: 3.2-3.3 x S in all, at 257 MiB per stage)
//   IN_PLACE_SLOTS  snapshot slots whose memory stays in place: the protected commit step and the
//                   one being written (a third slot fills only while erasure coding lags)
//   SHARD_VERSIONS  versions of other stages' shards held: the protected commit step's, and the
//                   next one arriving before it replaces it
//   held            shards of one version a node holds: each of the other stages spreads k + m
//                   shards over the other nodes, so ceil((stages - 1)(k + m) / (nodes - 1))
//   SMP_WORK        the snapshot manager's memory besides the shards it keeps: shards being
//                   received, rebuilt or sent (measured: 0.85-1.26 x S)
//   base            the processes themselves: a worker with its backend ready and a snapshot
//                   manager, without state
//
// The measured factors are what the code does today, not the design's floor: the worker's heap
// holds about 1.7 x S more than the state and two sets of gradients (see README, "Memory per
// node and sizing"). A spare node holds no stage: base + S x (SHARD_VERSIONS x
// ceil(stages (k + m) / (nodes - 1)) / k + SMP_WORK). The node agent and the warm standby worker
// are not in it (about 100 MiB each).

import { IN_PLACE_SLOTS } from './snapshot-slots.ts';

/** Versions of a stage's shards a holder keeps at its peak. */
export const SHARD_VERSIONS = 2;
/** A worker process with its backend ready and no stage (measured: 130-140 MB on wasm). */
export const WORKER_BASE_BYTES = 140 * 2 ** 20;
/** A snapshot manager process holding nothing (measured: 90-110 MB). */
export const SMP_BASE_BYTES = 100 * 2 ** 20;
/** The worker's backend heap at its high-water mark, in states (measured at 257 MiB per stage). */
export const WORKER_STATE_FACTOR = 3.3;
/** The snapshot manager's working memory besides the shards it keeps, in states (measured). */
export const SMP_WORK_FACTOR = 1;

export interface MemoryBudgetInput {
  readonly stateBytes: number;
  readonly dataShards: number;
  readonly parityShards: number;
  readonly stages: number;
  /** Stages + spares. */
  readonly nodes: number;
}

export interface MemoryBudget {
  readonly baseBytes: number;
  readonly workerBytes: number;
  readonly slotBytes: number;
  readonly shardsHeldPerVersion: number;
  readonly shardBytes: number;
  readonly smpWorkBytes: number;
  /** The sum: a node that holds a stage. */
  readonly stageNodeBytes: number;
  readonly spareNodeBytes: number;
  /** stageNodeBytes / stateBytes. */
  readonly stageNodeVsState: number;
}

export function memoryBudget(i: MemoryBudgetInput): MemoryBudget {
  const S = i.stateBytes;
  const n = i.dataShards + i.parityShards;
  const others = Math.max(1, i.nodes - 1);
  const held = Math.ceil(((i.stages - 1) * n) / others);
  const spareHeld = Math.ceil((i.stages * n) / others);
  const shardBytes = SHARD_VERSIONS * held * Math.ceil(S / i.dataShards);
  const baseBytes = WORKER_BASE_BYTES + SMP_BASE_BYTES;
  const workerBytes = Math.round(WORKER_STATE_FACTOR * S);
  const slotBytes = IN_PLACE_SLOTS * S;
  const smpWorkBytes = Math.round(SMP_WORK_FACTOR * S);
  const stageNodeBytes = baseBytes + workerBytes + slotBytes + shardBytes + smpWorkBytes;
  return {
    baseBytes,
    workerBytes,
    slotBytes,
    shardsHeldPerVersion: held,
    shardBytes,
    smpWorkBytes,
    stageNodeBytes,
    spareNodeBytes: baseBytes + SHARD_VERSIONS * spareHeld * Math.ceil(S / i.dataShards) + smpWorkBytes,
    stageNodeVsState: stageNodeBytes / S,
  };
}
