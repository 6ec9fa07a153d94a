// The codecs at the edges: domain values survive the wire bit for bit, and a malformed message is
// refused naming the field. Messages go through real protobuf bytes, loaded as grpc-js loads them.

import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { PROTO_LOADER_OPTIONS, PROTO_PATH } from '../../common/proto.ts';
import {
  decodeCommand,
  decodeHeartbeat,
  decodeMemoryReport,
  decodeRegister,
  decodeRunStatus,
  decodeStepReply,
  decodeStepReport,
  encodeCommand,
  encodeMemoryReport,
  encodeRunStatus,
  encodeStepReply,
} from '../../common/wire/coordinator-wire.ts';
import type { SmpMemoryReport } from '../../domain/node-reports.ts';
import { decodeJob, encodeJob } from '../../common/wire/plan-wire.ts';
import { callError, refusalOf, refusalStatus } from '../../common/wire/refusal-wire.ts';
import { decodeFetchSnapshot, decodeShardChunk, decodeSnapshotChunk, encodeShardHeader, encodeSnapshotStart } from '../../common/wire/snapshot-manager-wire.ts';
import type { SnapshotHeader } from '../../domain/snapshot-slots.ts';
import { decodePipeChunk } from '../../common/wire/worker-wire.ts';
import { MALFORMED, WireError } from '../../common/wire/wire-check.ts';
import type { Command } from '../../domain/commands.ts';
import type { ShardHeader } from '../../domain/erasure-protection.ts';
import { MAX_SLOTS, compileJobOptions } from '../../domain/job-options.ts';
import { StaleEpochError } from '../../domain/refusal.ts';

const root = protobuf.loadSync(PROTO_PATH);

/** Through real bytes, back as proto-loader hands messages to handlers. */
function wire<T>(type: string, value: object): T {
  const t = root.lookupType(`ftrain.v1.${type}`);
  const bytes = t.encode(t.fromObject(value)).finish();
  return t.toObject(t.decode(bytes), { ...PROTO_LOADER_OPTIONS, longs: Number, enums: String }) as T;
}

const job = compileJobOptions({ nodes: 4, steps: 30, seed: 7, spares: 1, ec: '3,1', recovery: 'checkfree-plus', inject: '5:1:worker-kill,9:2:node-kill', lr: '0.0017', checkpointEvery: 5, checkpointDir: '/tmp/ck' });

