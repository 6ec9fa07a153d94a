// A whole committed snapshot from one snapshot manager to another (`--replicas`): a node that
// takes over a lost stage whose replica lives copies that replica's snapshot of the step to
// restore, instead of rebuilding it from erasure shards (no decode, one source). The source
// streams the slot's header, crc32 and length, then its bytes in chunks read from the slot file;
// the copier writes them straight into a staging file beside a slot (one chunk in memory at a
// time), checks length and crc32, and commits the file as the snapshot of its own slot.

import * as grpc from '@grpc/grpc-js';
import { closeSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Logger } from '../common/logging.ts';
import { decodeSnapshotChunk, encodeSnapshotStart } from '../common/wire/snapshot-manager-wire.ts';
import { WireError, type MalformedMessage } from '../common/wire/wire-check.ts';
import type { ReplicaCopyOrder } from '../domain/erasure-protection.ts';
import type { SnapshotHeader, SnapshotRecord, SnapshotSlots } from '../domain/snapshot-slots.ts';
import type { SnapshotChunk, SnapshotChunk__Output } from '../proto/generated/ftrain/v1/SnapshotChunk.ts';

/** Snapshot bytes per gRPC message. */
export const SNAPSHOT_CHUNK_BYTES = 1 << 20;

/** The copy failed: the snapshot is not the one ordered, or its bytes are not those its source committed. */
export class SnapshotCopyError extends Error {
  override readonly name = 'SnapshotCopyError';
}

/** A stream snapshot chunks are written to, with back-pressure (FetchSnapshot's server stream). */
export interface SnapshotSink {
  write(chunk: SnapshotChunk): boolean;
  readonly destroyed: boolean;
  once(event: 'drain' | 'close', listener: () => void): unknown;
}

/**
 * How long a copy waits for the snapshot it asks for to be sealed: its writer adds the crc32 to
 * the commit record right after the commit, which takes a few milliseconds for a small stage and
 * a good part of a second for hundreds of megabytes (a replica joining the moment its live
 * replicas paused asks for the snapshot they have just committed).
 */
export const SEAL_WAIT_MS = 30_000;

/** How often a snapshot not held yet (FetchSnapshot's wait_ms) is looked for in the slots. */
const APPEAR_POLL_MS = 20;

/**
 * The committed record of (stage, step), looked for until it appears or `waitMs` passes (0: once),
 * or the copier goes away; null when not held by then.
 */
async function committedRecord(slots: SnapshotSlots, stage: number, step: number, sink: SnapshotSink, waitMs: number): Promise<SnapshotRecord | null> {
  const until = Date.now() + waitMs;
  for (;;) {
    const record = slots.records().find((r) => r.header.stage === stage && r.step === step);
    if (record || sink.destroyed || Date.now() >= until) return record ?? null;
    await new Promise((resolve) => setTimeout(resolve, APPEAR_POLL_MS));
  }
}

