// Rebuilding a lost node's snapshot from erasure shards, for the snapshot manager of the node that
// takes its stage over: the shards it holds itself first (no transfer), then k from the other
// holders, all of them only when those do not decode; decoded by a coding thread straight into a
// file beside a slot, which is then committed for the worker to restore.

import { rmSync } from 'node:fs';
import type { Logger } from '../common/logging.ts';
import { errorMessage } from '../domain/errors.ts';
import type { RebuildOrder, ShardHeader } from '../domain/erasure-protection.ts';
import type { SnapshotSlots } from '../domain/snapshot-slots.ts';
import type { FileRebuild } from './column-coder.ts';
import { NotEnoughShardsError, type Shard, type ShardLayout } from './erasure-codec.ts';
import type { ErasurePool } from './erasure-pool.ts';
import type { ShardStore } from './shard-store.ts';
import type { ReceivedShard } from './shard-transfer.ts';

/** What a rebuild did: the snapshot's bytes, the shards used and found corrupt, and its times. */
export interface RebuildOutcome {
  readonly bytes: number;
  readonly used: number[];
  readonly corrupt: number[];
  readonly fetchMs: number;
  readonly decodeMs: number;
}

/** The snapshot manager's parts a rebuild uses. */
export interface RebuildContext {
  /** The manager's own address: a source with it is this manager. */
  readonly address: string;
  readonly store: ShardStore;
  readonly slots: SnapshotSlots;
  readonly pool: ErasurePool;
  readonly log: Logger;
  /** Every shard of the order's version that the manager at `address` holds. */
  fetchShards(address: string): Promise<ReceivedShard[]>;
  /** The store let go of `bytes`. */
  released(bytes: number): void;
}

/** Fetches shards of one version from every source, then rebuilds and commits the snapshot. */
export async function rebuildSnapshot(manager: RebuildContext, order: RebuildOrder): Promise<RebuildOutcome> {
  // k shards first (each holder has one shard of a version, as placed): the bytes of the
  // snapshot, not k + m shards of it. All of them only when those do not decode; the decode
  // took the first ones' buffers over, so that second try fetches them again.
  const first = await collect(manager, order, order.code.dataShards);
  try {
    return await rebuildFrom(manager, order, first.found, first.failures, first.fetchMs);
  } catch (err) {
    if (first.askedAll) throw err;
    manager.log.warn({ stage: order.stage, step: order.step, err: errorMessage(err) }, 'rebuild from the first shards failed: fetching them all');
    const all = await collect(manager, order, Infinity);
    return rebuildFrom(manager, order, all.found, all.failures, first.fetchMs + all.fetchMs);
  }
}

/**
 * Shards of the order's version: the ones this manager holds itself first, which cost no
 * transfer (a spare held some of the stage it now takes), then from the other sources until
 * `need` distinct shards are in hand or no source is left.
 */
async function collect(manager: RebuildContext, order: RebuildOrder, need: number): Promise<{ found: ReceivedShard[]; failures: string[]; fetchMs: number; askedAll: boolean }> {
  const found: ReceivedShard[] = [];
  const failures: string[] = [];
  const sources = order.sources.filter((a) => a !== manager.address);
  if (sources.length < order.sources.length) {
    // Copies: the decode takes its shards' buffers over, and the store keeps these until the
    // rebuild has succeeded (a failed one leaves the stage's shards where they were).
    found.push(...manager.store.get(order.stage, order.step, order.epoch).map((s) => ({ ...s.header, data: s.bytes.slice() })));
  }
  const fetchMs = await gather(manager, sources, need, found, failures);
  return { found, failures, fetchMs, askedAll: sources.length === 0 };
}

/**
 * Fetches shards of the order's version from `sources` (taking them off the list), `need`
 * sources at a time, until `need` distinct shards are in `found` or no source is left; returns
 * the milliseconds it took.
 */
async function gather(manager: RebuildContext, sources: string[], need: number, found: ReceivedShard[], failures: string[]): Promise<number> {
  const t0 = performance.now();
  const distinct = () => new Set(found.map((s) => s.index)).size;
  // A source in flight counts as the shard it will most likely bring: no source is asked
  // while enough are on their way.
  let inFlight = 0;
  const next = async (): Promise<void> => {
    while (sources.length > 0 && distinct() + inFlight < need) {
      const address = sources.shift()!;
      inFlight += 1;
      try {
        found.push(...(await manager.fetchShards(address)));
      } catch (err) {
        failures.push(`${address}: ${errorMessage(err)}`);
      } finally {
        inFlight -= 1;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(need - distinct(), sources.length)) }, next));
  return performance.now() - t0;
}

/** Decodes the version from the shards fetched, into a slot, and commits it. */
async function rebuildFrom(manager: RebuildContext, order: RebuildOrder, found: readonly ReceivedShard[], failures: readonly string[], fetchMs: number): Promise<RebuildOutcome> {
  const n = order.code.dataShards + order.code.parityShards;
  const shards: (Shard | null)[] = Array.from({ length: n }, () => null);
  let layout: ShardLayout | null = null;
  let header: ShardHeader | null = null;
  for (const s of found) {
    if (s.index < 0 || s.index >= n || shards[s.index]) continue;
    shards[s.index] = { index: s.index, bytes: s.data, crc32: s.crc32 };
    layout ??= s.layout;
    header ??= s;
  }
  const have = shards.filter(Boolean).length;
  if (!layout || !header) {
    throw new NotEnoughShardsError(0, order.code.dataShards, []);
  }
  manager.log.info({ stage: order.stage, step: order.step, found: have, of: n, unreachable: failures }, 'shards fetched for rebuild');
  const t1 = performance.now();
  // Decoded by the coding thread straight into a file beside the slot (the shards go to it, and
  // no buffer of the snapshot's size is made), then moved into the slot and committed.
  const given = shards.flatMap((s, i) => (s ? [i] : []));
  const slot = manager.slots.chooseSlot();
  const staged = manager.slots.stagingFile(slot);
  let result: FileRebuild;
  try {
    result = await manager.pool.rebuildInto(staged, layout, shards);
  } catch (err) {
    rmSync(staged, { force: true });
    throw err;
  }
  const decodeMs = performance.now() - t1;
  manager.slots.commitFile(slot, header.snapshot, staged, layout.totalBytes, result.crc32);
  const bytes = layout.totalBytes;
  const used = given.filter((i) => !result.corrupt.includes(i));
  manager.log.info({ stage: order.stage, step: order.step, bytes, used, corrupt: result.corrupt, fetchMs, decodeMs }, 'snapshot rebuilt from erasure shards');
  // This node runs the stage now: its own shards of it would be lost with it, so no rebuild of
  // the stage will use them. Freed before its worker fills its memory.
  manager.released(manager.store.dropStage(order.stage));
  return { bytes, used, corrupt: result.corrupt, fetchMs, decodeMs };
}
