// The coordinator's heartbeat desk (coordinator/heartbeat-desk.ts): the Register reply names it;
// it answers a beat while the coordinator's event loop is busy, holds its answers while that loop
// is stuck past PULSE_STALE_MS (in order, released when it runs again), and a beat the coordinator
// does not take ends its stream with the refusal. The beating client runs on a thread of its own,
// as a node's heartbeat thread does, so that blocking this thread's loop blocks only the
// coordinator's.

import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from 'node:worker_threads';
import { CoordinatorServer } from '../../coordinator/coordinator-server.ts';
import { PULSE_STALE_MS } from '../../coordinator/heartbeat-desk.ts';
import { GRPC_CHANNEL_OPTIONS, PROTO_PATH, deadline, loadProto } from '../../common/proto.ts';
import { refusalOf } from '../../common/wire/refusal-wire.ts';
import { compileJobOptions } from '../../domain/job-options.ts';

/** A client thread: beats `count` times as `nodeId`, `everyMs` apart, on one stream; posts each answer's time, then how the stream ended. */
const BEATER = `
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { parentPort, workerData } = require('node:worker_threads');
const { protoPath, address, nodeId, count, everyMs } = workerData;
const proto = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true }));
const client = new proto.ftrain.v1.Coordinator(address, grpc.credentials.createInsecure());
const s = client.Heartbeats();
const sent = [];
s.on('data', () => parentPort.postMessage({ type: 'answer', ms: performance.now() - sent.shift() }));
s.on('error', (err) => parentPort.postMessage({ type: 'ended', code: err.code, details: err.details, trailer: err.metadata.get('ftrain-refusal-bin')[0] ?? null }));
s.on('status', (st) => st.code === 0 && parentPort.postMessage({ type: 'ended', code: 0 }));
let n = 0;
const beat = () => {
  sent.push(performance.now());
  s.write({ nodeId, memory: { rssBytes: 1000, peakRssBytes: 1000 } });
  if (++n < count) setTimeout(beat, everyMs);
  else setTimeout(() => s.end(), 3000);
};
parentPort.postMessage({ type: 'ready' });
parentPort.once('message', beat);
`;

interface Beaten {
  readonly answersMs: number[];
  readonly ended: { code: number; details?: string; trailer?: Uint8Array | null } | null;
}

/** Starts a beater; `go` makes it start beating; `done` resolves when its stream ends (or after the answers stop coming). */
async function beater(address: string, nodeId: string, count: number, everyMs: number) {
  const thread = new Worker(BEATER, { eval: true, workerData: { protoPath: PROTO_PATH, address, nodeId, count, everyMs } });
  const out: Beaten = { answersMs: [], ended: null };
  let finish!: () => void;
  const done = new Promise<Beaten>((resolve) => (finish = () => resolve(out)));
  thread.on('message', (m: { type: string; ms?: number; code?: number; details?: string; trailer?: Uint8Array | null }) => {
    if (m.type === 'answer') out.answersMs.push(m.ms!);
    if (m.type === 'ended') {
      (out as { ended: Beaten['ended'] }).ended = { code: m.code!, details: m.details, trailer: m.trailer };
      finish();
    }
  });
  await new Promise((resolve) => thread.once('message', resolve));
  return { go: () => thread.postMessage('go'), done: done.finally(() => void thread.terminate()) };
}

/** Keeps this thread (the coordinator's event loop) busy for `ms`. */
function block(ms: number): void {
  const until = Date.now() + ms;
  while (Date.now() < until);
}

