// The replicas' ring all-reduce over gRPC: the adapter that carries worker/ring-all-reduce.ts's
// pieces between the D replicas of one stage. Rank r holds one long-lived AllReduce stream to
// rank r + 1 (mod D) and serves the one from rank r - 1. A ring message goes out in pieces of at
// most ~1 MiB, written in order with back-pressure. A piece received for the all-reduce under way
// is added into the sum in the stream's handler as it arrives, and the piece of the next message
// it makes is queued to go on at once: summing overlaps the transfer, and with D > 2 a piece
// travels on round the ring without waiting for the rest of its message. One that arrives before
// its all-reduce begins (a faster neighbour) waits in the epoch's inbox (worker/ring-inbox.ts).
//
// A worker may play several ranks (`--on-replica-loss keep`: a replica trains a lost one's
// micro-batches and plays its rank too). Each rank it plays has its own state machine, inbox and
// stream to the next rank's address, which may be this worker's own: the ring is the same ring of
// D ranks, each chunk summed in the same order. A stream served is routed to the hosted rank whose
// previous rank sent it. Ranks are positions in the ring: replicas, or under `shrink` the
// positions of the replicas left in it (worker/replica-work.ts).
//
// Pieces are serialized by this adapter when it writes them (the stream's own serializer is the
// identity), because grpc-js serializes only the first of several writes inside `write`: the
// others wait in the stream's buffer as the objects given, and a view queued there would be read
// after its values changed. So a piece may view the vector it comes from, and no copy is made
// besides the one into the message's bytes.
//
// Everything belongs to one epoch: `connect` drops the previous epoch's stream and inbox, failing
// its waits, so no piece of an abandoned timeline is ever summed. The stream to the next rank
// breaking, or the previous rank's stream ending (or being refused) while pieces are awaited, fails
// the all-reduce with PipeBrokenError: the peer died, the coordinator recovers. A peer alive but
// silent is the coordinator's to find (its lease); it then halts this ring.

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import type { Logger } from '../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { ReduceSequence, decodeReduceChunk, encodeReduceChunk, float32Values, type ReduceChunk } from '../common/wire/reduce-wire.ts';
import { invalidStatus, refusalStatus } from '../common/wire/refusal-wire.ts';
import { WireError, type MalformedMessage } from '../common/wire/wire-check.ts';
import { ProtocolError, errorMessage } from '../domain/errors.ts';
import { RefusalReason } from '../domain/refusal.ts';
import type { Ack, Ack__Output } from '../proto/generated/ftrain/v1/Ack.ts';
import type { ReduceChunk__Output } from '../proto/generated/ftrain/v1/ReduceChunk.ts';
import type { WorkerClient } from '../proto/generated/ftrain/v1/Worker.ts';
import { PipeBrokenError } from './pipe-sender.ts';
import { HaltedError } from './pipeline-links.ts';
import { RingAllReduce, ringSteps, type ReducePlan, type RingPiece } from './ring-all-reduce.ts';
import { RingInbox, RingRefusedError } from './ring-inbox.ts';
import { channelCredentials } from '../common/transport.ts';

/** This worker's place in its stage's ring for one epoch; `addresses[r]`: the worker playing rank r. */
export interface RingPlace {
  readonly stage: number;
  /**
   * The ranks this worker plays, distinct, its own first; `allReduce` takes one vector per rank,
   * in this order. One rank but under `--on-replica-loss keep`.
   */
  readonly ranks: readonly number[];
  /** Ranks in the ring. */
  readonly size: number;
  readonly epoch: number;
  readonly addresses: readonly string[];
}

/** One rank this worker plays in one epoch: its stream to the next rank, what the previous one sent. */
interface HostedRank {
  readonly rank: number;
  /** The rank whose stream this one serves. */
  readonly prev: number;
  readonly inbox: RingInbox;
  /** Writes serialized ReduceChunks (see the top of this file). */
  call: grpc.ClientWritableStream<Buffer> | null;
}

/** One epoch's ring: where this worker is, the ranks it plays. */
interface EpochRing {
  readonly place: RingPlace;
  readonly hosts: readonly HostedRank[];
  running: boolean;
}

/** `ranks` as people read them: `rank 1`, `ranks 1, 0`. */
const ranksNamed = (ranks: readonly number[]) => `${ranks.length === 1 ? 'rank' : 'ranks'} ${ranks.join(', ')}`;

/** A ReduceChunk's protobuf bytes, as grpc-js would make them, made now. */
function serializeChunk(c: ReduceChunk): Buffer {
  return loadProto().ftrain.v1.Worker.service.AllReduce.requestSerialize(encodeReduceChunk(c));
}

