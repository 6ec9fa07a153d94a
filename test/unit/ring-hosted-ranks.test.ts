// The ring all-reduce while a replica is out, over real gRPC on 127.0.0.1. Under `keep` a worker
// plays its guests' ranks as well as its own, in the same ring of D: every rank ends with exactly
// the bits of the ring of D workers (ringSumReference of all D parts), its streams to its own
// hosted ranks going to its own address. Under `shrink` the ring is the replicas left, ranked by
// position. A stream from a sender no hosted rank follows is refused; a dead peer or a halt fails
// every hosted rank's all-reduce instead of leaving one waiting on the other.

import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import type { ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { refusalOf } from '../../common/wire/refusal-wire.ts';
import type { AssignCommand } from '../../domain/commands.ts';
import { PipeBrokenError } from '../../worker/pipe-sender.ts';
import { HaltedError } from '../../worker/pipeline-links.ts';
import { replicaWorkOf } from '../../worker/replica-work.ts';
import { ringSumReference } from '../../worker/ring-all-reduce.ts';
import { bits, partsOf, rawCall, startRingServer, stopRingServers, type RingServer } from '../support/ring-servers.ts';

const STAGE = 1;
const EPOCH = 4;

afterEach(stopRingServers);

type Assigned = Pick<AssignCommand, 'stage' | 'epoch' | 'replica' | 'replicaAddresses' | 'guestReplicas' | 'outReplicas'>;

/** A worker per live replica, each connected where its assignment puts it (worker/replica-work.ts). */
interface Party {
  readonly server: RingServer;
  /** The replicas it trains: its own, then its guests; its parts go in this order. */
  readonly owners: readonly number[];
}

/**
 * The workers of a stage of `D` replicas while `lost` is away: under keep, `hosts[g]` trains
 * replica g; under shrink, `lost` is out. Each live replica has a server and connects as told.
 */
async function startStage(D: number, lost: number, policy: 'keep' | 'shrink', hosts: Readonly<Record<number, number>> = {}): Promise<Party[]> {
  const live = Array.from({ length: D }, (_, r) => r).filter((r) => r !== lost);
  const servers = new Map<number, RingServer>();
  for (const r of live) servers.set(r, await startRingServer());
  const addresses = Array.from({ length: D }, (_, r) => (r === lost ? (policy === 'keep' ? servers.get(hosts[r]!)!.address : '') : servers.get(r)!.address));
  const parties = live.map((replica): Party & { assign: Assigned } => {
    const guests = policy === 'keep' ? Object.keys(hosts).map(Number).filter((g) => hosts[g] === replica) : [];
    const assign: Assigned = { stage: STAGE, epoch: EPOCH, replica, replicaAddresses: addresses, ...(guests.length > 0 ? { guestReplicas: guests } : {}), ...(policy === 'shrink' ? { outReplicas: [lost] } : {}) };
    return { server: servers.get(replica)!, owners: [replica, ...guests], assign };
  });
  await Promise.all(parties.map((p) => p.server.ring.connect(replicaWorkOf(p.assign, D).place!)));
  return parties;
}

/** Every party's all-reduce of `step` with replica r's vector `parts[r]`; each result against `want`. */
async function reduceAndCheck(parties: readonly Party[], step: number, parts: readonly Float32Array[], want: Float32Array): Promise<void> {
  const results = await Promise.all(parties.map((p) => p.server.ring.allReduce(step, p.owners.map((o) => parts[o]!))));
  for (const got of results) expect(Buffer.from(bits(got)).equals(Buffer.from(bits(want)))).toBe(true);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`still pending after ${ms} ms`)))]);
}

const chunk = (over: Partial<ReduceChunk>): ReduceChunk => ({ epoch: EPOCH, stage: STAGE, fromReplica: 0, step: 0, bucket: 0, ringStep: 0, ringChunk: 0, chunkIndex: 0, chunkCount: 1, data: new Uint8Array(8), ...over });

