// The worker's side of the lazy asynchronous snapshot: hand the state's buffer to a writer
// thread (a transfer, not a copy) and go on training; await the commit before the next
// optimizer step changes the weights.

import type { Worker } from 'node:worker_threads';
import { runtimeModule } from '../common/package-root.ts';
import { startTsThread } from '../common/ts-thread.ts';
import type { SnapshotHeader, SnapshotRecord } from '../domain/snapshot-slots.ts';
import type { CommitRequest, PrepareRequest, WriteRequest, WriteResult } from './snapshot-writer-thread.ts';
import type { WriterThreadHooks } from './fault-port.ts';

export interface PendingSnapshot {
  /** Resolves when the snapshot is restorable. */
  readonly committed: Promise<{ record: SnapshotRecord; commitMs: number }>;
  /** Resolves when its checksum is sealed in; shared buffers may change only after this. */
  readonly sealed: Promise<{ record: SnapshotRecord; sealMs: number }>;
}

interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

interface Waiters {
  readonly committed: Deferred<{ record: SnapshotRecord; commitMs: number }>;
  readonly sealed: Deferred<{ record: SnapshotRecord; sealMs: number }>;
}

export class SnapshotWriter {
  private readonly thread: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, Waiters>();
  private readonly preparing = new Map<number, Deferred<void>>();

  /** `hooks`: a module the thread loads and calls between a snapshot's bytes and its commit (fault injection); null: none. */
  constructor(
    readonly dir: string,
    readonly slotCount: number,
    hooks: WriterThreadHooks | null = null,
  ) {
    // The thread imports the hooks module itself: its compiled .js when this runs compiled.
    const threadData = hooks ? { hooksModule: runtimeModule(hooks.module).href, hooksData: hooks.data } : {};
    this.thread = startTsThread(new URL('./snapshot-writer-thread.ts', import.meta.url), threadData);
    this.thread.on('message', (m: WriteResult) => {
      if (m.type === 'prepared') {
        this.preparing.get(m.id)?.resolve();
        this.preparing.delete(m.id);
        if (this.pending.size === 0 && this.preparing.size === 0) this.thread.unref();
        return;
      }
      const p = this.pending.get(m.id);
      if (!p) return;
      if (m.type === 'committed') {
        p.committed.resolve({ record: m.record, commitMs: m.commitMs });
        return;
      }
      this.pending.delete(m.id);
      if (this.pending.size === 0) this.thread.unref();
      if (m.type === 'sealed') {
        p.sealed.resolve({ record: m.record, sealMs: m.sealMs });
      } else {
        const err = new Error(`snapshot write failed: ${m.message}`);
        p.committed.reject(err);
        p.sealed.reject(err);
      }
    });
    this.thread.on('error', (err) => this.failAll(err));
    this.thread.on('exit', (code) => this.failAll(new Error(`snapshot writer thread exited with code ${code}`)));
    this.thread.unref();
  }

  /**
   * Starts writing a snapshot. ArrayBuffers are transferred to the writer thread: the caller must
   * not use them afterwards. SharedArrayBuffers are shared (they cannot be transferred): the
   * caller must not change them until `sealed` resolves.
   */
  write(header: SnapshotHeader, buffers: (ArrayBuffer | SharedArrayBuffer)[], protectedSteps: readonly number[] = []): PendingSnapshot {
    const id = this.nextId++;
    const req: WriteRequest = { type: 'write', id, dir: this.dir, slotCount: this.slotCount, protectedSteps, header, buffers };
    const waiters: Waiters = { committed: deferred(), sealed: deferred() };
    // A caller that awaits only the commit must not see the seal's failure as unhandled.
    waiters.sealed.promise.catch(() => undefined);
    // Held while a write is under way, so the process waits for it.
    if (this.pending.size === 0) this.thread.ref();
    this.pending.set(id, waiters);
    this.thread.postMessage(req, buffers.filter((b): b is ArrayBuffer => !(b instanceof SharedArrayBuffer)));
    return { committed: waiters.committed.promise, sealed: waiters.sealed.promise };
  }

  /**
   * Commits and seals a snapshot whose `bytes` bytes the caller already wrote into `slot` (see
   * SnapshotSlots.writeData); the thread checksums them from the file.
   */
  commit(slot: number, header: SnapshotHeader, bytes: number): PendingSnapshot {
    const id = this.nextId++;
    const req: CommitRequest = { type: 'commit', id, dir: this.dir, slotCount: this.slotCount, slot, bytes, header };
    const waiters: Waiters = { committed: deferred(), sealed: deferred() };
    waiters.sealed.promise.catch(() => undefined);
    if (this.pending.size === 0) this.thread.ref();
    this.pending.set(id, waiters);
    this.thread.postMessage(req);
    return { committed: waiters.committed.promise, sealed: waiters.sealed.promise };
  }

  /** Readies the slots for states of `bytes` bytes in the thread (SnapshotSlots.prepare); resolves when done. */
  prepare(bytes: number, slots: number): Promise<void> {
    const id = this.nextId++;
    const done = deferred<void>();
    this.preparing.set(id, done);
    this.thread.ref();
    this.thread.postMessage({ type: 'prepare', id, dir: this.dir, slotCount: this.slotCount, bytes, slots } satisfies PrepareRequest);
    return done.promise;
  }

  private failAll(err: Error): void {
    for (const p of this.preparing.values()) p.reject(err);
    this.preparing.clear();
    for (const p of this.pending.values()) {
      p.committed.reject(err);
      p.sealed.reject(err);
    }
    this.pending.clear();
  }

  async close(): Promise<void> {
    await this.thread.terminate();
  }
}
