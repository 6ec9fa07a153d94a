// The replicas' ring all-reduce over real gRPC on 127.0.0.1: every rank ends with the ring's sum
// bit for bit, messages are chunked and may arrive before their all-reduce asks; what is sent is
// what the vector held when it was written, though grpc-js reads a write's object later; a stray or
// malformed stream is refused with its status and costs the ring nothing; a dead peer, a cut
// stream or a halt fails the all-reduce under way instead of hanging it.

import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { GRPC_SERVER_OPTIONS, bindServer, loadProto } from '../../common/proto.ts';
import { encodeReduceChunk, type ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { refusalOf } from '../../common/wire/refusal-wire.ts';
import type { WorkerHandlers } from '../../proto/generated/ftrain/v1/Worker.ts';
import { PipeBrokenError } from '../../worker/pipe-sender.ts';
import { HaltedError } from '../../worker/pipeline-links.ts';
import { ReplicaRing, type RingPlace } from '../../worker/replica-ring.ts';
import { RING_PIECE_VALUES, ringChunks, ringSumReference, type ReducePlan } from '../../worker/ring-all-reduce.ts';
import { GradientFlats } from '../../worker/gradient-flats.ts';
import { bits, keepClient, partsOf, rawCall, rawClient, ringLog as log, startRingServer, stopRingServers, type RingServer as Rank } from '../support/ring-servers.ts';

const STAGE = 2;

afterEach(stopRingServers);

/** D ranks of one stage, each with its server, connected in `epoch`. */
async function startRing(D: number, epoch = 1): Promise<Rank[]> {
  const ranks = await Promise.all(Array.from({ length: D }, () => startRingServer()));
  await connectAll(ranks, epoch);
  return ranks;
}

const placeOf = (ranks: readonly Rank[], replica: number, epoch: number): RingPlace => ({ stage: STAGE, ranks: [replica], size: ranks.length, epoch, addresses: ranks.map((r) => r.address) });

function connectAll(ranks: readonly Rank[], epoch: number): Promise<void[]> {
  return Promise.all(ranks.map((r, i) => r.ring.connect(placeOf(ranks, i, epoch))));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `p`, or a rejection saying it hung, after `ms`: a failure must end a wait, not leave it pending. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`still pending after ${ms} ms`)))]);
}

/** Every rank's all-reduce of `step`, rank r starting `delayMs[r]` late; checks each result against the reference. */
async function reduceAndCheck(ranks: readonly Rank[], step: number, parts: readonly Float32Array[], delayMs: readonly number[] = []): Promise<void> {
  const copies = parts.map((p) => Float32Array.from(p));
  const results = await Promise.all(ranks.map(async (r, i) => (await sleep(delayMs[i] ?? 0), r.ring.allReduce(step, [parts[i]!]))));
  const want = bits(ringSumReference(copies));
  for (const got of results) expect(Buffer.from(bits(got)).equals(want)).toBe(true);
  // The inputs are left as they were.
  parts.forEach((p, i) => expect(Buffer.from(bits(p)).equals(bits(copies[i]!))).toBe(true));
}

const chunk = (over: Partial<ReduceChunk>): ReduceChunk => ({ epoch: 1, stage: STAGE, fromReplica: 0, step: 0, bucket: 0, ringStep: 0, ringChunk: 0, chunkIndex: 0, chunkCount: 1, data: new Uint8Array(8), ...over });

