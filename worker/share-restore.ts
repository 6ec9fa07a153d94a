// Restoring a sharded snapshot (`--replicas`): each replica slot of a stage snapshots one share of
// the stage's state (domain/share-layout.ts), so a restore gathers the shares of the step: this
// node's own from its slot directory, the others from the snapshot managers that hold them
// (FetchSnapshot, stage = the share's slot), all at once. Each share is checked before it counts:
// its header is of the step, of the same epoch, share count, whole length and adamT as the
// others, with the stage's tensor layout; its bytes are as long as its range and have the crc32
// its writer sealed. Every index must arrive exactly once.
//
// Memory: the whole state's buffer, which every share is written into at its offset, plus one
// chunk per stream; nothing else is held. The stage's tensors are not touched here.

import * as grpc from '@grpc/grpc-js';
import { crc32 } from 'node:zlib';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { MAX_FETCH_WAIT_MS, decodeSnapshotChunk } from '../common/wire/snapshot-manager-wire.ts';
import type { MalformedMessage } from '../common/wire/wire-check.ts';
import type { ShareSource } from '../domain/commands.ts';
import { errorMessage } from '../domain/errors.ts';
import { shareRange, type ShareRange } from '../domain/share-layout.ts';
import type { SnapshotHeader, SnapshotRecord, TensorEntry } from '../domain/snapshot-slots.ts';
import type { SnapshotChunk__Output } from '../proto/generated/ftrain/v1/SnapshotChunk.ts';
import { channelCredentials } from '../common/transport.ts';

/**
 * How long a source's snapshot manager waits for the share asked of it to appear (its own
 * rebuild of it from erasure shards may be under way): FetchSnapshotRequest.wait_ms.
 */
export const SHARE_WAIT_MS = 30_000;

/** A FetchSnapshot stream of one share, which the gatherer cancels when it refuses what comes. */
export interface ShareStream extends AsyncIterable<SnapshotChunk__Output | MalformedMessage> {
  cancel(): void;
}

/** Asks `source`'s snapshot manager for its snapshot of `step` (FetchSnapshot, stage = source.slot). */
export type ShareFetch = (source: ShareSource, step: number) => ShareStream;

/** Thrown when the shares of a step cannot be gathered whole: an index is missing, or came twice. */
export class ShareGatherError extends Error {
  override readonly name = 'ShareGatherError';
  constructor(
    readonly step: number,
    /** The indices not found (empty when every one came, but one came twice). */
    readonly missing: readonly number[],
    /** Where each share was asked for, and what became of it. */
    readonly asked: readonly string[],
    message: string,
  ) {
    super(message);
  }
}

/** One share refused (its header or bytes), with the reason. */
class ShareRefusedError extends Error {}

/** What a restore from shares needs. */
export interface ShareGather {
  /** The slot of the stage restored: a share's header names the slot it was taken in. */
  readonly slot: number;
  readonly step: number;
  /** The stage's layout (stageStateLayout): every share's header must describe it. */
  readonly layout: readonly TensorEntry[];
  /** This node's own committed snapshot of the step, when it is a share. */
  readonly local: SnapshotRecord | null;
  /** Where the local slots are, for messages. */
  readonly localDir: string;
  /** Reads the local record's bytes into `target` (exactly its length), checking them. */
  readonly readLocal: (record: SnapshotRecord, target: Uint8Array) => Promise<void>;
  readonly sources: readonly ShareSource[];
  readonly fetch: ShareFetch;
}

/** The whole state gathered from its shares, and its header (without a share: the whole). */
export interface GatheredState {
  readonly header: SnapshotHeader;
  readonly data: Uint8Array;
}

function sameLayout(a: readonly TensorEntry[], b: readonly TensorEntry[]): boolean {
  return a.length === b.length && a.every((t, i) => {
    const u = b[i]!;
    return t.name === u.name && t.offset === u.offset && t.length === u.length && t.shape.length === u.shape.length && t.shape.every((d, j) => d === u.shape[j]);
  });
}

/**
 * Gathers the shares of `g.step` into one buffer of the whole state. Throws ShareGatherError,
 * saying which shares of which step were missing and where they were asked for, unless every
 * share came exactly once, whole and checked. This node's own share of the step gives way to a
 * source's of a newer epoch: the step was trained again after a rollback (by a replica that
 * trained alone while this one was out, in another layout), and the old share belongs to a
 * timeline that was left; the gather then starts over without it.
 */
