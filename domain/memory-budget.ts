// The RAM a node needs, as one formula of the stage's state size S, the erasure code (k, m), and
// the versions consistency keeps. Per stage node (worker + snapshot manager + slots on tmpfs):
//
//   base + S x (5/3 + IN_PLACE_SLOTS + SHARD_VERSIONS x held / k)
//
//   5/3             the worker: the state (parameters and two Adam moments, 3 thirds) plus two
//                   sets of gradients at their peak (the running sum and one micro-batch's, a
//                   third of the state each); the optimizer frees its temporaries per tensor
//   IN_PLACE_SLOTS  snapshot slots whose memory stays in place: the protected commit step and the
//                   one being written (a third slot fills only while erasure coding lags)
//   SHARD_VERSIONS  versions of other stages' shards held: the protected commit step's, and the
//                   next one arriving before it replaces it
//   held            shards of one version a node holds: each of the other stages spreads k + m
//                   shards over the other nodes, so ceil((stages - 1)(k + m) / (nodes - 1))
//   base            the processes themselves: a worker with its backend ready and a snapshot
//                   manager, without state
//
// A spare node holds no stage: base + SHARD_VERSIONS x ceil(stages (k + m) / (nodes - 1)) x S / k.
// The node agent and the warm standby worker are not in it (about 100 MiB each).

import { IN_PLACE_SLOTS } from './snapshot-slots.ts';

/** Versions of a stage's shards a holder keeps at its peak. */
export const SHARD_VERSIONS = 2;
/** A worker process with its backend ready and no stage (measured: 130-140 MB on wasm). */
export const WORKER_BASE_BYTES = 140 * 2 ** 20;
/** A snapshot manager process holding nothing (measured: 90-110 MB). */
export const SMP_BASE_BYTES = 100 * 2 ** 20;
/** The worker's share: the state and two sets of gradients of a third of it each. */
export const WORKER_STATE_FACTOR = 5 / 3;

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
  const stageNodeBytes = baseBytes + workerBytes + slotBytes + shardBytes;
  return {
    baseBytes,
    workerBytes,
    slotBytes,
    shardsHeldPerVersion: held,
    shardBytes,
    stageNodeBytes,
    spareNodeBytes: baseBytes + SHARD_VERSIONS * spareHeld * Math.ceil(S / i.dataShards),
    stageNodeVsState: stageNodeBytes / S,
  };
}
