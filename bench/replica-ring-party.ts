// One party of `ftrain bench replicas`' all-reduce figures: a Worker server on loopback whose
// AllReduce handler is a ReplicaRing once connected, and before that a sink that counts bytes;
// and the client side of both measurements (a ring all-reduce, one raw stream). Each party runs
// in a thread of its own (bench/replica-ring-thread.ts) as each worker has its own process.

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { createLogger } from '../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, GRPC_SERVER_OPTIONS, bindServer, loadProto } from '../common/proto.ts';
import { encodeReduceChunk } from '../common/wire/reduce-wire.ts';
import { chunkFloat32 } from '../domain/tensor-codec.ts';
import type { ReduceChunk__Output } from '../proto/generated/ftrain/v1/ReduceChunk.ts';
import type { WorkerHandlers } from '../proto/generated/ftrain/v1/Worker.ts';
import { ReplicaRing } from '../worker/replica-ring.ts';
import { channelCredentials } from '../common/transport.ts';

const unimplemented = (_call: unknown, callback: grpc.sendUnaryData<never>) => callback({ code: grpc.status.UNIMPLEMENTED });

/** A vector of `length` float32 values, the same for the same seed, made where it is used. */
function vector(length: number, seed: number): Float32Array {
  const v = new Float32Array(length);
  let x = seed | 0;
  for (let i = 0; i < length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) | 0;
    v[i] = (x >>> 8) / (1 << 24) - 0.5;
  }
  return v;
}

export class BenchParty {
  private readonly ring = new ReplicaRing(createLogger({ name: 'bench', level: 'silent' }), 5000);
  private connected = false;
  private own: Float32Array | null = null;
  /** Bytes the sink counted since the last stream began. */
  private counted = 0;

  private constructor(
    private readonly server: grpc.Server,
    readonly address: string,
  ) {}

  static async start(): Promise<BenchParty> {
    const server = new grpc.Server(GRPC_SERVER_OPTIONS);
    let party: BenchParty | null = null;
    const handlers: WorkerHandlers = {
      Pipe: unimplemented,
      KeepEdgeCopy: unimplemented,
      FetchWeights: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      FetchState: (call) => call.emit('error', { code: grpc.status.UNIMPLEMENTED }),
      AllReduce: (call, callback) => {
        if (party?.connected) return party.ring.handle(call, callback);
        call.on('data', (c: ReduceChunk__Output) => party && (party.counted += c.data.byteLength));
        call.on('end', () => callback(null, {}));
      },
    };
    server.addService(loadProto().ftrain.v1.Worker.service, handlers);
    party = new BenchParty(server, `127.0.0.1:${await bindServer(server, '127.0.0.1:0')}`);
    return party;
  }

  /** Joins the ring of `addresses` as `replica`, with a vector of `length` values to reduce. */
  async connect(replica: number, addresses: readonly string[], length: number): Promise<void> {
    this.connected = true;
    this.own = vector(length, replica);
    await this.ring.connect({ stage: 0, ranks: [replica], size: addresses.length, epoch: 0, addresses });
  }

  /** This rank's all-reduce of `step`; resolves with its time in ms. */
  async reduce(step: number): Promise<number> {
    const t0 = performance.now();
    await this.ring.allReduce(step, [this.own!]);
    return performance.now() - t0;
  }

  /** One raw AllReduce stream of `length` values to the sink at `address`, in ~1 MiB chunks with back-pressure; resolves with its time in ms once the sink answered. */
  async stream(address: string, length: number, run: number): Promise<number> {
    const chunks = chunkFloat32(vector(length, 0));
    const client = new (loadProto().ftrain.v1.Worker)(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
    try {
      await new Promise<void>((resolve, reject) => client.waitForReady(Date.now() + 5000, (err) => (err ? reject(err) : resolve())));
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        const call = client.AllReduce((err) => (err ? reject(err) : resolve()));
        void (async () => {
          for (let i = 0; i < chunks.length; i++) {
            const data = chunks[i]!;
            const ok = call.write(encodeReduceChunk({ epoch: 0, stage: 0, fromReplica: 0, step: run, bucket: 0, ringStep: 0, ringChunk: 0, chunkIndex: i, chunkCount: chunks.length, data }));
            if (!ok) await once(call, 'drain');
          }
          call.end();
        })().catch(reject);
      });
      return performance.now() - t0;
    } finally {
      client.close();
    }
  }

  /** Bytes the sink counted since the last call, and resets the count. */
  takeCounted(): number {
    const n = this.counted;
    this.counted = 0;
    return n;
  }

  close(): void {
    this.ring.close();
    this.server.forceShutdown();
  }
}