export async function gatherShares(g: ShareGather): Promise<GatheredState> {
  const stale: { newerEpoch: number | null } = { newerEpoch: null };
  try {
    return await gatherOnce(g, stale);
  } catch (err) {
    if (!(err instanceof ShareGatherError) || stale.newerEpoch === null) throw err;
    try {
      return await gatherOnce({ ...g, local: null }, stale);
    } catch (again) {
      if (!(again instanceof ShareGatherError)) throw again;
      const why = `this node's own share was taken in epoch ${g.local!.header.epoch ?? 0}, a source's in epoch ${stale.newerEpoch}: left out as a timeline that was left`;
      throw new ShareGatherError(again.step, again.missing, [...again.asked, why], `${again.message}; ${why}`);
    }
  }
}

async function gatherOnce(g: ShareGather, stale: { newerEpoch: number | null }): Promise<GatheredState> {
  const wholeBytes = g.layout.reduce((n, t) => n + t.length * 4, 0);
  const data = new Uint8Array(wholeBytes);
  /** The first share accepted: every other must agree with it. */
  let first: SnapshotHeader | null = null;
  const taken = new Map<number, string>();
  const doneFrom = new Map<number, string>();
  const duplicates: string[] = [];

  /**
   * A snapshot's share; a whole snapshot is the one share of one (a replica that trained alone
   * while the others were out wrote the whole state).
   */
  const shareOfHeader = (h: SnapshotHeader) => h.share ?? { index: 0, count: 1, offset: 0, wholeBytes };
  /** Checks a share's header against the step, the layout and the shares before it, and claims its index. */
  const accept = (h: SnapshotHeader, slot: number, from: string): ShareRange => {
    const s = shareOfHeader(h);
    if (h.stage !== slot) throw new ShareRefusedError(`is the snapshot of slot ${h.stage}, not slot ${slot}`);
    if (h.step !== g.step) throw new ShareRefusedError(`is of step ${h.step}, not step ${g.step}`);
    if (s.wholeBytes !== wholeBytes) throw new ShareRefusedError(`is a share of ${s.wholeBytes} bytes, the stage's state takes ${wholeBytes}`);
    if (!sameLayout(h.tensors, g.layout)) throw new ShareRefusedError("describes another tensor layout than the stage's");
    if (first) {
      if (first === g.local?.header && (h.epoch ?? 0) > (first.epoch ?? 0)) stale.newerEpoch = h.epoch ?? 0;
      if ((h.epoch ?? 0) !== (first.epoch ?? 0)) throw new ShareRefusedError(`was taken in epoch ${h.epoch ?? 0}, the other shares in epoch ${first.epoch ?? 0}`);
      if (s.count !== shareOfHeader(first).count) throw new ShareRefusedError(`is one of ${s.count} shares, the others of ${shareOfHeader(first).count}`);
      if (h.scalars.adamT !== first.scalars.adamT) throw new ShareRefusedError(`has adamT ${h.scalars.adamT}, the others ${first.scalars.adamT}`);
    }
    const other = taken.get(s.index);
    if (other !== undefined) {
      duplicates.push(`share ${s.index} came from both ${other} and ${from}`);
      throw new ShareRefusedError(`is share ${s.index}, which ${other} gives too`);
    }
    first ??= h;
    taken.set(s.index, from);
    return shareRange(wholeBytes, s.index, s.count);
  };

  const asked: string[] = [];
  const tasks: Promise<void>[] = [];
  if (g.local) {
    const record = g.local;
    const from = `this node's slots (${g.localDir})`;
    const at = asked.push(`${from}: share ${shareOfHeader(record.header).index}`) - 1;
    try {
      const range = accept(record.header, g.slot, from);
      if (record.bytes !== range.bytes) throw new ShareRefusedError(`holds ${record.bytes} bytes, its range ${range.bytes}`);
      tasks.push(
        g.readLocal(record, data.subarray(range.offset, range.offset + range.bytes)).then(
          () => void doneFrom.set(shareOfHeader(record.header).index, from),
          (err: unknown) => {
            taken.delete(shareOfHeader(record.header).index);
            asked[at] = `${from}: ${errorMessage(err)}`;
          },
        ),
      );
    } catch (err) {
      asked[at] = `${from}: ${errorMessage(err)}`;
    }
  }

  for (const source of g.sources) {
    const from = `slot ${source.slot} at ${source.smpAddress}`;
    const at = asked.push(from) - 1;
    tasks.push(
      (async () => {
        const stream = g.fetch(source, g.step);
        let claimed: number | null = null;
        try {
          let range: ShareRange | null = null;
          let start: { crc32: number; bytes: number } | null = null;
          let got = 0;
          let crc = 0;
          for await (const msg of stream) {
            const c = decodeSnapshotChunk(msg, start === null);
            if ('header' in c) {
              range = accept(c.header, source.slot, from);
              claimed = shareOfHeader(c.header).index;
              if (c.bytes !== range.bytes) throw new ShareRefusedError(`announces ${c.bytes} bytes, its range is ${range.bytes}`);
              start = c;
              asked[at] = `${from}: share ${claimed}`;
              continue;
            }
            if (got + c.data.length > range!.bytes) throw new ShareRefusedError(`sends more than the ${range!.bytes} bytes of its range`);
            data.set(c.data, range!.offset + got);
            crc = crc32(c.data, crc);
            got += c.data.length;
          }
          if (!start) throw new ShareRefusedError('the stream ended before the snapshot header');
          if (got !== start.bytes) throw new ShareRefusedError(`${got} bytes arrived, the header announced ${start.bytes}`);
          if (crc !== start.crc32) throw new ShareRefusedError(`crc32 ${crc.toString(16)} of the bytes fetched, the source sealed ${start.crc32.toString(16)}`);
          doneFrom.set(claimed!, from);
        } catch (err) {
          stream.cancel();
          if (claimed !== null) taken.delete(claimed);
          const e = err as Partial<grpc.ServiceError>;
          asked[at] = `${from}: ${typeof e.code === 'number' && e.details !== undefined ? `${grpc.status[e.code]}: ${e.details}` : errorMessage(err)}`;
        }
      })(),
    );
  }
  await Promise.all(tasks);

  const firstHeader = first as SnapshotHeader | null;
  const count = firstHeader ? shareOfHeader(firstHeader).count : 0;
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !doneFrom.has(i));
  if (count === 0 || missing.length > 0 || duplicates.length > 0) {
    const what =
      count === 0
        ? `no share of step ${g.step} could be used`
        : missing.length > 0
          ? `share(s) ${missing.join(', ')} of ${count} of step ${g.step} missing`
          : `the shares of step ${g.step} did not come exactly once (${duplicates.join('; ')})`;
    const where = asked.length > 0 ? asked.join('; ') : 'nowhere: this node holds no share of it and the assignment names no source';
    throw new ShareGatherError(g.step, count === 0 ? [] : missing, asked, `cannot restore slot ${g.slot} from shares: ${what}; asked ${where}`);
  }
  const ref = first as unknown as SnapshotHeader;
  return {
    header: { stage: g.slot, step: g.step, tensors: ref.tensors, scalars: ref.scalars, ...(ref.epoch !== undefined ? { epoch: ref.epoch } : {}) },
    data,
  };
}

