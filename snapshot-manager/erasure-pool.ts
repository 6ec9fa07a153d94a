// Erasure coding off the event loop: a small pool of worker threads (erasure-pool-thread.ts) that
// run encodeShards, rebuildFromShards and codeFileColumns (column-coder.ts). A job goes to the thread with the fewest jobs in hand;
// a thread does its jobs one at a time, in order.
//
// Buffers cross to the threads without a copy where they can: a SharedArrayBuffer is shared, an
// ArrayBuffer that the view covers whole is transferred (the caller loses it), and only a view of
// part of an ArrayBuffer is copied (sending the view would clone its whole buffer). Results come
// back transferred and are the caller's: the rebuilt data, the parity shards in their own
// buffers, and the data shards, by default views of the buffer the data was handed over in.

import type { Worker } from 'node:worker_threads';
import { startTsThread } from '../common/ts-thread.ts';
import {
  DEFAULT_STRIPE_BYTES,
  DataShardMode,
  ErasureCodecError,
  NotEnoughShardsError,
  oneStripeBytes,
  type CodecOptions,
  type EncodeOptions,
  type EncodedSnapshot,
  type ErasureParams,
  type RebuildResult,
  type Shard,
  type ShardLayout,
} from './erasure-codec.ts';
import type { PoolFailure, PoolReply, PoolRequest } from './erasure-pool-thread.ts';
import type { CodedColumns, FileRebuild } from './column-coder.ts';

export const DEFAULT_POOL_THREADS = 1;
const MAX_POOL_THREADS = 64;

export interface ErasurePoolOptions {
  /** Worker threads; 1 unless given. */
  readonly threads?: number;
}

export interface PoolEncodeOptions extends EncodeOptions {
  /**
   * Unless given: 'view' when the data is handed to the pool (transferred or copied), so the data
   * shards come back as views of that one buffer instead of k fresh copies (the caller no longer
   * has it, so the aliasing is invisible); 'copy' when the data is shared, whose views the caller
   * could change under the shards.
   */
  readonly dataShards?: EncodeOptions['dataShards'];
  /** Unless given: one stripe with 'view' (the layout that lets data shards be views), else DEFAULT_STRIPE_BYTES. */
  readonly stripeBytes?: number;
  /**
   * What happens to `data` when it is a whole ArrayBuffer: 'transfer' (the default) moves it to
   * the thread, and the caller's view is detached; 'copy' leaves it with the caller, at the cost
   * of a copy on the calling thread.
   */
  readonly handOff?: 'transfer' | 'copy';
  /** Test hook: the thread that takes the job exits at once, as a crash would. */
  readonly exitThread?: boolean;
}

export interface PoolRebuildOptions extends CodecOptions {
  /** As for encode, for the shards' buffers. */
  readonly handOff?: 'transfer' | 'copy';
}