describe('replica ring over gRPC', () => {
  it.each([2, 3, 4])('gives each of %i ranks the ring sum bit for bit, in chunks of ~1 MiB, twice on one connection', async (D) => {
    const ranks = await startRing(D);
    // More than 1 MiB of floats, not a multiple of D: each ring message goes in several chunks.
    const length = (1 << 20) + 7;
    await reduceAndCheck(ranks, 0, partsOf(D, D, length));
    // D ranks x 2(D - 1) messages of 4 length / D bytes each, at most 1 MiB a chunk.
    expect(ranks.reduce((n, r) => n + r.received.chunks, 0)).toBeGreaterThanOrEqual(D * 2 * (D - 1) * Math.ceil((4 * length) / D / (1 << 20)));
    // The next step on the same streams; the last rank starts late, so its messages wait in an inbox.
    await reduceAndCheck(ranks, 1, partsOf(D + 10, D, 1001), [...new Array<number>(D - 1).fill(0), 150]);
  });

  it('grpc-js serializes only the first of several writes inside write(): a view written after it is read later', async () => {
    // Why ReplicaRing serializes its pieces itself: with grpc-js's own serializer, bytes changed
    // after write() returned reach the peer for every write but the first of a burst.
    const got: number[] = [];
    const server = new grpc.Server(GRPC_SERVER_OPTIONS);
    const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<never>) => callback({ code: grpc.status.UNIMPLEMENTED });
    server.addService(loadProto().ftrain.v1.Worker.service, {
      Pipe: unimplemented,
      KeepEdgeCopy: unimplemented,
      FetchWeights: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      FetchState: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      AllReduce: (call, callback) => {
        call.on('data', (c: { data: Buffer }) => got.push(c.data[0]!));
        call.on('end', () => callback(null, {}));
      },
    } satisfies WorkerHandlers);
    const port = await bindServer(server, '127.0.0.1:0');
    try {
      const bytes = new Uint8Array(4096);
      await new Promise<void>((resolve, reject) => {
        const call = rawClient(`127.0.0.1:${port}`).AllReduce((err) => (err ? reject(err) : resolve()));
        for (let i = 0; i < 4; i++) {
          bytes[0] = i;
          call.write(encodeReduceChunk(chunk({ chunkIndex: i, chunkCount: 4, data: bytes })));
          bytes[0] = 255;
        }
        call.end();
      });
      expect(got).toEqual([0, 255, 255, 255]);
    } finally {
      server.forceShutdown();
    }
  });

  it('sends each piece as the vector held it when written: changing it afterwards changes nothing sent', async () => {
    // After each write of one of rank 0's first pieces returns, the values that piece came from are
    // overwritten (a breach of allReduce's contract, to see when the bytes are read). Rank 1's chunk
    // 0 is rank 0's first message plus its own: it must be the ring's sum all the same.
    const ranks = await startRing(2);
    const length = 4 * RING_PIECE_VALUES + 10;
    const parts = partsOf(21, 2, length);
    const want = ringSumReference(parts.map((p) => Float32Array.from(p)));
    const own0 = parts[0]!;
    const method = loadProto().ftrain.v1.Worker.service.AllReduce;
    let overwritten = 0;
    const watch = (call: grpc.ClientWritableStream<unknown>) => {
      const write = call.write.bind(call) as (m: unknown) => boolean;
      call.write = ((m: unknown) => {
        const ok = write(m);
        const c = Buffer.isBuffer(m) ? method.requestDeserialize(m) : (m as ReduceChunk);
        if (c.fromReplica === 0 && c.ringStep === 0) {
          own0.subarray(c.chunkIndex * RING_PIECE_VALUES, (c.chunkIndex + 1) * RING_PIECE_VALUES).fill(Number.NaN);
          overwritten += 1;
        }
        return ok;
      }) as typeof call.write;
      return call;
    };
    // Whichever way the ring opens its stream: the generic client stream or the generated method.
    const generic = grpc.Client.prototype.makeClientStreamRequest;
    const generated = loadProto().ftrain.v1.Worker.prototype.AllReduce;
    grpc.Client.prototype.makeClientStreamRequest = function (this: grpc.Client, ...args: unknown[]) {
      return watch((generic as (...a: unknown[]) => grpc.ClientWritableStream<unknown>).apply(this, args));
    } as typeof generic;
    loadProto().ftrain.v1.Worker.prototype.AllReduce = function (this: grpc.Client, ...args: unknown[]) {
      return watch((generated as (...a: unknown[]) => grpc.ClientWritableStream<unknown>).apply(this, args));
    } as typeof generated;
    try {
      await connectAll(ranks, 2);
    } finally {
      grpc.Client.prototype.makeClientStreamRequest = generic;
      loadProto().ftrain.v1.Worker.prototype.AllReduce = generated;
    }
    const [, got1] = await Promise.all([ranks[0]!.ring.allReduce(0, [own0]), ranks[1]!.ring.allReduce(0, [parts[1]!])]);
    expect(overwritten).toBe(Math.ceil(ringChunks(length, 2)[0]!.to / RING_PIECE_VALUES));
    const { to } = ringChunks(length, 2)[0]!;
    expect(Buffer.from(bits(got1.subarray(0, to))).equals(Buffer.from(bits(want.subarray(0, to))))).toBe(true);
  });

  it('with one replica returns its own array, bits unchanged, without any server', async () => {
    const ring = new ReplicaRing(log, 100);
    await ring.connect({ stage: 0, ranks: [0], size: 1, epoch: 0, addresses: ['127.0.0.1:1'] });
    const own = partsOf(1, 1, 999)[0]!;
    const copy = Float32Array.from(own);
    const got = await ring.allReduce(0, [own]);
    expect(got).toBe(own);
    expect(Buffer.from(bits(got)).equals(bits(copy))).toBe(true);
    ring.close();
  });

  it('refuses a malformed or foreign stream with its status, and the ring completes its all-reduce', async () => {
    const ranks = await startRing(2);
    const parts = partsOf(5, 2, 3001);
    // Rank 1 waits on rank 0 while strangers write to its server.
    const waiting = ranks[1]!.ring.allReduce(0, [parts[1]!]);
    const at = ranks[1]!.address;
    const malformed = await rawCall(at, [chunk({ data: new Uint8Array(6) })]);
    expect(malformed?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(malformed?.details).toMatch(/^data: must hold whole float32 values/);
    const outOfRange = await rawCall(at, [chunk({ chunkIndex: 1, chunkCount: 1 })]);
    expect(outOfRange?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(outOfRange?.details).toMatch(/^chunk_index:/);
    const notProtobuf = await new Promise<grpc.ServiceError | null>((resolve) => {
      const raw = keepClient(new grpc.Client(at, grpc.credentials.createInsecure()));
      const call = raw.makeClientStreamRequest('/ftrain.v1.Worker/AllReduce', (b: Buffer) => b, (b: Buffer) => b, (err) => resolve(err));
      call.write(Buffer.from([0xff, 0xff, 0xff]));
      call.end();
    });
    expect(notProtobuf?.code).toBe(grpc.status.INVALID_ARGUMENT);
    const staleEpoch = await rawCall(at, [chunk({ epoch: 0 })]);
    expect(staleEpoch?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refusalOf(staleEpoch)).toMatchObject({ reason: 'stale-epoch', runEpoch: 1, givenEpoch: 0 });
    const otherStage = await rawCall(at, [chunk({ stage: STAGE + 1 })]);
    expect(refusalOf(otherStage)).toMatchObject({ reason: 'wrong-stage' });
    const notPrevious = await rawCall(at, [chunk({ fromReplica: 1 })]);
    expect(notPrevious?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(notPrevious?.details).toMatch(/rank 1 of stage 2 takes all-reduce chunks only from rank 0 of 2, not from rank 1/);
    const [got0, got1] = await Promise.all([ranks[0]!.ring.allReduce(0, [parts[0]!]), waiting]);
    const want = bits(ringSumReference(parts));
    expect(Buffer.from(bits(got0)).equals(want)).toBe(true);
    expect(Buffer.from(bits(got1)).equals(want)).toBe(true);
    // A message of a step already reduced is refused too.
    const stale = await rawCall(at, [chunk({ step: 0, ringStep: 0, data: new Uint8Array(4 * 1500) })]);
    expect(refusalOf(stale)).toMatchObject({ reason: 'wrong-step' });
  });

  it.each([2, 3])('fails the all-reduce of the rank before a dead peer (of %i) with PipeBrokenError, promptly', async (D) => {
    const ranks = await startRing(D);
    const waiting = ranks[0]!.ring.allReduce(0, [partsOf(3, 1, 5000)[0]!]);
    ranks[1]!.server.forceShutdown();
    await expect(within(waiting)).rejects.toBeInstanceOf(PipeBrokenError);
    // Every later all-reduce of this epoch fails too, until the next connect.
    await expect(ranks[0]!.ring.allReduce(1, [new Float32Array(10)])).rejects.toBeInstanceOf(PipeBrokenError);
  });

  it('fails the all-reduce waiting on a stream from the previous rank that is cut off mid-message', async () => {
    const ranks = await startRing(2);
    const waiting = ranks[1]!.ring.allReduce(0, [new Float32Array((1 << 20) + 1)]);
    // The previous rank's first chunk of a two-chunk message, then its stream is cut (as when it dies).
    const call = rawClient(ranks[1]!.address).AllReduce(() => {});
    call.on('error', () => {});
    call.write(encodeReduceChunk(chunk({ chunkCount: 2, data: new Uint8Array(1 << 20) })));
    await sleep(100);
    call.cancel();
    await expect(within(waiting)).rejects.toBeInstanceOf(PipeBrokenError);
  });

  it("fails the all-reduce at once when the previous rank's own stream is refused half way, and refuses it", async () => {
    const ranks = await startRing(2);
    const waiting = ranks[1]!.ring.allReduce(0, [new Float32Array(2 * RING_PIECE_VALUES + 2)]);
    // The first piece of the previous rank's first message fits; the second claims more values than the chunk has.
    const status = rawCall(ranks[1]!.address, [chunk({ chunkCount: 2, data: new Uint8Array(4 * RING_PIECE_VALUES) }), chunk({ chunkIndex: 1, chunkCount: 2, data: new Uint8Array(8) })]);
    await expect(within(waiting)).rejects.toBeInstanceOf(PipeBrokenError);
    expect((await status)?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((await status)?.details).toMatch(/chunk 0 has 262145 values, the message 262146/);
  });

  it('halt() fails the all-reduce under way and the later ones, until the next connect', async () => {
    const ranks = await startRing(2);
    const waiting = ranks[0]!.ring.allReduce(0, [new Float32Array(100)]);
    const reason = new HaltedError('a recovery began');
    ranks[0]!.ring.halt(reason);
    await expect(within(waiting)).rejects.toBe(reason);
    await expect(ranks[0]!.ring.allReduce(1, [new Float32Array(100)])).rejects.toBe(reason);
    await connectAll(ranks, 2);
    await reduceAndCheck(ranks, 1, partsOf(9, 2, 777));
  });

  it.each([2, 3])('in buckets (%i ranks), sums each once its values are final, and gives the bits of one all-reduce', async (D) => {
    const ranks = await startRing(D);
    const sizes = [300_000, 5, 200_000, 0, 123_457, 70_000];
    const length = sizes.reduce((n, x) => n + x, 0);
    const parts = partsOf(21, D, length);
    // Each rank fills its part variable by variable from the back, as a backward pass does,
    // pausing between variables; rank r starts r x 40 ms late.
    const flats = parts.map(() => new GradientFlats(sizes, [new Float32Array(length)], 150_000));
    expect(flats[0]!.plan.buckets.length).toBe(3);
    const offsets = sizes.map((_, i) => sizes.slice(0, i).reduce((n, x) => n + x, 0));
    const running = ranks.map((r, i) => r.ring.allReduce(3, flats[i]!.parts, flats[i]!.plan));
    await Promise.all(
      flats.map(async (f, r) => {
        await sleep(40 * r);
        for (let v = sizes.length - 1; v >= 0; v--) {
          f.finalize(0, v, parts[r]!.subarray(offsets[v]!, offsets[v]! + sizes[v]!));
          await sleep(10);
        }
      }),
    );
    const want = bits(ringSumReference(parts));
    for (const got of await within(Promise.all(running))) expect(Buffer.from(bits(got)).equals(want)).toBe(true);
    // The next step, one bucket, on the same streams.
    await reduceAndCheck(ranks, 4, partsOf(5, D, 999));
  });

  it('an all-reduce in buckets fails when its step is abandoned before a bucket is ready, and the ring goes on', async () => {
    const ranks = await startRing(2);
    const plans = ranks.map(() => new GradientFlats([50, 50], [new Float32Array(100)], 50));
    const running = ranks.map((r, i) => r.ring.allReduce(0, plans[i]!.parts, plans[i]!.plan));
    plans.forEach((p) => p.finalize(0, 1, new Float32Array(50).fill(1)));
    const reason = new HaltedError('halted during a backward pass');
    plans[0]!.abandon(reason);
    await expect(within(running[0]!)).rejects.toBe(reason);
    ranks[1]!.ring.halt(reason);
    await expect(within(running[1]!)).rejects.toBe(reason);
    await connectAll(ranks, 2);
    const plan: ReducePlan = { buckets: [{ from: 0, to: 10 }], ready: async () => {} };
    const parts = partsOf(8, 2, 10);
    const sums = await within(Promise.all(ranks.map((r, i) => r.ring.allReduce(0, [parts[i]!], plan))));
    for (const got of sums) expect(Buffer.from(bits(got)).equals(bits(ringSumReference(parts)))).toBe(true);
  });
});
