// Runs in a worker thread of the worker process: writes snapshots into the slot directory off
// the training loop. Messages in: WriteRequest (ArrayBuffers transferred, SharedArrayBuffers
// shared). Out, for each request in order: 'committed' (restorable), then 'sealed' (checksum
// added) or 'failed'.
//
// workerData.hooksModule (optional): a module whose `beforeCommit(header, hooksData)` runs after a
// snapshot's bytes are written and before its commit record (the worker's fault port; see
// worker/fault-port.ts). Production runs load none.

import { parentPort, workerData } from 'node:worker_threads';
import { SnapshotSlots, type SnapshotHeader, type SnapshotRecord } from '../domain/snapshot-slots.ts';

export interface WriteRequest {
  readonly type: 'write';
  readonly id: number;
  readonly dir: string;
  readonly slotCount: number;
  /** Steps that must not be overwritten (the global commit step and later). */
  readonly protectedSteps: readonly number[];
  readonly header: SnapshotHeader;
  /** Transferred ArrayBuffers, or SharedArrayBuffers the sender leaves untouched until 'sealed'. */
  readonly buffers: readonly (ArrayBuffer | SharedArrayBuffer)[];
}

/**
 * A snapshot whose bytes the sender wrote into `slot` itself (withdrawing its commit record
 * first): the thread commits it, then seals it with the checksum of the file's bytes.
 */
export interface CommitRequest {
  readonly type: 'commit';
  readonly id: number;
  readonly dir: string;
  readonly slotCount: number;
  readonly slot: number;
  readonly bytes: number;
  readonly header: SnapshotHeader;
}

/** Readies the slots for states of `bytes` bytes (SnapshotSlots.prepare), off the training loop. */
export interface PrepareRequest {
  readonly type: 'prepare';
  readonly id: number;
  readonly dir: string;
  readonly slotCount: number;
  readonly bytes: number;
  readonly slots: number;
}

export type WriteResult =
  | { readonly type: 'prepared'; readonly id: number }
  | { readonly type: 'committed'; readonly id: number; readonly record: SnapshotRecord; readonly commitMs: number }
  | { readonly type: 'sealed'; readonly id: number; readonly record: SnapshotRecord; readonly sealMs: number }
  | { readonly type: 'failed'; readonly id: number; readonly message: string };

/** What a hooks module exports. */
export interface WriterThreadHookModule {
  beforeCommit?(header: SnapshotHeader, data: unknown): void;
}

const { hooksModule, hooksData } = (workerData ?? {}) as { hooksModule?: string; hooksData?: unknown };
const hooks: WriterThreadHookModule | null = hooksModule ? ((await import(hooksModule)) as WriterThreadHookModule) : null;

const slotsByDir = new Map<string, SnapshotSlots>();

function slotsOf(dir: string, slotCount: number): SnapshotSlots {
  let slots = slotsByDir.get(dir);
  if (!slots) {
    slots = new SnapshotSlots(dir, slotCount);
    slotsByDir.set(dir, slots);
  }
  return slots;
}

function commitWritten(req: CommitRequest): void {
  const started = performance.now();
  const slots = slotsOf(req.dir, req.slotCount);
  hooks?.beforeCommit?.(req.header, hooksData);
  const record = slots.commit(req.slot, req.header, req.bytes);
  const committedAt = performance.now();
  parentPort!.postMessage({ type: 'committed', id: req.id, record, commitMs: committedAt - started } satisfies WriteResult);
  const sealed = slots.sealFromFile(record);
  parentPort!.postMessage({ type: 'sealed', id: req.id, record: sealed, sealMs: performance.now() - committedAt } satisfies WriteResult);
}

parentPort!.on('message', (req: WriteRequest | CommitRequest | PrepareRequest) => {
  const started = performance.now();
  try {
    if (req.type === 'commit') return commitWritten(req);
    if (req.type === 'prepare') {
      slotsOf(req.dir, req.slotCount).prepare(req.bytes, req.slots);
      parentPort!.postMessage({ type: 'prepared', id: req.id } satisfies WriteResult);
      return;
    }
    const slots = slotsOf(req.dir, req.slotCount);
    const slot = slots.chooseSlot(new Set(req.protectedSteps));
    const chunks = req.buffers.map((b) => new Uint8Array(b));
    const beforeCommit = hooks?.beforeCommit;
    const record = slots.write(slot, req.header, chunks, beforeCommit ? () => beforeCommit(req.header, hooksData) : undefined);
    const committedAt = performance.now();
    parentPort!.postMessage({ type: 'committed', id: req.id, record, commitMs: committedAt - started } satisfies WriteResult);
    const sealed = slots.seal(record, chunks);
    parentPort!.postMessage({ type: 'sealed', id: req.id, record: sealed, sealMs: performance.now() - committedAt } satisfies WriteResult);
  } catch (err) {
    parentPort!.postMessage({ type: 'failed', id: req.id, message: (err as Error).message } satisfies WriteResult);
  }
});