/** The sealed record of (stage, step), waiting for its seal if it is committed but not sealed yet; null when not held. */
async function sealedRecord(slots: SnapshotSlots, stage: number, step: number, sink: SnapshotSink, waitMs: number): Promise<SnapshotRecord | null> {
  const until = Date.now() + waitMs;
  for (;;) {
    const record = slots.records().find((r) => r.header.stage === stage && r.step === step);
    if (!record || record.crc32 !== null || sink.destroyed || Date.now() >= until) return record?.crc32 === null ? null : (record ?? null);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Serves one FetchSnapshot: the committed snapshot of (stage, step) this manager holds, read from
 * its slot file a chunk at a time (once sealed: see SEAL_WAIT_MS). A sharded snapshot is served
 * as any other: its header says which share it is. With `waitMs` > 0, a snapshot not held yet is
 * waited for that long (this node's own rebuild of it may be under way). NOT_FOUND when none is
 * held by then.
 */
export async function serveSnapshot(sink: SnapshotSink & { emit(event: 'error', err: unknown): unknown; end(): void }, slots: SnapshotSlots, stage: number, step: number, sealWaitMs = SEAL_WAIT_MS, waitMs = 0): Promise<void> {
  const appeared = waitMs > 0 ? await committedRecord(slots, stage, step, sink, waitMs) : null;
  if (sink.destroyed) return;
  const record = await sealedRecord(slots, stage, step, sink, sealWaitMs);
  if (!record) {
    const unsealed = slots.records().some((r) => r.header.stage === stage && r.step === step);
    const waited = waitMs > 0 && !appeared ? ` (waited ${waitMs} ms for it)` : '';
    sink.emit('error', { code: grpc.status.NOT_FOUND, details: unsealed ? `the snapshot of stage ${stage} step ${step} here was not sealed within ${sealWaitMs} ms` : `no committed snapshot of stage ${stage} step ${step} here${waited}` });
    return;
  }
  const fd = openSync(slots.dataFile(record.slot), 'r');
  try {
    if (!sink.write(encodeSnapshotStart(record.header, record.crc32!, record.bytes))) await drained(sink);
    for (let at = 0; at < record.bytes; ) {
      if (sink.destroyed) return; // the copier went away
      // A buffer per chunk: the write keeps it until the message is serialized.
      const chunk = Buffer.allocUnsafe(Math.min(SNAPSHOT_CHUNK_BYTES, record.bytes - at));
      const n = readSync(fd, chunk, 0, chunk.length, at);
      if (n === 0) throw new Error(`slot ${record.slot} ends at ${at} bytes, its record says ${record.bytes}`);
      at += n;
      if (!sink.write({ data: chunk.subarray(0, n) })) await drained(sink);
    }
    sink.end();
  } finally {
    closeSync(fd);
  }
}

function drained(sink: SnapshotSink): Promise<void> {
  return new Promise((resolve) => {
    sink.once('drain', resolve);
    sink.once('close', resolve);
  });
}

/** What a copy did: the snapshot's bytes and how long fetching (and writing) them took. */
export interface CopyOutcome {
  readonly bytes: number;
  readonly fetchMs: number;
}

/**
 * Copies the snapshot a replica copy order names from `stream` (the live replica's FetchSnapshot)
 * into a slot, committed as the snapshot of the order's own slot. Throws SnapshotCopyError (or
 * WireError) and leaves nothing behind when what arrives is not that snapshot whole.
 */
export async function copySnapshot(slots: SnapshotSlots, log: Logger, order: ReplicaCopyOrder, stream: AsyncIterable<SnapshotChunk__Output | MalformedMessage>): Promise<CopyOutcome> {
  const t0 = performance.now();
  let start: { header: SnapshotHeader; crc32: number; bytes: number } | null = null;
  const slot = slots.chooseSlot();
  const staged = slots.stagingFile(slot);
  const fd = openSync(staged, 'w');
  let closed = false;
  let got = 0;
  let crc = 0;
  try {
    for await (const msg of stream) {
      const c = decodeSnapshotChunk(msg, start === null);
      if ('header' in c) {
        if (c.header.stage !== order.fromStage || c.header.step !== order.step) {
          throw new SnapshotCopyError(`asked for stage ${order.fromStage} step ${order.step}, got the snapshot of stage ${c.header.stage} step ${c.header.step}`);
        }
        start = c;
        continue;
      }
      if (got + c.data.length > start!.bytes) throw new WireError('data', `more than the ${start!.bytes} bytes the header announced`);
      writeSync(fd, c.data, 0, c.data.length, got);
      crc = crc32(c.data, crc);
      got += c.data.length;
    }
    if (!start) throw new SnapshotCopyError('the stream ended before the snapshot header');
    if (got !== start.bytes) throw new SnapshotCopyError(`${got} bytes arrived, the header announced ${start.bytes}`);
    if (crc !== start.crc32) throw new SnapshotCopyError(`crc32 ${crc.toString(16)} of the bytes copied, the source committed ${start.crc32.toString(16)}`);
    closeSync(fd);
    closed = true;
    slots.commitFile(slot, { ...start.header, stage: order.stage }, staged, got, crc);
  } catch (err) {
    if (!closed) closeSync(fd);
    rmSync(staged, { force: true });
    throw err;
  }
  const fetchMs = performance.now() - t0;
  log.info({ stage: order.stage, step: order.step, from: order.fromStage, bytes: got, ms: fetchMs }, "snapshot copied from a live replica's snapshot manager");
  return { bytes: got, fetchMs };
}
