// The replicas' ring all-reduce over gRPC: the adapter that carries worker/ring-all-reduce.ts's
// pieces between the D replicas of one stage. Rank r holds one long-lived AllReduce stream to
// rank r + 1 (mod D) and serves the one from rank r - 1. A ring message goes out in pieces of at
// most ~1 MiB, written in order with back-pressure. A piece received for the all-reduce under way
// is added into the sum in the stream's handler as it arrives, and the piece of the next message
// it makes is queued to go on at once: summing overlaps the transfer, and with D > 2 a piece
// travels on round the ring without waiting for the rest of its message. One that arrives before
// its all-reduce begins (a faster neighbour) waits in the epoch's inbox (worker/ring-inbox.ts).
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
import { RingAllReduce, ringSteps, type RingPiece } from './ring-all-reduce.ts';
import { RingInbox, RingRefusedError } from './ring-inbox.ts';

/** This worker's place in its stage's ring for one epoch; `addresses[r]`: replica r's worker. */
export interface RingPlace {
  readonly stage: number;
  readonly replica: number;
  readonly replicas: number;
  readonly epoch: number;
  readonly addresses: readonly string[];
}

/** One epoch's ring: where this rank is, its stream to the next rank, what the previous one sent. */
interface EpochRing {
  readonly place: RingPlace;
  /** The rank whose stream this one serves. */
  readonly prev: number;
  readonly inbox: RingInbox;
  /** Writes serialized ReduceChunks (see the top of this file). */
  call: grpc.ClientWritableStream<Buffer> | null;
  running: boolean;
}

/** A ReduceChunk's protobuf bytes, as grpc-js would make them, made now. */
function serializeChunk(c: ReduceChunk): Buffer {
  return loadProto().ftrain.v1.Worker.service.AllReduce.requestSerialize(encodeReduceChunk(c));
}

export class ReplicaRing {
  private ring: EpochRing | null = null;
  private clients: WorkerClient[] = [];

  constructor(
    private readonly log: Logger,
    private readonly connectTimeoutMs: number,
  ) {}