/**
 * Fetches shares from snapshot managers over gRPC: one client per call, closed when the call
 * ends. Every call has a deadline of `timeoutMs`; a manager that does not hold the share yet
 * waits up to `waitMs` for it.
 */
export function grpcShareFetch(timeoutMs: number, waitMs = SHARE_WAIT_MS): ShareFetch {
  return (source, step) => {
    const client = new (loadProto().ftrain.v1.SnapshotManager)(source.smpAddress, channelCredentials(), GRPC_CHANNEL_OPTIONS);
    const call = client.FetchSnapshot({ stage: source.slot, step, waitMs: Math.min(waitMs, timeoutMs, MAX_FETCH_WAIT_MS) }, { deadline: deadline(timeoutMs) });
    call.on('status', () => client.close());
    return call;
  };
}

/**
 * Fetches a live replica's whole state from its worker (Worker.FetchState), in the form of a
 * snapshot: `source.smpAddress` is then the worker's address. One client per call, a deadline on it.
 */
export function grpcStateFetch(timeoutMs: number): ShareFetch {
  return (source, step) => {
    const client = new (loadProto().ftrain.v1.Worker)(source.smpAddress, channelCredentials(), GRPC_CHANNEL_OPTIONS);
    const call = client.FetchState({ slot: source.slot, step }, { deadline: deadline(timeoutMs) });
    call.on('status', () => client.close());
    return call;
  };
}