describe('wire codecs', () => {
  it('carry a compiled job bit for bit', () => {
    expect(decodeJob('job', wire('Job', encodeJob(job)))).toEqual(job);
    const open = compileJobOptions({ nodes: 2 });
    expect(decodeJob('job', wire('Job', encodeJob(open)))).toEqual(open);
    // --snapshot-every auto travels as -1; N and 0 as themselves; anything below -1 is refused.
    expect(encodeJob(open).snapshotEvery).toBe(-1);
    for (const every of ['auto', '0', '3']) {
      const j = compileJobOptions({ nodes: 2, snapshotEvery: every });
      expect(decodeJob('job', wire('Job', encodeJob(j))).snapshotEvery).toBe(j.snapshotEvery);
    }
    expect(() => decodeJob('job', wire('Job', { ...encodeJob(open), snapshotEvery: -2 }))).toThrow(/^job.snapshot_every: must be an integer from -1 to 1000000, got -2$/);
    // --overlap-reduce travels as on|off; unset (an older coordinator) is off; another word is refused.
    const overlapped = compileJobOptions({ nodes: 2, replicas: 2, overlapReduce: 'on' });
    expect(decodeJob('job', wire('Job', encodeJob(overlapped))).overlapReduce).toBe(true);
    expect(decodeJob('job', wire('Job', { ...encodeJob(overlapped), overlapReduce: '' })).overlapReduce).toBe(false);
    expect(() => decodeJob('job', wire('Job', { ...encodeJob(overlapped), overlapReduce: 'sometimes' }))).toThrow(/job.overlap_reduce/);
  });

  it('carry the snapshot interval of a step reply, and refuse one that is not an interval', () => {
    const reply = { protectedCommitStep: 4, snapshotInterval: { fromStep: 12, every: 3 } };
    expect(decodeStepReply(wire('StepReply', encodeStepReply(reply)))).toEqual(reply);
    expect(decodeStepReply(wire('StepReply', encodeStepReply({ protectedCommitStep: -1, snapshotInterval: null })))).toEqual({ protectedCommitStep: -1, snapshotInterval: null });
    expect(() => decodeStepReply(wire('StepReply', { protectedCommitStep: 4, snapshotInterval: { fromStep: 12, every: 0 } }))).toThrow(/^snapshot_interval.every: must be an integer from 1 to 1000000, got 0$/);
    expect(() => decodeStepReply(undefined)).toThrow(/^StepReply: is missing$/);
  });

  it('carry every command', () => {
    const plan = { stage: 1, code: { dataShards: 2, parityShards: 1 }, holders: [{ nodeId: 'n0', address: 's0:1' }, { nodeId: 'n2', address: 's2:1' }, { nodeId: 'n3', address: 's3:1' }], degraded: false };
    const commands: Command[] = [
      { kind: 'assign', stage: 1, numStages: 4, prevAddress: 'a:1', nextAddress: 'c:3', epoch: 2, restoreStep: 7, plan, rebuild: { stage: 1, step: 7, epoch: 1, code: plan.code, sources: ['s0:1', 's2:1'] }, checkfree: { kind: 'average', prev: { stage: 0, address: 'a:1' }, next: { stage: 2, address: 'c:3' }, weights: { a: 0.4001, b: 0.2001 }, learningRateScale: 1.1 }, replica: 0, replicaAddresses: [], peerNodeIds: ['n0', 'n2'] },
      { kind: 'start', fromStep: 3, toStep: 30, restoreCheckpointStep: -1, fromScratch: false },
      { kind: 'limit', toStep: 0, pause: false },
      { kind: 'halt', epoch: 3, reason: 'stage 2 failed', resumeAtMost: 3 },
      { kind: 'stop', reason: 'done', failed: true },
      { kind: 'protect', plan: null },
    ];
    for (const c of commands) {
      const back = decodeCommand(wire('Command', encodeCommand(c, job, 'abc')));
      expect(back).toEqual(c.kind === 'assign' ? { ...c, job, dataSha256: 'abc' } : c);
    }
    // A replica's stage, taking over with a copy from its live replica.
    const replicated = compileJobOptions({ nodes: '2', replicas: '2' });
    const copy: Command = { kind: 'assign', stage: 1, numStages: 2, prevAddress: 'a:1', nextAddress: '', epoch: 3, restoreStep: 7, plan: null, rebuild: null, checkfree: null, replica: 1, replicaAddresses: ['a:2', 'b:2'], replicaCopy: { stage: 3, step: 7, fromStage: 1, fromAddress: 's1:1' } };
    expect(decodeCommand(wire('Command', encodeCommand(copy, replicated, 'abc')))).toEqual({ ...copy, job: replicated, dataSha256: 'abc' });
    // One address per replica, and a copy from another slot than its own.
    expect(() => decodeCommand(wire('Command', encodeCommand({ ...copy, replicaAddresses: ['a:2'] }, replicated, 'abc')))).toThrow(/^assign.replica_addresses: has 1 addresses, but the job has 2 replica\(s\)/);
    expect(() => decodeCommand(wire('Command', encodeCommand({ ...copy, replicaCopy: { stage: 3, step: 7, fromStage: 3, fromAddress: 's1:1' } }, replicated, 'abc')))).toThrow(/^assign.replica_copy.from_stage: is the stage being copied into/);
    // While a replica is out: a host plays its guest's rank (keep), or the ring goes without it (shrink).
    const three = compileJobOptions({ nodes: '2', replicas: '3' });
    const host: Command = { kind: 'assign', stage: 0, numStages: 2, prevAddress: '', nextAddress: 'b:1', epoch: 2, restoreStep: 5, plan: null, rebuild: null, checkfree: null, replica: 0, replicaAddresses: ['a:1', 'a:1', 'c:1'], guestReplicas: [1] };
    expect(decodeCommand(wire('Command', encodeCommand(host, three, 'abc')))).toEqual({ ...host, job: three, dataSha256: 'abc' });
    const shrunk: Command = { ...host, replicaAddresses: ['a:1', '', 'c:1'], guestReplicas: [], outReplicas: [1] };
    const { guestReplicas: _, ...shrunkBack } = shrunk;
    expect(decodeCommand(wire('Command', encodeCommand(shrunk, three, 'abc')))).toEqual({ ...shrunkBack, job: three, dataSha256: 'abc' });
    const bad = (c: Partial<typeof host>) => () => decodeCommand(wire('Command', encodeCommand({ ...host, ...c } as Command, three, 'abc')));
    expect(bad({ guestReplicas: [0] })).toThrow(/^assign.guest_replicas: names replica 0, the node's own/);
    expect(bad({ guestReplicas: [2, 1] })).toThrow(/^assign.guest_replicas: must be ascending, without repeats/);
    expect(bad({ guestReplicas: [3] })).toThrow(/^assign.guest_replicas\[0\]: must be an integer from 0 to 2, got 3/);
    expect(bad({ guestReplicas: [], outReplicas: [1] })).toThrow(/^assign.replica_addresses\[1\]: must be empty: replica 1 is out/);
    expect(bad({ guestReplicas: [], replicaAddresses: ['a:1', '', 'c:1'] })).toThrow(/^assign.replica_addresses\[1\]: must not be empty/);
    expect(bad({ guestReplicas: [1], outReplicas: [2] })).toThrow(/^assign.out_replicas: a replica is either/);
  });

  it("carry an assignment's share of the stage's snapshots and the sources of its other shares, and refuse ones that cannot be", () => {
    // Three replicas of two stages: stage 1's slots are 1, 3 and 5; this node is replica 0 (slot 1).
    const three = compileJobOptions({ nodes: '2', replicas: '3' });
    const sharded: Command = {
      kind: 'assign', stage: 1, numStages: 2, prevAddress: 'a:1', nextAddress: '', epoch: 4, restoreStep: 9, plan: null, rebuild: null, checkfree: null,
      replica: 0, replicaAddresses: ['a:2', 'b:2', 'c:2'], shareIndex: 0, shareCount: 3,
      shareSources: [{ slot: 3, smpAddress: 'b:7' }, { slot: 5, smpAddress: '[::1]:7' }],
    };
    expect(decodeCommand(wire('Command', encodeCommand(sharded, three, 'abc')))).toEqual({ ...sharded, job: three, dataSha256: 'abc' });
    // A count of 0 or 1 is the whole state: nothing of it in the decoded assignment, as before.
    const { shareIndex: _i, shareCount: _c, shareSources: _s, ...whole } = sharded;
    expect(decodeCommand(wire('Command', encodeCommand(whole, three, 'abc')))).toEqual({ ...whole, job: three, dataSha256: 'abc' });
    expect(decodeCommand(wire('Command', encodeCommand({ ...whole, shareIndex: 0, shareCount: 1 }, three, 'abc')))).toEqual({ ...whole, job: three, dataSha256: 'abc' });
    const bad = (c: Partial<typeof sharded>) => () => decodeCommand(wire('Command', encodeCommand({ ...sharded, ...c } as Command, three, 'abc')));
    expect(bad({ shareIndex: 3 })).toThrow(/^assign.share_index: must be an integer from 0 to 2, got 3$/);
    expect(bad({ shareCount: 4 })).toThrow(/^assign.share_count: must be an integer from 0 to 3, got 4$/);
    expect(bad({ shareIndex: 1, shareCount: 1 })).toThrow(/^assign.share_index: must be an integer from 0 to 0, got 1$/);
    expect(bad({ shareSources: [{ slot: 1, smpAddress: 'a:7' }] })).toThrow(/^assign.share_sources\[0\].slot: is 1, the node's own slot/);
    expect(bad({ shareSources: [{ slot: 2, smpAddress: 'a:7' }] })).toThrow(/^assign.share_sources\[0\].slot: is 2, not a replica of stage 1 \(its slots are 1, 3, 5\)$/);
    expect(bad({ shareSources: [{ slot: 3, smpAddress: 'b:7' }, { slot: 3, smpAddress: 'c:7' }] })).toThrow(/^assign.share_sources\[1\].slot: names stage 1@1 \(slot 3\) twice$/);
    for (const address of ['b', 'b:', ':7', 'b:0', 'b:70000', 'b:7x', '']) {
      expect(bad({ shareSources: [{ slot: 3, smpAddress: address }] })).toThrow(/^assign.share_sources\[0\].smp_address: must (be HOST:PORT|not be empty)/);
    }
    expect(bad({ restoreStep: -1 })).toThrow(/^assign.share_sources: are given without a restore_step/);
    // A lost slot's own share is gone: the state comes whole from a live replica's worker instead.
    const { shareSources: _t, ...fromState } = { ...sharded, stateSource: { slot: 3, address: 'b:2' } };
    expect(decodeCommand(wire('Command', encodeCommand(fromState, three, 'abc')))).toEqual({ ...fromState, job: three, dataSha256: 'abc' });
    const badState = (c: Partial<typeof sharded>) => () => decodeCommand(wire('Command', encodeCommand({ ...fromState, ...c } as Command, three, 'abc')));
    expect(badState({ stateSource: { slot: 1, address: 'a:2' } })).toThrow(/^assign.state_source.slot: is 1, the node's own slot$/);
    expect(badState({ stateSource: { slot: 4, address: 'a:2' } })).toThrow(/^assign.state_source.slot: is 4, not a replica of stage 1 \(its slots are 1, 3, 5\)$/);
    expect(badState({ stateSource: { slot: 3, address: 'b' } })).toThrow(/^assign.state_source.address: must be HOST:PORT/);
    expect(badState({ restoreStep: -1 })).toThrow(/^assign.state_source: is given without a restore_step/);
    expect(badState({ shareSources: [{ slot: 5, smpAddress: 'c:7' }] })).toThrow(/^assign.state_source: is given with share_sources/);
  });

  it("carry a snapshot header's share, keep a whole snapshot's header as it was, and refuse a share that does not fit its header", () => {
    const tensors = [{ name: 'w', shape: [10, 75], offset: 0, length: 750 }, { name: 'b', shape: [3], offset: 3000, length: 3 }];
    const whole: SnapshotHeader = { stage: 3, step: 4, tensors, scalars: { adamT: 4, gradNorm: 0.5 }, epoch: 2 };
    const share: SnapshotHeader = { ...whole, share: { index: 1, count: 2, offset: 1508, wholeBytes: 3012 } };
    const back = (h: SnapshotHeader) => decodeSnapshotChunk(wire('SnapshotChunk', encodeSnapshotStart(h, 0xdeadbeef, 1504)), true);
    expect(back(share)).toEqual({ header: share, crc32: 0xdeadbeef, bytes: 1504 });
    const plain = back(whole);
    expect(plain).toEqual({ header: whole, crc32: 0xdeadbeef, bytes: 1504 });
    expect('header' in plain && 'share' in plain.header).toBe(false);
    expect(() => back({ ...share, share: { ...share.share!, offset: 1500 } })).toThrow(/^header.share.offset: must be 1508 for share 1 of 2 of 3012 bytes, got 1500$/);
    expect(() => back({ ...share, share: { ...share.share!, wholeBytes: 4000 } })).toThrow(/^header.share.whole_bytes: is 4000, but the tensors take 3012 bytes$/);
    expect(() => back({ ...share, share: { ...share.share!, index: 2 } })).toThrow(/^header.share.index: must be an integer from 0 to 1, got 2$/);
    expect(() => back({ ...share, share: { ...share.share!, count: 1, index: 0 } })).toThrow(/^header.share.count: must be an integer from 2 to/);
  });

  it('carry how long a FetchSnapshot waits for its snapshot, at most a minute', () => {
    expect(decodeFetchSnapshot(wire('FetchSnapshotRequest', { stage: 3, step: 7 }))).toEqual({ stage: 3, step: 7, waitMs: 0 });
    expect(decodeFetchSnapshot(wire('FetchSnapshotRequest', { stage: 3, step: 7, waitMs: 5000 }))).toEqual({ stage: 3, step: 7, waitMs: 5000 });
    expect(() => decodeFetchSnapshot(wire('FetchSnapshotRequest', { stage: 3, step: 7, waitMs: 60_001 }))).toThrow(/^wait_ms: must be an integer from 0 to 60000, got 60001$/);
    expect(() => decodeFetchSnapshot(wire('FetchSnapshotRequest', { stage: 3, step: 7, waitMs: -1 }))).toThrow(/^wait_ms: must be an integer from 0 to 60000, got -1$/);
  });

  it('refuse malformed requests, naming the field', () => {
    const report = { nodeId: 'n0', stage: 1, step: 3, loss: 1, gradNorm: 0.5, clippedGradNorm: 0.5, computeMs: 1, waitMs: 1, stepMs: 2, tokens: 8, epoch: 0, snapshotStep: 2 };
    expect(decodeStepReport(wire('StepReport', report))).toMatchObject({ nodeId: 'n0', stage: 1, step: 3, protection: null });
    expect(() => decodeStepReport(wire('StepReport', { ...report, step: -1 }))).toThrow(new WireError('step', 'must be an integer from 0 to 9007199254740991, got -1'));
    expect(() => decodeStepReport(wire('StepReport', { ...report, nodeId: '' }))).toThrow(/^node_id: must not be empty$/);
    expect(() => decodeStepReport(wire('StepReport', { ...report, stage: MAX_SLOTS }))).toThrow(new RegExp(`^stage: must be an integer from 0 to ${MAX_SLOTS - 1}`));
    expect(() => decodeStepReport(wire('StepReport', { ...report, loss: Number.NaN }))).toThrow(/^loss: must be a finite number/);
    expect(() => decodeRegister({ [MALFORMED]: 'index out of range' })).toThrow(/^RegisterRequest: is not a valid ftrain.v1.RegisterRequest message \(index out of range\)$/);
    expect(() => decodeRegister(wire('RegisterRequest', { nodeId: 'x'.repeat(300), address: 'a:1' }))).toThrow(/^node_id: is 300 characters long/);
    expect(() => decodePipeChunk(wire('PipeChunk', { kind: 'PIPE_KIND_UNSPECIFIED', chunkCount: 1 }))).toThrow(/^kind: must be one of PIPE_KIND_ACTIVATION/);
    expect(() => decodePipeChunk(wire('PipeChunk', { kind: 'PIPE_KIND_GRADIENT', chunkIndex: 2, chunkCount: 2 }))).toThrow(/^chunk_index: must be an integer from 0 to 1/);
    expect(() => decodeCommand(wire('Command', { assign: { stage: 5, numStages: 2, job: encodeJob(compileJobOptions({ nodes: 2 })) } }))).toThrow(/^assign.stage: must be an integer from 0 to 1/);
    expect(() => decodeJob('job', wire('Job', { ...encodeJob(job), model: { ...encodeJob(job).model, heads: 3 } }))).toThrow(/^job.model.heads: must divide d_model \(64\), got 3$/);
  });

  it('carry a shard header, and refuse one that does not hold together', () => {
    const header: ShardHeader = {
      ownerNodeId: 'n1',
      stage: 1,
      step: 4,
      epoch: 2,
      index: 3,
      crc32: 0xdeadbeef,
      bytes: 1024,
      layout: { dataShards: 3, parityShards: 1, totalBytes: 3000, stripeBytes: 1024, stripes: 1 },
      snapshot: { stage: 1, step: 4, tensors: [{ name: 'w', shape: [10, 75], offset: 0, length: 750 }], scalars: { adamT: 4, gradNorm: 0.123456789 }, epoch: 2 },
      protectedCommitStep: 3,
    };
    expect(decodeShardChunk(wire('ShardChunk', { header: encodeShardHeader(header) })).header).toEqual(header);
    // A share's shards carry its share: a rebuild commits it as the share it was.
    const ofShare: ShardHeader = { ...header, snapshot: { ...header.snapshot, share: { index: 1, count: 3, offset: 1000, wholeBytes: 3000 } } };
    expect(decodeShardChunk(wire('ShardChunk', { header: encodeShardHeader(ofShare) })).header).toEqual(ofShare);
    expect(() => decodeShardChunk(wire('ShardChunk', { header: encodeShardHeader({ ...header, index: 4 }) }))).toThrow(/^header.index: must be an integer from 0 to 3/);
    expect(() => decodeShardChunk(wire('ShardChunk', { header: encodeShardHeader({ ...header, snapshot: { ...header.snapshot, step: 5 } }) }))).toThrow(/^header.snapshot: is of stage 1 step 5, not stage 1 step 4/);
  });

  it("carry a node's memory, and refuse sizes that cannot be (negative, none, a peak below its current value)", () => {
    const GiB = 2 ** 30;
    // Sizes past 2^32 survive the int64 fields (longs: Number).
    expect(decodeHeartbeat(wire('HeartbeatRequest', { nodeId: 'n0', memory: { rssBytes: 5 * GiB, peakRssBytes: 6 * GiB + 1 } }))).toEqual({ nodeId: 'n0', memory: { rssBytes: 5 * GiB, peakRssBytes: 6 * GiB + 1 } });
    expect(decodeHeartbeat(wire('HeartbeatRequest', { nodeId: 'n0' }))).toEqual({ nodeId: 'n0', memory: null });
    expect(() => decodeHeartbeat(wire('HeartbeatRequest', { nodeId: 'n0', memory: { rssBytes: 0, peakRssBytes: 0 } }))).toThrow(new WireError('memory.rss_bytes', 'must be an integer from 1 to 9007199254740991, got 0'));
    expect(() => decodeHeartbeat(wire('HeartbeatRequest', { nodeId: 'n0', memory: { rssBytes: 2000, peakRssBytes: 1000 } }))).toThrow(new WireError('memory.peak_rss_bytes', 'must be at least rss_bytes (2000), got 1000'));

    const report: SmpMemoryReport = { nodeId: 'n1', smpAddress: '127.0.0.1:7', process: { rssBytes: 700e6, peakRssBytes: 800e6 }, slotBytes: 3 * GiB, peakSlotBytes: 4 * GiB, shardBytes: 0, peakShardBytes: 1e9 };
    expect(decodeMemoryReport(wire('MemoryReport', encodeMemoryReport(report)))).toEqual(report);
    const bad = (change: object) => () => decodeMemoryReport(wire('MemoryReport', { ...encodeMemoryReport(report), ...change }));
    expect(bad({ process: null })).toThrow(new WireError('process', 'is missing'));
    expect(bad({ slotBytes: -4096 })).toThrow(/^slot_bytes: must be an integer from 0 to/);
    expect(bad({ peakSlotBytes: GiB })).toThrow(new WireError('peak_slot_bytes', `must be at least slot_bytes (${3 * GiB}), got ${GiB}`));
    expect(bad({ shardBytes: 5, peakShardBytes: 4 })).toThrow(new WireError('peak_shard_bytes', 'must be at least shard_bytes (5), got 4'));
    expect(bad({ process: { rssBytes: 10, peakRssBytes: 9 } })).toThrow(new WireError('process.peak_rss_bytes', 'must be at least rss_bytes (10), got 9'));
    expect(bad({ nodeId: '' })).toThrow(/^node_id: must not be empty$/);
    expect(() => decodeMemoryReport({ [MALFORMED]: 'index out of range' })).toThrow(/^MemoryReport: is not a valid ftrain.v1.MemoryReport message/);
  });

  it('carry the run status', () => {
    const nodes = [{ nodeId: 'n0', state: 'training' as const, stage: 0, pid: 10, smpPid: 11, agentPid: 12, hostname: 'h', address: 'a:1', smpAddress: 's:1', zone: 'z1' }, { nodeId: 'n9', state: 'spare' as const, stage: null, pid: 0, smpPid: 0, agentPid: 0, hostname: 'h', address: 'z:9', smpAddress: '', zone: '' }];
    const run = {
      phase: 'recovering' as const,
      epoch: 2,
      completedSteps: 7,
      failure: null,
      failures: [{ step: 5, stage: 1, nodeId: 'n1', kind: 'node-kill', method: 'erasure-rebuild' as const, detail: 'd', detectMs: 12, detectedAtMs: 1e12, recoverMs: 300, handoverMs: null, lostSteps: 0, restoredStep: 5, caughtUpMs: null }],
    };
    expect(decodeRunStatus(wire('StatusReply', encodeRunStatus(nodes, run)))).toEqual({ nodes, run });
  });

  it('carry a refusal and its reason in the trailer', () => {
    const err = refusalStatus({ reason: 'stale-epoch', message: 'step report of epoch 0, but the run is in epoch 2', runEpoch: 2, givenEpoch: 0 });
    expect(err.code).toBe(9); // FAILED_PRECONDITION
    expect(refusalOf(err)).toEqual({ reason: 'stale-epoch', message: 'step report of epoch 0, but the run is in epoch 2', runEpoch: 2, givenEpoch: 0 });
    const thrown = callError(err, 'ReportStep');
    expect(thrown).toBeInstanceOf(StaleEpochError);
    expect(thrown).toMatchObject({ runEpoch: 2, givenEpoch: 0, reason: 'stale-epoch' });
    expect(refusalOf(refusalStatus({ reason: 'fenced', message: 'node x is not registered' }))?.reason).toBe('fenced');
  });
});