  /** Drops the previous epoch's ring (failing its waits); with more than one replica, opens the stream to the next rank. */
  async connect(place: RingPlace): Promise<void> {
    const { replica, replicas, addresses } = place;
    if (!Number.isInteger(replicas) || replicas < 1 || replica < 0 || replica >= replicas || addresses.length !== replicas) {
      throw new ProtocolError(`replica ${replica} of ${replicas} with ${addresses.length} addresses is no place in a ring`);
    }
    this.reset(new HaltedError(`the replica ring of epoch ${place.epoch} replaces the last one`));
    const ring: EpochRing = { place, prev: (replica - 1 + replicas) % replicas, inbox: new RingInbox(), call: null, running: false };
    this.ring = ring;
    if (replicas === 1) return;
    const address = addresses[(replica + 1) % replicas]!;
    const client = new (loadProto().ftrain.v1.Worker)(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    this.clients.push(client);
    try {
      await new Promise<void>((resolve, reject) =>
        client.waitForReady(deadline(this.connectTimeoutMs), (err) => (err ? reject(new PipeBrokenError(new Error(`next replica ${address} unreachable: ${err.message}`))) : resolve())),
      );
    } catch (err) {
      ring.inbox.fail(err as Error);
      throw err;
    }
    if (this.ring !== ring) return; // a later connect or a close came first
    const onBroken = (err: Error) => {
      if (this.ring !== ring || ring.inbox.failedWith) return;
      this.log.warn({ err: err.message, stage: place.stage, replica }, 'stream to the next replica broke');
      ring.inbox.fail(new PipeBrokenError(err));
    };
    const method = loadProto().ftrain.v1.Worker.service.AllReduce;
    ring.call = client.makeClientStreamRequest<Buffer, Ack__Output>(method.path, (b: Buffer) => b, method.responseDeserialize, (err) => err && onBroken(err));
    ring.call.on('error', onBroken);
  }

  /**
   * This rank's part in the all-reduce of `step`: resolves with the sum of every replica's `own`,
   * the same bits on every rank, in a new array; `own` is never written, and must not change until
   * the promise settles (it is read as the ring goes). With one replica `own` itself is the result.
   * One at a time, steps increasing within an epoch.
   */
  async allReduce(step: number, own: Float32Array): Promise<Float32Array> {
    const ring = this.ring;
    if (!ring) throw new ProtocolError('the replica ring is not connected');
    if (ring.inbox.failedWith) throw ring.inbox.failedWith;
    if (ring.place.replicas === 1) return own;
    if (ring.running) throw new ProtocolError(`an all-reduce is under way; step ${step} must wait for it`);
    ring.running = true;
    try {
      const rank = new RingAllReduce(ring.place.replica, ring.place.replicas, own);
      // Pieces to send, in order: the first message's, then each forwarded as its piece came in.
      const queue: (RingPiece | undefined)[] = rank.start();
      let sent = 0;
      const scratch = { buffer: new ArrayBuffer(0) };
      ring.inbox.begin(step, {
        receive: (c) => {
          const out = rank.receive({ step: c.ringStep, chunk: c.ringChunk, index: c.chunkIndex, count: c.chunkCount, values: float32Values(c.data, scratch) });
          if (out) queue.push(out);
        },
        get ringStep() {
          return rank.ringStep;
        },
      });
      while (!rank.done || sent < queue.length) {
        if (sent < queue.length) {
          const piece = queue[sent]!;
          queue[sent++] = undefined; // the view is not needed once its bytes are serialized
          await this.send(ring, step, piece);
        } else {
          await ring.inbox.next();
        }
      }
      return rank.result;
    } finally {
      ring.inbox.end();
      ring.running = false;
    }
  }

  /**
   * Serves Worker.AllReduce: the previous rank's stream, for the ring in force. A chunk that does
   * not decode ends the call with INVALID_ARGUMENT naming the field; one of another epoch, stage
   * or sender, or of a step already past, with FAILED_PRECONDITION and its refusal. Either way
   * nothing the ring holds is touched.
   */
  handle(call: grpc.ServerReadableStream<ReduceChunk__Output, Ack>, callback: grpc.sendUnaryData<Ack>): void {
    const sequence = new ReduceSequence();
    let accepted: EpochRing | null = null;
    let over = false;
    call.on('data', (msg: ReduceChunk__Output | MalformedMessage) => {
      if (over) return;
      try {
        const c = decodeReduceChunk(msg);
        const ring = this.check(c);
        sequence.add(c);
        accepted = ring;
        ring.inbox.put(c);
      } catch (err) {
        over = true;
        this.log.warn({ err: errorMessage(err) }, 'rejected an all-reduce stream');
        callback(err instanceof RingRefusedError ? refusalStatus(err.refusal) : invalidStatus(err));
        // The previous rank's own stream, refused: nothing more of it will be summed.
        const ring: EpochRing | null = accepted;
        if (ring && ring === this.ring) ring.inbox.senderGone(new PipeBrokenError(err instanceof Error ? err : new Error(String(err))));
      }
    });
    // The previous rank's stream ends only when it leaves the epoch or dies (grpc-js may say
    // 'end' before 'cancelled' for a cut stream): a wait for a message not yet here is in vain.
    const ended = (how: string) => {
      over = true;
      const ring = accepted;
      if (ring && ring === this.ring) ring.inbox.senderGone(new PipeBrokenError(new Error(`the stream from replica ${ring.prev} of stage ${ring.place.stage} ${how}`)));
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
    this.ring?.inbox.fail(reason);
  }

  /** Ends the stream and fails every wait: the node's end. */
  close(): void {
    this.reset(new HaltedError('node is shutting down'));
  }

  /** The ring a chunk belongs to; RingRefusedError says why it is not this ring's, WireError what is out of range. */
  private check(c: ReduceChunk): EpochRing {
    const ring = this.ring;
    if (!ring) throw new RingRefusedError({ reason: RefusalReason.wrongState, message: 'this worker is in no replica ring yet' });
    const { stage, epoch, replica, replicas } = ring.place;
    if (c.epoch !== epoch) {
      throw new RingRefusedError({ reason: RefusalReason.staleEpoch, message: `all-reduce chunk of epoch ${c.epoch}; this ring is in epoch ${epoch}`, runEpoch: epoch, givenEpoch: c.epoch });
    }
    if (c.stage !== stage) throw new RingRefusedError({ reason: RefusalReason.wrongStage, message: `all-reduce chunk for stage ${c.stage}; this worker holds stage ${stage}` });
    if (replicas === 1 || c.fromReplica !== ring.prev) {
      throw new RingRefusedError({ reason: RefusalReason.wrongStage, message: `replica ${replica} of stage ${stage} takes all-reduce chunks only from replica ${ring.prev} of ${replicas}, not from replica ${c.fromReplica}` });
    }
    if (c.ringStep >= ringSteps(replicas)) throw new WireError('ring_step', `must be below ${ringSteps(replicas)} in a ring of ${replicas}, got ${c.ringStep}`);
    if (c.ringChunk >= replicas) throw new WireError('ring_chunk', `must be below ${replicas} in a ring of ${replicas}, got ${c.ringChunk}`);
    ring.inbox.refuseStale(c.step, c.ringStep);
    return ring;
  }

  /**
   * One piece to the next rank, serialized here (a copy of its values: the piece may view a vector
   * that changes later); waits for 'drain' when the stream's buffer is full.
   */
  private async send(ring: EpochRing, step: number, p: RingPiece): Promise<void> {
    const call = ring.call;
    if (!call) throw ring.inbox.failedWith ?? new ProtocolError('the stream to the next replica is not open');
    if (ring.inbox.failedWith) throw ring.inbox.failedWith;
    const { epoch, stage, replica } = ring.place;
    const data = Buffer.from(p.values.buffer, p.values.byteOffset, p.values.byteLength);
    const chunk: ReduceChunk = { epoch, stage, fromReplica: replica, step, ringStep: p.step, ringChunk: p.chunk, chunkIndex: p.index, chunkCount: p.count, data };
    if (call.write(serializeChunk(chunk))) return;
    try {
      await Promise.race([once(call, 'drain'), ring.inbox.failed]);
    } catch (err) {
      throw ring.inbox.failedWith ?? new PipeBrokenError(err instanceof Error ? err : new Error(String(err)));
    }
  }

  private reset(reason: Error): void {
    const ring = this.ring;
    this.ring = null;
    ring?.inbox.fail(reason);
    ring?.call?.end();
    for (const c of this.clients) c.close();
    this.clients = [];
  }
}