export class ReplicaRing {
  private ring: EpochRing | null = null;
  private clients: WorkerClient[] = [];
  /**
   * The result array of each rank played, by its place in `RingPlace.ranks`, and its scratch for
   * unaligned pieces, kept from one all-reduce to the next: a new array of a stage's gradient for
   * every step costs a page fault per 4 KiB written, which on some machines took longer than the
   * sums themselves (200 ms for 64 MiB, measured).
   */
  private readonly results: Float32Array[] = [];
  private readonly scratches: { buffer: ArrayBuffer }[] = [];

  constructor(
    private readonly log: Logger,
    private readonly connectTimeoutMs: number,
  ) {}

  /**
   * Drops the previous epoch's ring (failing its waits); in a ring of more than one rank, opens the
   * stream of each rank played to the next rank.
   */
  async connect(place: RingPlace): Promise<void> {
    const { ranks, size, addresses } = place;
    const valid = Number.isInteger(size) && size >= 1 && addresses.length === size && ranks.length >= 1 && ranks.every((r, i) => Number.isInteger(r) && r >= 0 && r < size && ranks.indexOf(r) === i);
    if (!valid) throw new ProtocolError(`${ranksNamed(ranks)} of ${size} with ${addresses.length} addresses is no place in a ring`);
    this.reset(new HaltedError(`the replica ring of epoch ${place.epoch} replaces the last one`));
    const hosts = ranks.map((rank): HostedRank => ({ rank, prev: (rank - 1 + size) % size, inbox: new RingInbox(), call: null }));
    const ring: EpochRing = { place, hosts, running: false };
    this.ring = ring;
    if (size === 1) return;
    try {
      await Promise.all(hosts.map((host) => this.open(ring, host)));
    } catch (err) {
      for (const host of hosts) host.inbox.fail(err as Error);
      throw err;
    }
  }

  /** The stream of `host` to the next rank's worker (this one's own, for a rank it plays too). */
  private async open(ring: EpochRing, host: HostedRank): Promise<void> {
    const { place } = ring;
    const address = place.addresses[(host.rank + 1) % place.size]!;
    const client = new (loadProto().ftrain.v1.Worker)(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
    this.clients.push(client);
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(deadline(this.connectTimeoutMs), (err) => (err ? reject(new PipeBrokenError(new Error(`next replica ${address} unreachable: ${err.message}`))) : resolve())),
    );
    if (this.ring !== ring) return; // a later connect or a close came first
    const onBroken = (err: Error) => {
      if (this.ring !== ring || host.inbox.failedWith) return;
      this.log.warn({ err: err.message, stage: place.stage, rank: host.rank }, 'stream to the next replica broke');
      host.inbox.fail(new PipeBrokenError(err));
    };
    const method = loadProto().ftrain.v1.Worker.service.AllReduce;
    host.call = client.makeClientStreamRequest<Buffer, Ack__Output>(method.path, (b: Buffer) => b, method.responseDeserialize, (err) => err && onBroken(err));
    host.call.on('error', onBroken);
  }

