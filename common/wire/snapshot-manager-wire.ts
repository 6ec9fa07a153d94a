// The SnapshotManager service on the wire: protection plans and statuses (Configure), shard
// headers (PutShard, FetchShards), rebuild and replica copy orders (Rebuild) and whole snapshots
// (FetchSnapshot), converted and checked here
// (WireError names the field).

import type { ProtectionPlan, RebuildOrder, ReplicaCopyOrder, ShardHeader, ShardLayout } from '../../domain/erasure-protection.ts';
import { MAX_SLOTS } from '../../domain/job-options.ts';
import type { SnapshotHeader } from '../../domain/snapshot-slots.ts';
import { shareRange, type SnapshotShare } from '../../domain/share-layout.ts';
import type { SnapshotShare__Output } from '../../proto/generated/ftrain/v1/SnapshotShare.ts';
import type { ConfigureRequest__Output } from '../../proto/generated/ftrain/v1/ConfigureRequest.ts';
import type { FetchShardsRequest__Output } from '../../proto/generated/ftrain/v1/FetchShardsRequest.ts';
import type { FetchSnapshotRequest__Output } from '../../proto/generated/ftrain/v1/FetchSnapshotRequest.ts';
import type { SnapshotChunk, SnapshotChunk__Output } from '../../proto/generated/ftrain/v1/SnapshotChunk.ts';
import type { RebuildRequest__Output } from '../../proto/generated/ftrain/v1/RebuildRequest.ts';
import type { ShardChunk__Output } from '../../proto/generated/ftrain/v1/ShardChunk.ts';
import type { ShardHeader as ShardHeaderProto, ShardHeader__Output } from '../../proto/generated/ftrain/v1/ShardHeader.ts';
import type { SnapshotHeader__Output } from '../../proto/generated/ftrain/v1/SnapshotHeader.ts';
import { MAX_SHARDS, decodePlan, decodeRebuild, decodeReplicaCopy } from './plan-wire.ts';
import { WireError, int, list, num, parsed, present, str, type MalformedMessage } from './wire-check.ts';

export { decodeStatus, encodePlan, encodeRebuild, encodeReplicaCopy, encodeStatus } from './plan-wire.ts';

/** Most tensors one snapshot holds. */
export const MAX_SNAPSHOT_TENSORS = 1 << 16;

/** The longest a Configure may hold a manager's shards back (hold_ms). */
export const MAX_HOLD_MS = 60_000;

/** The longest a FetchSnapshot may wait for its snapshot to appear (wait_ms). */
export const MAX_FETCH_WAIT_MS = 60_000;

/** Most shares a stage's state is cut into (one per replica). */
export const MAX_SHARES = MAX_SLOTS;

export function decodeConfigure(msg: ConfigureRequest__Output | MalformedMessage): { plan: ProtectionPlan | null; protectedCommitStep: number; holdMs: number } {
  const r = parsed(msg, 'ConfigureRequest');
  return {
    plan: r.plan ? decodePlan('plan', r.plan) : null,
    protectedCommitStep: int('protected_commit_step', r.protectedCommitStep, -1),
    holdMs: int('hold_ms', r.holdMs ?? 0, -1, MAX_HOLD_MS),
  };
}

/** A Rebuild request: from erasure shards, or a copy from a live replica. */
export function decodeRebuildRequest(msg: RebuildRequest__Output | MalformedMessage): { readonly order: RebuildOrder } | { readonly copy: ReplicaCopyOrder } {
  const r = parsed(msg, 'RebuildRequest');
  if (r.copy && r.order) throw new WireError('copy', 'a rebuild is from shards (order) or from a replica (copy), not both');
  return r.copy ? { copy: decodeReplicaCopy('copy', r.copy) } : { order: decodeRebuild('order', r.order) };
}

export function decodeFetchSnapshot(msg: FetchSnapshotRequest__Output | MalformedMessage): { stage: number; step: number; waitMs: number } {
  const r = parsed(msg, 'FetchSnapshotRequest');
  return { stage: int('stage', r.stage, 0, MAX_SLOTS - 1), step: int('step', r.step, 0), waitMs: int('wait_ms', r.waitMs ?? 0, 0, MAX_FETCH_WAIT_MS) };
}

/** The first chunk of a FetchSnapshot stream: the header, the data's crc32 and length. */
export function encodeSnapshotStart(header: SnapshotHeader, crc32: number, bytes: number): SnapshotChunk {
  return { header: encodeSnapshotHeader(header), crc32, bytes };
}

/** A FetchSnapshot chunk: the first carries the header (and no data), the later ones data only. */
export function decodeSnapshotChunk(msg: SnapshotChunk__Output | MalformedMessage, first: boolean): { header: SnapshotHeader; crc32: number; bytes: number } | { data: Uint8Array } {
  const c = parsed(msg, 'SnapshotChunk');
  if (first) {
    if (c.data.length > 0) throw new WireError('data', 'the first chunk of a snapshot carries its header, not data');
    return { header: decodeSnapshotHeader('header', c.header), crc32: int('crc32', c.crc32, 0, 0xffff_ffff), bytes: int('bytes', c.bytes, 0) };
  }
  if (c.header) throw new WireError('header', 'only the first chunk of a snapshot carries a header');
  return { data: c.data };
}

export function decodeFetchShards(msg: FetchShardsRequest__Output | MalformedMessage): { stage: number; step: number; epoch: number } {
  const r = parsed(msg, 'FetchShardsRequest');
  return { stage: int('stage', r.stage, 0, MAX_SLOTS - 1), step: int('step', r.step, 0), epoch: int('epoch', r.epoch, 0) };
}