describe('a worker that plays its guests\' ranks (keep)', () => {
  it.each([
    [2, 1, 0],
    [2, 0, 1],
    [3, 0, 1],
    [3, 2, 0],
    [3, 1, 2],
  ])('of %i replicas, replica %i lost and trained by replica %i: every rank gets the bits of the whole ring, step after step', async (D, lost, host) => {
    const hosts = { [lost]: host };
    const parties = await startStage(D, lost, 'keep', hosts);
    expect(parties).toHaveLength(D - 1);
    // More than 1 MiB, not a multiple of D: several pieces per message, each summed in ring order.
    const parts = partsOf(10 + D + lost, D, (1 << 20) + 5);
    const copies = parts.map((p) => Float32Array.from(p));
    await reduceAndCheck(parties, 0, parts, ringSumReference(parts));
    parts.forEach((p, i) => expect(Buffer.from(bits(p)).equals(Buffer.from(bits(copies[i]!)))).toBe(true));
    const next = partsOf(20 + D, D, 999);
    await reduceAndCheck(parties, 1, next, ringSumReference(next));
  });

  it('sums in the order of the ring of D ranks, which the result tells apart from another order', async () => {
    // A check that the test can tell: with three ranks the order of the sums shows.
    const parts = partsOf(7, 3, 3001);
    const whole = ringSumReference(parts);
    expect(Buffer.from(bits(whole)).equals(Buffer.from(bits(ringSumReference([parts[1]!, parts[2]!, parts[0]!]))))).toBe(false);
    const parties = await startStage(3, 0, 'keep', { 0: 2 });
    expect(parties.map((p) => p.owners)).toEqual([[1], [2, 0]]);
    await reduceAndCheck(parties, 0, parts, whole);
  });

  it('refuses a stream from a sender that is no hosted rank\'s previous, and the ring completes', async () => {
    // Replica 1 plays ranks 1 and 0 (prev 0 and 2); a stream from rank 1 is no one's.
    const parties = await startStage(3, 0, 'keep', { 0: 1 });
    const host = parties.find((p) => p.owners.length === 2)!;
    const parts = partsOf(3, 3, 2001);
    const waiting = Promise.all(parties.map((p) => p.server.ring.allReduce(0, p.owners.map((o) => parts[o]!))));
    const stranger = await rawCall(host.server.address, [chunk({ fromReplica: 1 })]);
    expect(stranger?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refusalOf(stranger)).toMatchObject({ reason: 'wrong-stage' });
    expect(stranger?.details).toMatch(/ranks 1, 0 of stage 1 take all-reduce chunks only from ranks 0, 2 of 3, not from rank 1/);
    const results = await waiting;
    for (const got of results) expect(Buffer.from(bits(got)).equals(Buffer.from(bits(ringSumReference(parts))))).toBe(true);
    // One stream carries one sender's chunks: a second sender on it is refused.
    const switching = await rawCall(host.server.address, [chunk({ step: 5, fromReplica: 2 }), chunk({ step: 5, fromReplica: 0 })]);
    expect(refusalOf(switching)).toMatchObject({ reason: 'wrong-stage' });
    expect(switching?.details).toMatch(/\(this stream: rank 2\), not from rank 0/);
  });

  it('fails both hosted ranks when the peer after one dies, and after a halt', async () => {
    // Replica 0 plays ranks 0 and 1; rank 1 sends to replica 2, rank 0 waits on rank 2's stream.
    const parties = await startStage(3, 1, 'keep', { 1: 0 });
    const host = parties.find((p) => p.owners.length === 2)!;
    const other = parties.find((p) => p !== host)!;
    const waiting = host.server.ring.allReduce(0, partsOf(1, 2, 5000));
    other.server.server.forceShutdown();
    await expect(within(waiting)).rejects.toBeInstanceOf(PipeBrokenError);
    await expect(host.server.ring.allReduce(1, partsOf(1, 2, 10))).rejects.toBeInstanceOf(PipeBrokenError);

    const again = await startStage(3, 1, 'keep', { 1: 0 });
    const host2 = again.find((p) => p.owners.length === 2)!;
    const halted = host2.server.ring.allReduce(0, partsOf(2, 2, 100));
    const reason = new HaltedError('a recovery began');
    host2.server.ring.halt(reason);
    await expect(within(halted)).rejects.toBe(reason);
  });

  it('refuses parts that do not match the ranks it plays', async () => {
    const parties = await startStage(2, 1, 'keep', { 1: 0 });
    await expect(parties[0]!.server.ring.allReduce(0, partsOf(1, 1, 10))).rejects.toThrow(/1 vector\(s\) to reduce for the 2 rank\(s\)/);
  });
});

describe('the ring of the replicas left (shrink)', () => {
  it.each([0, 1, 2])('of 3 replicas, replica %i out: the two left reduce in a ring of 2 ranked by position', async (lost) => {
    const parties = await startStage(3, lost, 'shrink');
    const parts = partsOf(30 + lost, 3, (1 << 20) + 3);
    parts[lost] = new Float32Array(0); // never sent
    const left = parts.filter((_, r) => r !== lost);
    await reduceAndCheck(parties, 0, parts, ringSumReference(left));
  });

  it('names the sender by its rank in the smaller ring', async () => {
    // Replicas 0 and 2 left: replica 2 is rank 1 and hears from rank 0 only.
    const parties = await startStage(3, 1, 'shrink');
    const last = parties.find((p) => p.owners[0] === 2)!;
    const status = await rawCall(last.server.address, [chunk({ fromReplica: 2 })]);
    expect(status?.details).toMatch(/rank 1 of stage 1 takes all-reduce chunks only from rank 0 of 2, not from rank 2/);
  });
});
