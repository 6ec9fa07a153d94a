// Worker servers on 127.0.0.1 whose AllReduce handler is a ReplicaRing (the other RPCs answer
// UNIMPLEMENTED), raw AllReduce calls to them, and the vectors the ring tests reduce.

import * as grpc from '@grpc/grpc-js';
import { createLogger } from '../../common/logging.ts';
import { GRPC_SERVER_OPTIONS, bindServer, loadProto } from '../../common/proto.ts';
import { encodeReduceChunk, type ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { Prng } from '../../domain/prng.ts';
import type { WorkerClient, WorkerHandlers } from '../../proto/generated/ftrain/v1/Worker.ts';
import { ReplicaRing } from '../../worker/replica-ring.ts';

export const ringLog = createLogger({ name: 'test', level: process.env.RING_LOG ?? 'silent' });

export interface RingServer {
  readonly ring: ReplicaRing;
  readonly server: grpc.Server;
  readonly address: string;
  /** AllReduce chunks this server received. */
  readonly received: { chunks: number };
}

const started: RingServer[] = [];
const clients: grpc.Client[] = [];

/** Closes every ring, server and raw client started since the last call (an afterEach). */
export function stopRingServers(): void {
  for (const r of started.splice(0)) {
    r.ring.close();
    r.server.forceShutdown();
  }
  for (const c of clients.splice(0)) c.close();
}

export async function startRingServer(): Promise<RingServer> {
  const ring = new ReplicaRing(ringLog, 2000);
  const server = new grpc.Server(GRPC_SERVER_OPTIONS);
  const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<never>) => callback({ code: grpc.status.UNIMPLEMENTED });
  const received = { chunks: 0 };
  const handlers: WorkerHandlers = {
    Pipe: unimplemented,
    KeepEdgeCopy: unimplemented,
    FetchWeights: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    FetchState: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
    AllReduce: (call, callback) => {
      call.on('data', () => (received.chunks += 1));
      ring.handle(call, callback);
    },
  };
  server.addService(loadProto().ftrain.v1.Worker.service, handlers);
  const port = await bindServer(server, '127.0.0.1:0');
  const rank: RingServer = { ring, server, address: `127.0.0.1:${port}`, received };
  started.push(rank);
  return rank;
}

/** D vectors of `length` values whose float32 sums depend on the order they are added in. */
export function partsOf(seed: number, D: number, length: number): Float32Array[] {
  const rng = new Prng(seed);
  return Array.from({ length: D }, () => Float32Array.from({ length }, () => (rng.next() - 0.5) * 10 ** Math.floor(rng.next() * 8 - 4)));
}

export const bits = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function rawClient(address: string): WorkerClient {
  const client = new (loadProto().ftrain.v1.Worker)(address, grpc.credentials.createInsecure());
  clients.push(client);
  return client;
}

/** Writes `chunks` on a raw AllReduce call and resolves with the status it ends with. */
export function rawCall(address: string, chunks: readonly ReduceChunk[]): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = rawClient(address).AllReduce((err) => resolve(err));
    for (const c of chunks) call.write(encodeReduceChunk(c));
    call.end();
  });
}

/** A raw grpc.Client the next stopRingServers closes. */
export function keepClient<C extends grpc.Client>(client: C): C {
  clients.push(client);
  return client;
}