/** Thrown (as a rejection) when the pool cannot run a job: its thread died, or the pool is closed. */
export class ErasurePoolError extends Error {
  override readonly name = 'ErasurePoolError';
  constructor(
    message: string,
    readonly threadIndex: number | null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface Job {
  readonly what: string;
  resolve(reply: PoolReply): void;
  reject(err: Error): void;
}

interface PoolThread {
  readonly index: number;
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  dead: boolean;
}

function checkThreads(threads: number): number {
  if (!Number.isInteger(threads) || threads < 1 || threads > MAX_POOL_THREADS) {
    throw new RangeError(`ErasurePool threads must be an integer from 1 to ${MAX_POOL_THREADS}, not ${threads}`);
  }
  return threads;
}

/** The view to send and the buffers to transfer with it, under the hand-off rule above. */
function handOff(view: Uint8Array, mode: 'transfer' | 'copy', transfer: Set<ArrayBuffer>): Uint8Array {
  const buffer = view.buffer;
  if (buffer instanceof SharedArrayBuffer) return view;
  if (mode === 'transfer' && view.byteOffset === 0 && view.byteLength === buffer.byteLength) {
    transfer.add(buffer as ArrayBuffer);
    return view;
  }
  const copy = view.slice();
  transfer.add(copy.buffer as ArrayBuffer);
  return copy;
}

function errorOf(failure: PoolFailure): Error {
  switch (failure.kind) {
    case 'not-enough-shards':
      return new NotEnoughShardsError(failure.intact, failure.needed, failure.corrupt);
    case 'codec':
      return new ErasureCodecError(failure.message);
    case 'other': {
      const err = new Error(failure.message);
      err.name = failure.name;
      return err;
    }
  }
}

export class ErasurePool {
  readonly threads: number;
  private readonly slots: (PoolThread | null)[];
  private nextId = 1;
  private closed = false;

  constructor(options: ErasurePoolOptions = {}) {
    this.threads = checkThreads(options.threads ?? DEFAULT_POOL_THREADS);
    this.slots = Array.from({ length: this.threads }, (_, i) => this.startThread(i));
  }

  /**
   * Encodes `data` on a pool thread; see the module comment for what happens to its buffer. With
   * dataShards 'view', the data shards that come back are views of that buffer (a shared one
   * then must stay unchanged while they are used).
   */
  encode(data: Uint8Array, params: ErasureParams, options: PoolEncodeOptions = {}): Promise<EncodedSnapshot> {
    const transfer = new Set<ArrayBuffer>();
    const sent = handOff(data, options.handOff ?? 'transfer', transfer);
    const dataShards = options.dataShards ?? (sent.buffer instanceof SharedArrayBuffer ? DataShardMode.copy : DataShardMode.view);
    const stripeBytes = options.stripeBytes ?? (dataShards === DataShardMode.view ? oneStripeBytes(data.byteLength, params.dataShards) : DEFAULT_STRIPE_BYTES);
    const codec: EncodeOptions = { kernel: options.kernel, dataShards };
    return this.submit(
      `encoding ${data.byteLength} bytes as RS(${params.dataShards},${params.parityShards})`,
      (id) => ({ type: 'encode', id, data: sent, params, stripeBytes, codec, exitThread: options.exitThread }),
      transfer,
    ).then((reply) => {
      if (reply.type !== 'encoded') throw new ErasurePoolError(`unexpected reply '${reply.type}' to an encode`, null);
      return { layout: reply.layout, shards: reply.shards };
    });
  }

  /** Rebuilds on a pool thread; the shards' buffers are handed off as `data` is for encode. */
  rebuild(layout: ShardLayout, shards: readonly (Shard | null)[], options: PoolRebuildOptions = {}): Promise<RebuildResult> {
    const transfer = new Set<ArrayBuffer>();
    const mode = options.handOff ?? 'transfer';
    const sent = shards.map((s) => (s ? { index: s.index, crc32: s.crc32, bytes: handOff(s.bytes, mode, transfer) } : null));
    const codec: CodecOptions = { kernel: options.kernel };
    return this.submit(
      `rebuilding ${layout.totalBytes} bytes from RS(${layout.dataShards},${layout.parityShards}) shards`,
      (id) => ({ type: 'rebuild', id, layout, shards: sent, codec }),
      transfer,
    ).then((reply) => {
      if (reply.type !== 'rebuilt') throw new ErasurePoolError(`unexpected reply '${reply.type}' to a rebuild`, null);
      return { data: reply.data, corrupt: reply.corrupt, missing: reply.missing };
    });
  }

  /**
   * Rebuilds on a pool thread straight into the file at `path` (rebuildIntoFile), which the thread
   * writes itself; the shards' buffers are handed off as for rebuild.
   */
  rebuildInto(path: string, layout: ShardLayout, shards: readonly (Shard | null)[], options: PoolRebuildOptions = {}): Promise<FileRebuild> {
    const transfer = new Set<ArrayBuffer>();
    const mode = options.handOff ?? 'transfer';
    const sent = shards.map((s) => (s ? { index: s.index, crc32: s.crc32, bytes: handOff(s.bytes, mode, transfer) } : null));
    const codec: CodecOptions = { kernel: options.kernel };
    return this.submit(
      `rebuilding ${layout.totalBytes} bytes from RS(${layout.dataShards},${layout.parityShards}) shards into ${path}`,
      (id) => ({ type: 'rebuild-into', id, layout, shards: sent, path, codec }),
      transfer,
    ).then((reply) => {
      if (reply.type !== 'rebuilt-into') throw new ErasurePoolError(`unexpected reply '${reply.type}' to a rebuild into a file`, null);
      return { crc32: reply.crc32, corrupt: reply.corrupt, missing: reply.missing };
    });
  }

  /**
   * Codes columns [from, from + bytes) of the one-stripe shards of the snapshot file at `path`
   * (codeFileColumns) on a pool thread, which reads the file itself; the pieces, when asked for,
   * come back transferred and are the caller's.
   */
  codeColumns(path: string, layout: ShardLayout, from: number, bytes: number, keepPieces: boolean, options: CodecOptions = {}): Promise<CodedColumns> {
    const codec: CodecOptions = { kernel: options.kernel };
    return this.submit(
      `coding columns [${from}, ${from + bytes}) of ${path} as RS(${layout.dataShards},${layout.parityShards})`,
      (id) => ({ type: 'columns', id, path, layout, from, bytes, keepPieces, codec }),
      new Set(),
    ).then((reply) => {
      if (reply.type !== 'columns') throw new ErasurePoolError(`unexpected reply '${reply.type}' to a column coding`, null);
      return reply.coded;
    });
  }

  /** Stops the threads; jobs still in hand are rejected. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      this.slots.map(async (t) => {
        if (!t) return;
        this.failJobs(t, new ErasurePoolError('the erasure pool was closed before the job finished', t.index));
        t.dead = true;
        await t.worker.terminate();
      }),
    );
  }

  private submit(what: string, request: (id: number) => PoolRequest, transfer: Set<ArrayBuffer>): Promise<PoolReply> {
    if (this.closed) return Promise.reject(new ErasurePoolError(`the erasure pool is closed (${what})`, null));
    const thread = this.leastBusy();
    const id = this.nextId++;
    return new Promise<PoolReply>((resolve, reject) => {
      // Held while the thread has work, so the process waits for it; unref'd when idle.
      if (thread.jobs.size === 0) thread.worker.ref();
      thread.jobs.set(id, { what, resolve, reject });
      try {
        thread.worker.postMessage(request(id), [...transfer]);
      } catch (err) {
        // Nothing was sent (a buffer already handed off, say): the job is not the thread's.
        thread.jobs.delete(id);
        if (thread.jobs.size === 0) thread.worker.unref();
        reject(new ErasurePoolError(`${what}: could not hand the job to the thread: ${err instanceof Error ? err.message : String(err)}`, thread.index));
      }
    });
  }

  private leastBusy(): PoolThread {
    let best: PoolThread | null = null;
    for (let i = 0; i < this.slots.length; i++) {
      let t = this.slots[i]!;
      if (!t || t.dead) {
        t = this.startThread(i);
        this.slots[i] = t;
      }
      if (!best || t.jobs.size < best.jobs.size) best = t;
    }
    return best!;
  }

  private startThread(index: number): PoolThread {
    const worker = startTsThread(new URL('./erasure-pool-thread.ts', import.meta.url));
    const thread: PoolThread = { index, worker, jobs: new Map(), dead: false };
    worker.on('message', (reply: PoolReply) => {
      const job = thread.jobs.get(reply.id);
      if (!job) return;
      thread.jobs.delete(reply.id);
      if (thread.jobs.size === 0) worker.unref();
      if (reply.type === 'failed') job.reject(errorOf(reply.failure));
      else job.resolve(reply);
    });
    worker.on('error', (err) => {
      thread.dead = true;
      this.failJobs(thread, new ErasurePoolError(`erasure pool thread ${index} crashed: ${err.message}`, index, { cause: err }));
    });
    worker.on('exit', (code) => {
      thread.dead = true;
      this.failJobs(thread, new ErasurePoolError(`erasure pool thread ${index} exited with code ${code}`, index));
    });
    worker.unref();
    return thread;
  }

  private failJobs(thread: PoolThread, err: ErasurePoolError): void {
    for (const job of thread.jobs.values()) {
      job.reject(new ErasurePoolError(`${err.message} while ${job.what}; the job did not complete, submit it again`, thread.index, { cause: err.cause }));
    }
    thread.jobs.clear();
  }
}
