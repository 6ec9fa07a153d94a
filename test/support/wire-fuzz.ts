// Malformed and hostile traffic for every RPC of the three services, for a test to send while a
// run goes on: random bytes, wrong and missing fields, out-of-range and huge values, stale
// epochs, unknown and duplicate node ids. Nothing here is well-formed traffic a member would send
// (that would change the run): each message must be refused, and the run must not notice.

import { MAX_SLOTS } from '../../domain/job-options.ts';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { GRPC_CHANNEL_OPTIONS, PROTO_PATH } from '../../common/proto.ts';
import { Prng } from '../../domain/prng.ts';

export interface FuzzTargets {
  readonly coordinator: string;
  /** The run's nodes: id, the stage each holds, its Worker and SnapshotManager addresses. */
  readonly nodes: readonly { readonly nodeId: string; readonly stage: number; readonly address: string; readonly smpAddress: string }[];
}

export interface FuzzResult {
  readonly rpc: string;
  readonly variant: string;
  readonly expect: Expect;
  /** Answered after `until()` said the run is ending (its servers may be shutting down). */
  readonly late: boolean;
  readonly code: grpc.status;
  readonly details: string;
}

/**
 * What a message must be answered with: INVALID_ARGUMENT naming the field (`invalid`), any refusal
 * (`refused`: INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, FAILED_PRECONDITION), OK (`ok`), or
 * either of the last two (`read`: a harmless read that random bytes may happen to make valid).
 */
export type Expect = 'invalid' | 'refused' | 'ok' | 'read';

interface Probe {
  readonly rpc: string;
  readonly variant: string;
  readonly expect: Expect;
  /** Bytes of each message sent (one for unary and server-streaming calls, several for client and bidi streams). */
  readonly messages: Buffer[];
  readonly kind: 'unary' | 'client-stream' | 'server-stream' | 'bidi-stream';
  readonly address: string;
}

const root = protobuf.loadSync(PROTO_PATH);