  /**
   * The part in the all-reduce of `step` of the ranks this worker plays, `parts[i]` rank
   * `ranks[i]`'s vector: resolves with the sum of every rank's, the same bits on every rank, in a
   * new array; `parts` are never written, and must not change until the promise settles (they are
   * read as the ring goes). In a ring of one rank its vector itself is the result. One at a time,
   * steps increasing within an epoch. The ranks played run at once; when one fails, the others
   * are failed with it (the ring cannot complete) and the first failure is thrown. With a `plan`,
   * the vector is summed bucket by bucket, each as its values become final (the same bits as in
   * one piece): a part's range may be written until its bucket is ready, and not after. The
   * result array is this ring's, reused: it holds the sum until the next all-reduce begins.
   */
  async allReduce(step: number, parts: readonly Float32Array[], plan?: ReducePlan): Promise<Float32Array> {
    const ring = this.ring;
    if (!ring) throw new ProtocolError('the replica ring is not connected');
    const failed = ring.hosts.find((h) => h.inbox.failedWith);
    if (failed) throw failed.inbox.failedWith!;
    if (parts.length !== ring.hosts.length) throw new ProtocolError(`${parts.length} vector(s) to reduce for the ${ring.hosts.length} rank(s) this worker plays`);
    if (ring.place.size === 1) {
      if (plan) for (let b = 0; b < plan.buckets.length; b++) await plan.ready(b);
      return parts[0]!;
    }
    if (ring.running) throw new ProtocolError(`an all-reduce is under way; step ${step} must wait for it`);
    ring.running = true;
    try {
      const runs = ring.hosts.map((host, i) =>
        this.reduceRank(ring, host, step, parts[i]!, plan ?? { buckets: [{ from: 0, to: parts[i]!.length }], ready: async () => {} }, i).catch((err: unknown) => {
          for (const other of ring.hosts) if (other !== host) other.inbox.fail(err instanceof Error ? err : new Error(String(err)));
          throw err;
        }),
      );
      const settled = await Promise.allSettled(runs);
      const rejected = settled.find((r) => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      return (settled[0] as PromiseFulfilledResult<Float32Array>).value;
    } finally {
      ring.running = false;
    }
  }

  /** One played rank's part in the all-reduce of `step`: its sum, once its ring steps (of every bucket) are done. */
  private async reduceRank(ring: EpochRing, host: HostedRank, step: number, own: Float32Array, plan: ReducePlan, place: number): Promise<Float32Array> {
    let into = this.results[place];
    if (into?.length !== own.length) this.results[place] = into = new Float32Array(own.length);
    const scratch = (this.scratches[place] ??= { buffer: new ArrayBuffer(0) });
    for (let b = 0; b < plan.buckets.length; b++) {
      await Promise.race([plan.ready(b), host.inbox.failed]);
      await this.reduceRound(ring, host, step, b, new RingAllReduce(host.rank, ring.place.size, own, undefined, { range: plan.buckets[b]!, into }), scratch);
    }
    return into;
  }

  /** One round of the ring (the whole vector, or bucket `bucket` of it) for one played rank. */
  private async reduceRound(ring: EpochRing, host: HostedRank, step: number, bucket: number, rank: RingAllReduce, scratch: { buffer: ArrayBuffer }): Promise<RingAllReduce> {
    try {
      // Pieces to send, in order: the first message's, then each forwarded as its piece came in.
      const queue: (RingPiece | undefined)[] = rank.start();
      let sent = 0;
      host.inbox.begin(
        step,
        {
          receive: (c) => {
            const out = rank.receive({ step: c.ringStep, chunk: c.ringChunk, index: c.chunkIndex, count: c.chunkCount, values: float32Values(c.data, scratch) });
            if (out) queue.push(out);
          },
          get ringStep() {
            return rank.ringStep;
          },
        },
        bucket,
      );
      while (!rank.done || sent < queue.length) {
        if (sent < queue.length) {
          const piece = queue[sent]!;
          queue[sent++] = undefined; // the view is not needed once its bytes are serialized
          await this.send(ring, host, step, bucket, piece);
        } else {
          await host.inbox.next();
        }
      }
      return rank;
    } finally {
      host.inbox.end();
    }
  }

  /**
   * Serves Worker.AllReduce: the stream of the rank before one this worker plays, for the ring in
   * force. A chunk that does not decode ends the call with INVALID_ARGUMENT naming the field; one
   * of another epoch, stage or sender, or of a step already past, with FAILED_PRECONDITION and its
   * refusal. Either way nothing the ring holds is touched. A stream carries one sender's chunks.
   */
  handle(call: grpc.ServerReadableStream<ReduceChunk__Output, Ack>, callback: grpc.sendUnaryData<Ack>): void {
    const sequence = new ReduceSequence();
    let accepted: { readonly ring: EpochRing; readonly host: HostedRank } | null = null;
    let over = false;
    /** The hosted rank the stream feeds, while its ring is in force. */
    const fed = (): HostedRank | null => (accepted && accepted.ring === this.ring ? accepted.host : null);
    call.on('data', (msg: ReduceChunk__Output | MalformedMessage) => {
      if (over) return;
      try {
        const c = decodeReduceChunk(msg);
        const { ring, host } = this.check(c, fed());
        sequence.add(c);
        accepted = { ring, host };
        host.inbox.put(c);
      } catch (err) {
        over = true;
        this.log.warn({ err: errorMessage(err) }, 'rejected an all-reduce stream');
        callback(err instanceof RingRefusedError ? refusalStatus(err.refusal) : invalidStatus(err));
        // The previous rank's own stream, refused: nothing more of it will be summed.
        fed()?.inbox.senderGone(new PipeBrokenError(err instanceof Error ? err : new Error(String(err))));
      }
    });
    // The previous rank's stream ends only when it leaves the epoch or dies (grpc-js may say
    // 'end' before 'cancelled' for a cut stream): a wait for a message not yet here is in vain.
    const ended = (how: string) => {
      over = true;
      const host = fed();
      if (host) host.inbox.senderGone(new PipeBrokenError(new Error(`the stream from rank ${host.prev} of stage ${accepted!.ring.place.stage} ${how}`)));
    };
    call.on('end', () => {
      if (over) return;
      const partial = sequence.partial;
      ended(partial ? 'ended inside a ring message' : 'ended');
      callback(partial ? invalidStatus(new WireError('chunk_count', 'the stream ended inside a ring message')) : null, partial ? undefined : {});
    });
    call.on('cancelled', () => over || ended('was cut off'));
    call.on('error', () => over || ended('was cut off'));
  }

  /** Fails the all-reduce under way and every later one until the next `connect`. */
  halt(reason: Error): void {
    for (const host of this.ring?.hosts ?? []) host.inbox.fail(reason);
  }

  /** Ends the stream and fails every wait: the node's end. */
  close(): void {
    this.reset(new HaltedError('node is shutting down'));
  }

  /**
   * The ring and hosted rank a chunk belongs to: the one whose previous rank sent it, and on a
   * stream already feeding a rank, that rank. RingRefusedError says why it is not this ring's,
   * WireError what is out of range.
   */
  private check(c: ReduceChunk, feeding: HostedRank | null): { ring: EpochRing; host: HostedRank } {
    const ring = this.ring;
    if (!ring) throw new RingRefusedError({ reason: RefusalReason.wrongState, message: 'this worker is in no replica ring yet' });
    const { stage, epoch, size } = ring.place;
    if (c.epoch !== epoch) {
      throw new RingRefusedError({ reason: RefusalReason.staleEpoch, message: `all-reduce chunk of epoch ${c.epoch}; this ring is in epoch ${epoch}`, runEpoch: epoch, givenEpoch: c.epoch });
    }
    if (c.stage !== stage) throw new RingRefusedError({ reason: RefusalReason.wrongStage, message: `all-reduce chunk for stage ${c.stage}; this worker holds stage ${stage}` });
    const host = size === 1 ? undefined : ring.hosts.find((h) => h.prev === c.fromReplica);
    if (!host || (feeding && feeding !== host)) {
      const played = ring.hosts.map((h) => h.rank);
      const prevs = ring.hosts.map((h) => h.prev);
      throw new RingRefusedError({ reason: RefusalReason.wrongStage, message: `${ranksNamed(played)} of stage ${stage} take${played.length === 1 ? 's' : ''} all-reduce chunks only from ${ranksNamed(prevs)} of ${size}${feeding ? ` (this stream: rank ${feeding.prev})` : ''}, not from rank ${c.fromReplica}` });
    }
    if (c.ringStep >= ringSteps(size)) throw new WireError('ring_step', `must be below ${ringSteps(size)} in a ring of ${size}, got ${c.ringStep}`);
    if (c.ringChunk >= size) throw new WireError('ring_chunk', `must be below ${size} in a ring of ${size}, got ${c.ringChunk}`);
    host.inbox.refuseStale(c.step, c.ringStep, c.bucket);
    return { ring, host };
  }

  /**
   * One piece to the next rank, serialized here (a copy of its values: the piece may view a vector
   * that changes later); waits for 'drain' when the stream's buffer is full.
   */
  private async send(ring: EpochRing, host: HostedRank, step: number, bucket: number, p: RingPiece): Promise<void> {
    const call = host.call;
    if (!call) throw host.inbox.failedWith ?? new ProtocolError('the stream to the next replica is not open');
    if (host.inbox.failedWith) throw host.inbox.failedWith;
    const { epoch, stage } = ring.place;
    const data = Buffer.from(p.values.buffer, p.values.byteOffset, p.values.byteLength);
    const chunk: ReduceChunk = { epoch, stage, fromReplica: host.rank, step, bucket, ringStep: p.step, ringChunk: p.chunk, chunkIndex: p.index, chunkCount: p.count, data };
    if (call.write(serializeChunk(chunk))) return;
    try {
      await Promise.race([once(call, 'drain'), host.inbox.failed]);
    } catch (err) {
      throw host.inbox.failedWith ?? new PipeBrokenError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private reset(reason: Error): void {
    const ring = this.ring;
    this.ring = null;
    for (const host of ring?.hosts ?? []) {
      host.inbox.fail(reason);
      host.call?.end();
    }
    for (const c of this.clients) c.close();
    this.clients = [];
  }
}
