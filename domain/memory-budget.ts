// The RAM a node needs, as one formula of the stage's state size S, the erasure code (k, m), and
// the versions consistency keeps. Per stage node (worker + snapshot manager + slots on tmpfs):
//
//   base + S x (WORKER + IN_PLACE_SLOTS + SHARD_VERSIONS x held / k + 1 / k)
//
//   WORKER          the worker's backend heap at its high-water mark, in states: the state
//                   (parameters and two Adam moments), the running sum of the gradients (a third
//                   of the state) and one piece of the model's gradients (each piece's are added
//                   to the sum as soon as it is done: half a block's, a ninth of the state with
//                   2 blocks a stage), the matrix kernels' packed copy of the weights (about a
//                   third more, kept from the forward pass to the update), and what the allocator
//                   leaves between them (measured: 2.1-2.3 x S in all, at 257 MiB per stage)
//   IN_PLACE_SLOTS  snapshot slots whose memory stays in place: the protected commit step and the
//                   one being written (a third slot fills only while erasure coding lags)
//   SHARD_VERSIONS  versions of other stages' shards held: the protected commit step's, and the
//                   next one arriving before it replaces it
//   held            shards of one version a node holds: each of the other stages spreads n = k + m
//                   shards over the other nodes, so ceil((stages - 1) n / (nodes - 1)); with fewer
//                   other nodes than k + m (degraded) n is one per other node, never below k
//   1 / k           the snapshot manager's working set: a shard being received, before it counts
//                   as held (coding and rebuilding stream in pieces of a few MiB)
//   base            the processes themselves: a worker with its backend ready and a snapshot
//                   manager, without state
//
// A spare holds no stage: base + S x (SHARD_VERSIONS x ceil(stages (k + m) / (nodes - 1)) / k +
// 1 / k). The node that takes over a lost stage peaks as a stage node: the versions coded under
// the old plan are freed as the new plan's replace them, and its rebuild holds the k shards it
// decodes (S) only while its worker is still empty. The node agent and the warm standby worker
// are not in it (about 100 MiB each).

import { shardsPlaced } from './erasure-protection.ts';
import { IN_PLACE_SLOTS } from './snapshot-slots.ts';

/** Versions of a stage's shards a holder keeps at its peak. */
export const SHARD_VERSIONS = 2;
/** A worker process with its backend ready and no stage (measured: 130-140 MB on wasm). */
export const WORKER_BASE_BYTES = 140 * 2 ** 20;
/** A snapshot manager process holding nothing (measured: 90-110 MB). */
export const SMP_BASE_BYTES = 100 * 2 ** 20;
/** The worker's backend heap at its high-water mark, in states (measured at 257 MiB per stage). */
export const WORKER_STATE_FACTOR = 2.2;

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
  /** A shard being received: S / k. */
  readonly smpWorkBytes: number;
  /** The sum: a node that holds a stage. */
  readonly stageNodeBytes: number;
  readonly spareNodeBytes: number;
  /** The node that took over a lost stage: as a stage node (see above). */
  readonly takeOverNodeBytes: number;
  /** stageNodeBytes / stateBytes. */
  readonly stageNodeVsState: number;
}

export function memoryBudget(i: MemoryBudgetInput): MemoryBudget {
  const S = i.stateBytes;
  const others = Math.max(1, i.nodes - 1);
  // Shards each stage places: k + m, or one per other node in a degraded plan (shardsPlaced).
  const n = shardsPlaced({ dataShards: i.dataShards, parityShards: i.parityShards }, others);
  const held = Math.ceil(((i.stages - 1) * n) / others);
  const spareHeld = Math.ceil((i.stages * n) / others);
  const shard = Math.ceil(S / i.dataShards);
  const shardBytes = SHARD_VERSIONS * held * shard;
  const baseBytes = WORKER_BASE_BYTES + SMP_BASE_BYTES;
  const workerBytes = Math.round(WORKER_STATE_FACTOR * S);
  const slotBytes = IN_PLACE_SLOTS * S;
  const smpWorkBytes = shard;
  const stageNodeBytes = baseBytes + workerBytes + slotBytes + shardBytes + smpWorkBytes;
  return {
    baseBytes,
    workerBytes,
    slotBytes,
    shardsHeldPerVersion: held,
    shardBytes,
    smpWorkBytes,
    stageNodeBytes,
    spareNodeBytes: baseBytes + SHARD_VERSIONS * spareHeld * shard + smpWorkBytes,
    takeOverNodeBytes: stageNodeBytes,
    stageNodeVsState: stageNodeBytes / S,
  };
}