function bytes(type: string, value: object): Buffer {
  const t = root.lookupType(`ftrain.v1.${type}`);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

const SERVICE: Record<string, string> = {
  Register: 'Coordinator',
  Heartbeat: 'Coordinator',
  Commands: 'Coordinator',
  ReportReady: 'Coordinator',
  ReportStep: 'Coordinator',
  ReportFault: 'Coordinator',
  ReportHalted: 'Coordinator',
  ReportInjection: 'Coordinator',
  ReportProtection: 'Coordinator',
  Leave: 'Coordinator',
  Status: 'Coordinator',
  Pipe: 'Worker',
  KeepEdgeCopy: 'Worker',
  FetchWeights: 'Worker',
  Configure: 'SnapshotManager',
  PutShard: 'SnapshotManager',
  FetchShards: 'SnapshotManager',
  Rebuild: 'SnapshotManager',
  // Last: the random bytes each RPC gets come in this order from one seeded generator, and those
  // of the RPCs before stay as they were (random bytes that happen to parse as a valid Configure
  // are answered OK, which the test counts as wrong).
  ReportMemory: 'Coordinator',
  // After ReportMemory, so that the random bytes of every RPC above stay as they were.
  Heartbeats: 'Coordinator',
};

const REQUEST_TYPE: Record<string, string> = {
  Register: 'RegisterRequest',
  Heartbeat: 'HeartbeatRequest',
  Heartbeats: 'HeartbeatRequest',
  Commands: 'CommandsRequest',
  ReportReady: 'ReadyReport',
  ReportStep: 'StepReport',
  ReportFault: 'FaultReport',
  ReportHalted: 'HaltedReport',
  ReportInjection: 'InjectionReport',
  ReportProtection: 'ProtectionReport',
  ReportMemory: 'MemoryReport',
  Leave: 'LeaveRequest',
  Status: 'StatusRequest',
  Pipe: 'PipeChunk',
  KeepEdgeCopy: 'PipeChunk',
  FetchWeights: 'FetchWeightsRequest',
  Configure: 'ConfigureRequest',
  PutShard: 'ShardChunk',
  FetchShards: 'FetchShardsRequest',
  Rebuild: 'RebuildRequest',
};

export const FUZZED_RPCS = Object.keys(SERVICE);

const STREAMING: Record<string, Probe['kind']> = { Commands: 'server-stream', FetchWeights: 'server-stream', FetchShards: 'server-stream', Pipe: 'client-stream', KeepEdgeCopy: 'client-stream', PutShard: 'client-stream', Heartbeats: 'bidi-stream' };

/** The probes one round can send, built from the run's real node ids and addresses. */
function probes(t: FuzzTargets, rand: Prng): Probe[] {
  const node = t.nodes[Math.floor(rand.next() * t.nodes.length)]!;
  const other = (node.stage + 1) % t.nodes.length;
  const junk = () => Buffer.from(Array.from({ length: 1 + Math.floor(rand.next() * 48) }, () => Math.floor(rand.next() * 256)));
  const huge = 'x'.repeat(70_000);
  const out: Probe[] = [];
  const add = (rpc: string, variant: string, expect: Expect, value: object | Buffer | (object | Buffer)[]) => {
    const list = Array.isArray(value) ? value : [value];
    const type = REQUEST_TYPE[rpc]!;
    const messages = list.map((v) => (Buffer.isBuffer(v) ? v : bytes(type, v)));
    const address = SERVICE[rpc] === 'Coordinator' ? t.coordinator : SERVICE[rpc] === 'Worker' ? node.address : node.smpAddress;
    out.push({ rpc, variant, expect, messages, kind: STREAMING[rpc] ?? 'unary', address });
  };
  for (const rpc of FUZZED_RPCS) {
    // Bytes that cannot parse (0xff is a field with wire type 7, which does not exist): refused as
    // not a valid message. Random bytes that may parse into garbage fields: refused, or answered
    // by a harmless read. (Register only gets the unparseable kind: random bytes that parse could
    // be a new node, which is not malformed.)
    add(rpc, 'unparseable bytes', 'invalid', Buffer.concat([Buffer.from([0xff]), junk()]));
    // (Configure too: bytes that parse as one are a status request, or a protected step no
    // further than the steps the manager has seen, which it takes from its node's worker;
    // authenticating that caller is issue 16's. A step beyond them is refused, below.)
    if (rpc !== 'Register') add(rpc, 'random bytes', rpc === 'Status' || rpc === 'FetchShards' || rpc === 'FetchWeights' || rpc === 'Configure' ? 'read' : 'refused', junk());
  }
  add('Register', 'empty node id', 'invalid', { nodeId: '', address: 'a:1' });
  add('Register', 'no address', 'invalid', { nodeId: 'fuzz-node' });
  add('Register', 'node id of a live node', 'refused', { nodeId: node.nodeId, address: '127.0.0.1:9', pid: 1, hostname: 'fuzz' });
  add('Register', 'huge node id', 'invalid', { nodeId: huge, address: 'a:1' });
  add('Register', 'stage out of range', 'invalid', { nodeId: 'fuzz-node', address: 'a:1', snapshotStage: MAX_SLOTS + 9999 });
  add('Heartbeat', 'unknown node', 'refused', { nodeId: 'fuzz-ghost' });
  add('Heartbeat', 'no node id', 'invalid', {});
  add('Heartbeat', 'memory of no bytes', 'invalid', { nodeId: node.nodeId, memory: {} });
  add('Heartbeat', 'peak memory below current', 'invalid', { nodeId: node.nodeId, memory: { rssBytes: 2_000_000, peakRssBytes: 1_000_000 } });
  // A beat of a live node would renew its lease: only beats that must end the stream.
  add('Heartbeats', 'unknown node', 'refused', [{ nodeId: 'fuzz-ghost' }]);
  add('Heartbeats', 'no node id', 'invalid', [{}]);
  add('Heartbeats', 'peak memory below current', 'invalid', [{ nodeId: node.nodeId, memory: { rssBytes: 2_000_000, peakRssBytes: 1_000_000 } }]);
  add('Commands', 'no node id', 'invalid', {});
  add('Commands', 'second stream of a live node', 'refused', { nodeId: node.nodeId });
  add('Commands', 'unknown node', 'refused', { nodeId: 'fuzz-ghost' });
  add('ReportReady', 'stale epoch', 'refused', { nodeId: node.nodeId, stage: node.stage, epoch: 999 });
  add('ReportReady', 'negative epoch', 'invalid', { nodeId: node.nodeId, stage: node.stage, epoch: -1 });
  add('ReportStep', 'step far ahead', 'refused', { nodeId: node.nodeId, stage: node.stage, step: 1e12, epoch: 999 });
  add('ReportStep', 'negative step', 'invalid', { nodeId: node.nodeId, stage: node.stage, step: -4 });
  add('ReportStep', 'loss not a number', 'invalid', { nodeId: node.nodeId, stage: node.stage, step: 1, loss: Number.NaN });
  add('ReportStep', 'stage of another node', 'refused', { nodeId: node.nodeId, stage: other, step: 0 });
  add('ReportStep', 'unknown node', 'refused', { nodeId: 'fuzz-ghost', stage: 0, step: 0 });
  add('ReportFault', 'stage out of range', 'invalid', { nodeId: node.nodeId, stage: MAX_SLOTS + 7777, message: 'fuzz' });
  add('ReportFault', 'stage of another node', 'refused', { nodeId: node.nodeId, stage: other, message: 'fuzz' });
  add('ReportFault', 'huge message', 'invalid', { nodeId: node.nodeId, stage: node.stage, message: huge });
  add('ReportHalted', 'stale epoch', 'refused', { nodeId: node.nodeId, stage: node.stage, epoch: 999, snapshotSteps: [1, 2] });
  add('ReportInjection', 'no kind', 'invalid', { nodeId: node.nodeId, stage: node.stage, step: 1 });
  add('ReportInjection', 'stage of another node', 'refused', { nodeId: node.nodeId, stage: other, step: 1, kind: 'INJECTION_KIND_WORKER_KILL' });
  add('ReportProtection', 'unknown node', 'refused', { nodeId: 'fuzz-ghost', status: { stage: -1 } });
  add('ReportProtection', 'no status', 'invalid', { nodeId: node.nodeId });
  add('ReportProtection', 'negative bytes', 'invalid', { nodeId: node.nodeId, status: { stage: 0, heldBytes: -5 } });
  const memory = { process: { rssBytes: 1 << 20, peakRssBytes: 1 << 21 }, slotBytes: 4096, peakSlotBytes: 4096 };
  add('ReportMemory', 'unknown node', 'refused', { nodeId: 'fuzz-ghost', ...memory });
  add('ReportMemory', 'another manager than the node\'s', 'refused', { nodeId: node.nodeId, smpAddress: '127.0.0.1:9', ...memory });
  add('ReportMemory', 'no process memory', 'invalid', { nodeId: node.nodeId, slotBytes: 1, peakSlotBytes: 1 });
  add('ReportMemory', 'negative slot bytes', 'invalid', { nodeId: node.nodeId, ...memory, slotBytes: -5 });
  add('ReportMemory', 'peak shard bytes below current', 'invalid', { nodeId: node.nodeId, ...memory, shardBytes: 100, peakShardBytes: 10 });
  add('Leave', 'unknown node', 'refused', { nodeId: 'fuzz-ghost', graceMs: 1000 });
  add('Leave', 'grace too long', 'invalid', { nodeId: node.nodeId, graceMs: 1e15 });
  add('Status', 'empty', 'ok', {});
  add('Pipe', 'stale epoch', 'invalid', [{ kind: 'PIPE_KIND_ACTIVATION', fromStage: 0, epoch: 999, step: 1, microBatch: 0, hop: 1, shape: [1, 1, 1], chunkIndex: 0, chunkCount: 1, data: Buffer.alloc(4) }]);
  add('Pipe', 'no kind', 'invalid', [{ fromStage: 0, chunkCount: 1 }]);
  add('KeepEdgeCopy', 'an activation, not an edge copy', 'invalid', [{ kind: 'PIPE_KIND_ACTIVATION', fromStage: 0, epoch: 999, step: 1, microBatch: 0, hop: 1, shape: [1, 1, 1], chunkIndex: 0, chunkCount: 1, data: Buffer.alloc(4) }]);
  add('KeepEdgeCopy', 'no chunk at all', 'invalid', []);
  add('Pipe', 'chunk index past count', 'invalid', [{ kind: 'PIPE_KIND_GRADIENT', chunkIndex: 3, chunkCount: 2 }]);
  add('Pipe', 'huge shape', 'invalid', [{ kind: 'PIPE_KIND_ACTIVATION', epoch: 999, shape: [1 << 30, 1 << 30, 8], chunkIndex: 0, chunkCount: 1 }]);
  add('Pipe', 'chunks out of order', 'invalid', [{ kind: 'PIPE_KIND_ACTIVATION', epoch: 999, shape: [1], chunkIndex: 1, chunkCount: 2 }]);
  add('FetchWeights', 'stage out of range', 'invalid', { stage: MAX_SLOTS + 500 });
  add('FetchWeights', 'stage of another node', 'refused', { stage: other });
  add('FetchWeights', 'an edge copy it does not keep', 'refused', { stage: node.stage, edgeCopy: true });
  add('Configure', 'negative commit step', 'invalid', { protectedCommitStep: -7 });
  // Were it taken, the manager would free every shard version it holds.
  add('Configure', 'commit step beyond every snapshot', 'refused', { protectedCommitStep: 1_000_000 });
  add('Configure', 'plan without holders', 'invalid', { plan: { stage: 0, code: { dataShards: 2, parityShards: 1 } }, protectedCommitStep: -1 });
  add('PutShard', 'bytes before a header', 'invalid', [{ data: Buffer.alloc(8) }]);
  add('PutShard', 'index past the code', 'invalid', [{ header: { ownerNodeId: 'fuzz', stage: 0, step: 1, index: 9, bytes: 1, layout: { dataShards: 1, parityShards: 1, totalBytes: 1, stripeBytes: 1, stripes: 1 }, snapshot: { stage: 0, step: 1 } } }]);
  add('PutShard', 'more bytes than its header says', 'invalid', [{ header: { ownerNodeId: 'fuzz', stage: 0, step: 1e9, index: 0, bytes: 1, layout: { dataShards: 1, parityShards: 1, totalBytes: 1, stripeBytes: 1, stripes: 1 }, snapshot: { stage: 0, step: 1e9 } } }, { data: Buffer.alloc(64) }]);
  add('FetchShards', 'stage out of range', 'invalid', { stage: MAX_SLOTS + 900 });
  add('FetchShards', 'a version nobody holds', 'ok', { stage: 0, step: 1e9, epoch: 77 });
  add('Rebuild', 'no order', 'invalid', {});
  add('Rebuild', 'no data shards', 'invalid', { order: { stage: 0, step: 1, code: { dataShards: 0, parityShards: 1 } } });
  return out;
}

const identity = (b: Buffer) => b;

/** A stream's answer: the error that ended it, or null when it ended well; what it sends is read and dropped. */
function settleOnEnd(call: NodeJS.EventEmitter, done: (err: grpc.ServiceError | null) => void): void {
  let settled = false;
  call.on('data', () => {});
  call.on('error', (err: grpc.ServiceError) => {
    if (!settled) (settled = true), done(err);
  });
  call.on('end', () => {
    if (!settled) (settled = true), done(null);
  });
}

function send(client: grpc.Client, probe: Probe, deadlineMs: number): Promise<{ code: grpc.status; details: string }> {
  const path = `/ftrain.v1.${SERVICE[probe.rpc]}/${probe.rpc}`;
  const deadline = new Date(Date.now() + deadlineMs);
  return new Promise((resolve) => {
    const done = (err: grpc.ServiceError | null) => resolve(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' });
    if (probe.kind === 'unary') {
      client.makeUnaryRequest(path, identity, identity, probe.messages[0]!, { deadline }, (err) => done(err));
    } else if (probe.kind === 'bidi-stream') {
      const call = client.makeBidiStreamRequest(path, identity, identity, { deadline });
      settleOnEnd(call, done);
      for (const m of probe.messages) call.write(m);
      call.end();
    } else if (probe.kind === 'client-stream') {
      const call = client.makeClientStreamRequest(path, identity, identity, { deadline }, (err) => done(err));
      for (const m of probe.messages) call.write(m);
      call.end();
    } else {
      const call = client.makeServerStreamRequest(path, identity, identity, probe.messages[0]!, { deadline });
      settleOnEnd(call, done);
      // A command stream that was taken stays open: it was not refused, which the test sees.
      if (probe.rpc === 'Commands') setTimeout(() => call.cancel(), 500);
    }
  });
}

/**
 * Sends probes in random order until `until()` says stop or `maxCalls` were sent; resolves with
 * every answer. Bounded in count and in time (every call has a deadline).
 */
export async function fuzzRun(t: FuzzTargets, opts: { seed: number; maxCalls: number; until: () => boolean; deadlineMs?: number }): Promise<FuzzResult[]> {
  const rand = new Prng(opts.seed);
  const clients = new Map<string, grpc.Client>();
  const client = (address: string) => {
    let c = clients.get(address);
    if (!c) clients.set(address, (c = new grpc.Client(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS)));
    return c;
  };
  const results: FuzzResult[] = [];
  try {
    while (results.length < opts.maxCalls && !opts.until()) {
      const round = probes(t, rand);
      // Shuffle: every probe once per round, in a random order.
      for (let i = round.length - 1; i > 0; i--) {
        const j = Math.floor(rand.next() * (i + 1));
        [round[i], round[j]] = [round[j]!, round[i]!];
      }
      for (const p of round) {
        if (results.length >= opts.maxCalls || opts.until()) break;
        const r = await send(client(p.address), p, opts.deadlineMs ?? 5000);
        results.push({ rpc: p.rpc, variant: p.variant, expect: p.expect, late: opts.until(), ...r });
      }
    }
  } finally {
    for (const c of clients.values()) c.close();
  }
  return results;
}