function encodeSnapshotHeader(h: SnapshotHeader): ShardHeaderProto['snapshot'] {
  return {
    stage: h.stage,
    step: h.step,
    tensors: h.tensors.map((t) => ({ name: t.name, shape: [...t.shape], offset: t.offset, length: t.length })),
    scalars: { ...h.scalars },
    epoch: h.epoch ?? 0,
    share: h.share ? { index: h.share.index, count: h.share.count, offset: h.share.offset, wholeBytes: h.share.wholeBytes } : null,
  };
}

/** A header's share: its offset is the one shareRange gives, and the tensors fit the whole it is a share of. */
function decodeShare(field: string, v: SnapshotShare__Output, tensorBytes: number): SnapshotShare {
  const count = int(`${field}.count`, v.count, 2, MAX_SHARES);
  const index = int(`${field}.index`, v.index, 0, count - 1);
  const wholeBytes = int(`${field}.whole_bytes`, v.wholeBytes, 0);
  if (wholeBytes !== tensorBytes) throw new WireError(`${field}.whole_bytes`, `is ${wholeBytes}, but the tensors take ${tensorBytes} bytes`);
  const want = shareRange(wholeBytes, index, count).offset;
  if (v.offset !== want) throw new WireError(`${field}.offset`, `must be ${want} for share ${index} of ${count} of ${wholeBytes} bytes, got ${String(v.offset)}`);
  return { index, count, offset: want, wholeBytes };
}

function decodeSnapshotHeader(field: string, h: SnapshotHeader__Output | null | undefined): SnapshotHeader {
  const v = present(field, h);
  const scalars: Record<string, number> = {};
  for (const [name, value] of Object.entries(v.scalars ?? {})) scalars[str(`${field}.scalars`, name, { nonEmpty: true, maxChars: 256 })] = num(`${field}.scalars[${name}]`, value);
  const header = {
    stage: int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1),
    step: int(`${field}.step`, v.step, 0),
    tensors: list(
      `${field}.tensors`,
      v.tensors,
      (t, f) => ({
        name: str(`${f}.name`, t.name, { nonEmpty: true, maxChars: 256 }),
        shape: list(`${f}.shape`, t.shape, (d, df) => int(df, d, 0, 1 << 30), 8),
        offset: int(`${f}.offset`, t.offset, 0),
        length: int(`${f}.length`, t.length, 0),
      }),
      MAX_SNAPSHOT_TENSORS,
    ),
    scalars,
    epoch: int(`${field}.epoch`, v.epoch, 0),
  };
  if (!v.share) return header;
  const tensorBytes = header.tensors.reduce((n, t) => n + t.length * 4, 0);
  return { ...header, share: decodeShare(`${field}.share`, v.share, tensorBytes) };
}

export function encodeShardHeader(h: ShardHeader): ShardHeaderProto {
  return {
    ownerNodeId: h.ownerNodeId,
    stage: h.stage,
    step: h.step,
    epoch: h.epoch,
    index: h.index,
    crc32: h.crc32,
    bytes: h.bytes,
    layout: { ...h.layout },
    snapshot: encodeSnapshotHeader(h.snapshot),
    protectedCommitStep: h.protectedCommitStep,
  };
}

export function decodeShardHeader(field: string, h: ShardHeader__Output | null | undefined): ShardHeader {
  const v = present(field, h);
  const l = present(`${field}.layout`, v.layout);
  const dataShards = int(`${field}.layout.data_shards`, l.dataShards, 1, MAX_SHARDS - 1);
  const layout: ShardLayout = {
    dataShards,
    parityShards: int(`${field}.layout.parity_shards`, l.parityShards, 1, MAX_SHARDS - dataShards),
    totalBytes: int(`${field}.layout.total_bytes`, l.totalBytes, 0),
    stripeBytes: int(`${field}.layout.stripe_bytes`, l.stripeBytes, 1),
    stripes: int(`${field}.layout.stripes`, l.stripes, 0),
  };
  const stage = int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1);
  const step = int(`${field}.step`, v.step, 0);
  const snapshot = decodeSnapshotHeader(`${field}.snapshot`, v.snapshot);
  if (snapshot.stage !== stage || snapshot.step !== step) throw new WireError(`${field}.snapshot`, `is of stage ${snapshot.stage} step ${snapshot.step}, not stage ${stage} step ${step}`);
  return {
    ownerNodeId: str(`${field}.owner_node_id`, v.ownerNodeId, { nonEmpty: true, maxChars: 256 }),
    stage,
    step,
    epoch: int(`${field}.epoch`, v.epoch, 0),
    index: int(`${field}.index`, v.index, 0, dataShards + layout.parityShards - 1),
    crc32: int(`${field}.crc32`, v.crc32, 0, 0xffff_ffff),
    bytes: int(`${field}.bytes`, v.bytes, 0),
    layout,
    snapshot,
    protectedCommitStep: int(`${field}.protected_commit_step`, v.protectedCommitStep, -1),
  };
}

/** One chunk of a shard stream: a shard's header (which starts the shard) and no bytes, or bytes only. */
export function decodeShardChunk(msg: ShardChunk__Output | MalformedMessage): { header: ShardHeader | null; data: Buffer } {
  const c = parsed(msg, 'ShardChunk');
  if (c.header && c.data.length > 0) throw new WireError('data', 'a chunk with a shard header carries no bytes');
  return { header: c.header ? decodeShardHeader('header', c.header) : null, data: c.data };
}