describe('heartbeat desk', () => {
  const proto = loadProto();
  let server: CoordinatorServer;
  let coordinator: InstanceType<typeof proto.ftrain.v1.Coordinator>;
  let desk = '';

  beforeAll(async () => {
    const job = compileJobOptions({ nodes: 2, backend: 'cpu', leaseMs: 5000, heartbeatMs: 500 });
    server = new CoordinatorServer({ job, dataSha256: '', listen: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
    const port = await server.start();
    coordinator = new proto.ftrain.v1.Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const reply = await new Promise<{ heartbeatPort: number }>((resolve, reject) =>
      coordinator.Register({ nodeId: 'n0', address: '127.0.0.1:1', pid: 1, hostname: 'h' }, { deadline: deadline() }, (err, r) => (err ? reject(err) : resolve(r!))),
    );
    desk = `127.0.0.1:${reply.heartbeatPort}`;
  });

  afterAll(async () => {
    coordinator.close();
    server.requestStop('test over', false);
    await server.close();
  });

  it('is named in the Register reply, on a port of its own', () => {
    expect(desk).toMatch(/^127\.0\.0\.1:[1-9]\d*$/);
    expect(desk).not.toBe(`127.0.0.1:${server.port}`);
  });

  it("answers beats at once while the coordinator's loop is busy, and the beats renew the lease", async () => {
    const b = await beater(desk, 'n0', 8, 100);
    b.go();
    // Busy for less than PULSE_STALE_MS: the desk answers meanwhile.
    await new Promise((r) => setTimeout(r, 50));
    block(700);
    const { answersMs, ended } = await b.done;
    expect(ended?.code).toBe(0);
    expect(answersMs).toHaveLength(8);
    expect(Math.max(...answersMs)).toBeLessThan(300);
    // The coordinator took them (the node is live and heard from).
    const n0 = server.status().nodes.find((n) => n.nodeId === 'n0')!;
    expect(n0.state).not.toBe('lost');
  });

  it('holds its answers, in order, while the loop is stuck past the pulse, and answers them when it runs again', async () => {
    // Beating for 2.5 s, a beat each 100 ms: those after the pulse went stale wait.
    const b = await beater(desk, 'n0', 25, 100);
    b.go();
    await new Promise((r) => setTimeout(r, 50));
    block(PULSE_STALE_MS + 1000);
    const { answersMs } = await b.done;
    expect(answersMs).toHaveLength(25);
    // Beats sent after the pulse went stale waited for the loop: well past what a busy loop costs.
    expect(Math.max(...answersMs)).toBeGreaterThan(500);
  });

  it('ends the stream of a beat the coordinator does not take, with its refusal', async () => {
    const unknown = await beater(desk, 'nobody', 3, 50);
    unknown.go();
    const { ended } = await unknown.done;
    expect(ended?.code).toBe(grpc.status.NOT_FOUND);
    expect(ended?.details).toMatch(/nobody/);
    const err = Object.assign(new Error(ended!.details), { code: ended!.code, details: ended!.details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
    err.metadata.set('ftrain-refusal-bin', Buffer.from(ended!.trailer!));
    expect(refusalOf(err)?.reason).toBe('fenced');

    const empty = await beater(desk, '', 1, 50);
    empty.go();
    const bad = await empty.done;
    expect(bad.answersMs).toHaveLength(0);
    expect(bad.ended?.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it("loses no node whose beats the desk took while the coordinator's loop was busy for longer than the lease", async () => {
    const job = compileJobOptions({ nodes: 2, backend: 'cpu', leaseMs: 1000, heartbeatMs: 100 });
    const short = new CoordinatorServer({ job, dataSha256: '', listen: '127.0.0.1:0', logger: pino({ level: 'silent' }) });
    const port = await short.start();
    const client = new proto.ftrain.v1.Coordinator(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    try {
      const reply = await new Promise<{ heartbeatPort: number }>((resolve, reject) =>
        client.Register({ nodeId: 'busy', address: '127.0.0.1:2', pid: 2, hostname: 'h' }, { deadline: deadline() }, (err, r) => (err ? reject(err) : resolve(r!))),
      );
      const b = await beater(`127.0.0.1:${reply.heartbeatPort}`, 'busy', 40, 100);
      b.go();
      await new Promise((r) => setTimeout(r, 500));
      // Twice the lease without a tick: the desk (its thread ran) took every beat meanwhile.
      block(2000);
      await new Promise((r) => setTimeout(r, 600));
      expect(short.status().nodes.find((n) => n.nodeId === 'busy')!.state).toBe('registered');
      await b.done;
    } finally {
      client.close();
      short.requestStop('test over', false);
      await short.close();
    }
  });
});
