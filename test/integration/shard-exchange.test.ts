// Snapshot managers exchanging erasure shards over real gRPC on loopback: an owner encodes its
// committed snapshot and places the shards on its plan's holders; a fresh manager rebuilds the
// snapshot from whatever the holders send. A shard corrupted in a holder's memory is caught by
// its checksum and left out; with too few intact shards the rebuild refuses and restores nothing.
// A snapshot overwritten while its shards stream out is given up, and no holder keeps a shard.
// A whole snapshot copied from a replica's manager (`--replicas`) is checked like a rebuilt one.

import * as grpc from '@grpc/grpc-js';
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_CHANNEL_OPTIONS, bindServer, loadProto } from '../../common/proto.ts';
import { encodeShardHeader } from '../../common/wire/snapshot-manager-wire.ts';
import type { ShardChunk, ShardChunk__Output } from '../../proto/generated/ftrain/v1/ShardChunk.ts';
import { Prng } from '../../domain/prng.ts';
import { NotEnoughShardsError } from '../../snapshot-manager/erasure-codec.ts';
import type { ProtectionPlan, RebuildOrder, ShardHeader } from '../../domain/erasure-protection.ts';
import { SnapshotManager } from '../../snapshot-manager/snapshot-manager.ts';
import { ShardUpload } from '../../snapshot-manager/shard-upload.ts';
import type { SnapshotHeader } from '../../domain/snapshot-slots.ts';

const root = mkdtempSync(join(tmpdir(), 'ftrain-shards-'));
const log = pino({ level: 'silent' });
const STAGE = 1;
const STEP = 7;
const code = { dataShards: 2, parityShards: 1 };

function snapshotBytes(n: number): Uint8Array {
  const rng = new Prng(3);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng.next() * 256);
  return out;
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('shard exchange between snapshot managers', () => {
  const smps: SnapshotManager[] = [];
  const data = snapshotBytes(3 * 1024 * 1024 + 123); // not a multiple of k: the last shard is padded
  const header: SnapshotHeader = { stage: STAGE, step: STEP, tensors: [], scalars: { adamT: STEP }, epoch: 0 };
  let owner: SnapshotManager;
  let holders: SnapshotManager[];

  beforeAll(async () => {
    for (const name of ['owner', 'h0', 'h1', 'h2', 'new-a', 'new-b']) {
      const smp = new SnapshotManager(join(root, name), 4, name, log);
      await smp.start('127.0.0.1:0');
      smps.push(smp);
    }
    [owner, ...holders] = smps.slice(0, 4) as [SnapshotManager, ...SnapshotManager[]];
    const plan: ProtectionPlan = { stage: STAGE, code, holders: holders.map((h) => ({ nodeId: h.slots.dir, address: h.address })), degraded: false };
    owner.configure(plan, -1);
    const record = owner.slots.write(0, header, [data]);
    owner.slots.seal(record, [data]);
    owner.scan();
    await until('the owner to place its shards', () => owner.status().versions.some((v) => v.step === STEP));
    for (const h of holders) expect(h.store.heldShards).toBe(1);
    expect(owner.status().lastError).toBeNull();
  });

  afterAll(() => {
    for (const s of smps) s.close(true);
    rmSync(root, { recursive: true, force: true });
  });

  const order = (): RebuildOrder => ({ stage: STAGE, step: STEP, epoch: 0, code, sources: holders.map((h) => h.address) });

  it('refuses a Configure naming a protected step beyond every snapshot and shard it has seen, and frees nothing', async () => {
    const holder = holders[0]!;
    const client = new (loadProto().ftrain.v1.SnapshotManager)(holder.address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const configure = (protectedCommitStep: number) =>
      new Promise<grpc.ServiceError | null>((resolve) => client.Configure({ protectedCommitStep }, (err) => resolve(err)));
    const err = await configure(1_000_000);
    expect(err?.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(err?.details).toMatch(/^protected_commit_step 1000000 is beyond every snapshot and shard this node has seen \(newest step 7\): refused, nothing freed$/);
    expect(holder.store.heldShards).toBe(1);
    // The step of the shard it holds is one it may take: nothing older than it is held.
    expect(await configure(STEP)).toBeNull();
    expect(holder.store.heldShards).toBe(1);
    client.close();
  });

  it('rebuilds around a shard corrupted in a holder\'s memory, and commits the snapshot for restore', async () => {
    const shard = holders[0]!.store.peek(STAGE, STEP, 0, 0)!;
    const saved = shard[100]!;
    shard[100] = saved ^ 0xff;
    try {
      const fresh = smps[4]!;
      const r = await fresh.rebuild(order());
      expect(r.corrupt).toEqual([0]);
      expect(r.used).toEqual([1, 2]);
      const rec = fresh.slots.find(STEP)!;
      expect(rec.header).toMatchObject({ stage: STAGE, step: STEP });
      expect(Buffer.compare(fresh.slots.read(rec), Buffer.from(data))).toBe(0);
    } finally {
      shard[100] = saved;
    }
  });

  it('refuses to rebuild from fewer than k intact shards, and restores nothing', async () => {
    const a = holders[0]!.store.peek(STAGE, STEP, 0, 0)!;
    const b = holders[1]!.store.peek(STAGE, STEP, 0, 1)!;
    a[5] = a[5]! ^ 1;
    b[9] = b[9]! ^ 1;
    const fresh = smps[5]!;
    await expect(fresh.rebuild(order())).rejects.toThrow(NotEnoughShardsError);
    await expect(fresh.rebuild(order())).rejects.toThrow(/only 1 intact shard\(s\) of the 2 needed \(shard\(s\) 0, 1 failed their checksum\)/);
    expect(fresh.slots.records()).toEqual([]);
  });

  it("copies a replica's whole committed snapshot, checked, as its own stage's; refuses a corrupt or missing one and keeps nothing", async () => {
    const target = new SnapshotManager(join(root, 'copy-target'), 4, 'copy-target', log);
    await target.start('127.0.0.1:0');
    smps.push(target);
    const order = { stage: 5, step: STEP, fromStage: STAGE, fromAddress: owner.address };
    // More than one chunk (1 MiB) of bytes, not a multiple of it.
    const r = await target.copyFromReplica(order);
    expect(r.bytes).toBe(data.length);
    const rec = target.slots.find(STEP)!;
    expect(rec.header).toMatchObject({ stage: 5, step: STEP });
    expect(Buffer.compare(target.slots.read(rec), Buffer.from(data))).toBe(0);
    target.slots.dropOne(rec);
    // A step the replica does not hold.
    await expect(target.copyFromReplica({ ...order, step: STEP + 1 })).rejects.toThrow(/no committed snapshot of stage 1 step 8 here/);
    // A byte of the replica's slot file flipped after it was committed: the crc32 says so.
    const file = owner.slots.dataFile(owner.slots.find(STEP)!.slot);
    const fd = openSync(file, 'r+');
    const flip = (v: number) => writeSync(fd, Buffer.from([v]), 0, 1, 2_000_000);
    try {
      flip(data[2_000_000]! ^ 0x10);
      await expect(target.copyFromReplica(order)).rejects.toThrow(/crc32 [0-9a-f]+ of the bytes copied, the source committed [0-9a-f]+/);
    } finally {
      flip(data[2_000_000]!);
      closeSync(fd);
    }
    expect(target.slots.records()).toEqual([]);
  });

  it('refuses malformed shard streams with a clear status and keeps nothing of them', async () => {
    const proto = loadProto();
    const client = new proto.ftrain.v1.SnapshotManager(holders[2]!.address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const before = holders[2]!.store.heldShards;
    const put = (chunks: ShardChunk[]) =>
      new Promise<grpc.ServiceError | null>((resolve) => {
        const call = client.PutShard((err) => resolve(err));
        for (const c of chunks) call.write(c);
        call.end();
      });
    const err1 = await put([{ data: new Uint8Array(4) }]);
    expect(err1?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err1?.details).toMatch(/must carry its header/);
    const h = encodeShardHeader({
      ownerNodeId: 'x',
      stage: 0,
      step: 1,
      epoch: 0,
      index: 0,
      crc32: 0,
      bytes: 4,
      layout: { dataShards: 1, parityShards: 1, totalBytes: 4, stripeBytes: 4, stripes: 1 },
      snapshot: { stage: 0, step: 1, tensors: [], scalars: {} },
      protectedCommitStep: -1,
    });
    const err2 = await put([{ header: h }, { data: new Uint8Array(8) }]);
    expect(err2?.details).toMatch(/longer than its header says/);
    const err3 = await put([{ header: h }, { data: new Uint8Array(2) }]);
    expect(err3?.details).toMatch(/2 bytes, header says 4/);
    const err4 = await put([{ header: { ...h, index: 5 } }]);
    expect(err4?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(err4?.details).toMatch(/^header.index: must be an integer from 0 to 1/);
    expect(holders[2]!.store.heldShards).toBe(before);
    client.close();
  });
});

describe('a shard upload that is abandoned', () => {
  const smps: SnapshotManager[] = [];
  const servers: grpc.Server[] = [];
  const proto = loadProto();
  afterAll(() => {
    for (const s of smps) s.close(true);
    for (const s of servers) s.forceShutdown();
  });

  async function manager(name: string): Promise<SnapshotManager> {
    const smp = new SnapshotManager(join(root, `abandon-${name}`), 4, name, log);
    await smp.start('127.0.0.1:0');
    smps.push(smp);
    return smp;
  }

  it('leaves nothing with its holder when cancelled short of its length, and the shard when finished', async () => {
    const holder = await manager('holder');
    const client = new proto.ftrain.v1.SnapshotManager(holder.address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const bytes = snapshotBytes(3 * 1024 * 1024 + 5);
    const shardHeader = (step: number): ShardHeader => ({
      ownerNodeId: 'x',
      stage: 0,
      step,
      epoch: 0,
      index: 0,
      crc32: crc32(bytes),
      bytes: bytes.length,
      layout: { dataShards: 1, parityShards: 1, totalBytes: bytes.length, stripeBytes: bytes.length, stripes: 1 },
      snapshot: { stage: 0, step, tensors: [], scalars: {}, epoch: 0 },
      protectedCommitStep: -1,
    });
    const cancelled = new ShardUpload(client, holder.address, shardHeader(1), 10_000);
    await cancelled.write(bytes.subarray(0, bytes.length - 1));
    cancelled.abort();
    await expect(cancelled.finish()).rejects.toThrow(/abandoned/);
    const finished = new ShardUpload(client, holder.address, shardHeader(2), 10_000);
    await finished.write(bytes.subarray(0, 1000));
    await finished.write(bytes.subarray(1000));
    await finished.finish();
    await until('the finished shard to be stored', () => holder.store.heldShards === 1);
    expect(holder.store.get(0, 1, 0)).toEqual([]);
    expect(Buffer.compare(holder.store.peek(0, 2, 0, 0)!, bytes)).toBe(0);
    client.close();
  });

  it('cancels every upload of a snapshot overwritten while its shards were sent: no holder keeps any', async () => {
    const owner = await manager('owner');
    const real = [await manager('a'), await manager('b')];
    // A holder that, as soon as its shard's header arrives, changes the last byte of the owner's
    // snapshot in place, as a worker reusing the slot would: the owner reads that byte last.
    const events: string[] = [];
    const fake = new grpc.Server();
    servers.push(fake);
    const data = snapshotBytes(40 * 1024 * 1024 + 1);
    fake.addService(proto.ftrain.v1.SnapshotManager.service, {
      PutShard: (call: grpc.ServerReadableStream<ShardChunk__Output, object>) => {
        call.once('data', () => {
          const fd = openSync(owner.slots.dataFile(0), 'r+');
          writeSync(fd, new Uint8Array([data.at(-1)! ^ 0xff]), 0, 1, data.length - 1);
          closeSync(fd);
          events.push('header');
        });
        call.on('data', () => {});
        call.on('cancelled', () => events.push('cancelled'));
        call.on('end', () => events.push('end'));
      },
    } as unknown as grpc.UntypedServiceImplementation);
    const port = await bindServer(fake, '127.0.0.1:0');
    const holders = [{ nodeId: 'fake', address: `127.0.0.1:${port}` }, ...real.map((h) => ({ nodeId: h.slots.dir, address: h.address }))];
    owner.configure({ stage: STAGE, code, holders, degraded: false }, -1);
    const header: SnapshotHeader = { stage: STAGE, step: 3, tensors: [], scalars: {}, epoch: 0 };
    owner.slots.seal(owner.slots.write(0, header, [data]), [data]);
    owner.scan();
    await until('the owner to give the snapshot up', () => owner.status().lastError !== null);
    expect(owner.status().lastError).toMatch(/^snapshot of step 3 in slot 0: overwritten since its commit \(found while its shards were sent\); not protected$/);
    expect(owner.status().versions).toEqual([]);
    await until('the fake holder to see the cancel', () => events.includes('cancelled'));
    expect(events[0]).toBe('header');
    await new Promise((r) => setTimeout(r, 200));
    for (const h of real) expect(h.store.heldShards).toBe(0);
  });
  it('sends no shard while a recovery holds protection (Configure hold_ms), and sends them once it lets go', async () => {
    const data = snapshotBytes(3 * 1024 * 1024 + 5);
    const owner = await manager('held-owner');
    const real = [await manager('held-a'), await manager('held-b'), await manager('held-c')];
    owner.configure({ stage: STAGE, code, holders: real.map((h) => ({ nodeId: h.slots.dir, address: h.address })), degraded: false }, -1);
    const client = new (proto.ftrain.v1.SnapshotManager)(owner.address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    const hold = (holdMs: number) => new Promise<grpc.ServiceError | null>((resolve) => client.Configure({ protectedCommitStep: -1, holdMs }, (err) => resolve(err)));
    try {
      expect(await hold(60_000)).toBeNull();
      const header: SnapshotHeader = { stage: STAGE, step: 4, tensors: [], scalars: {}, epoch: 0 };
      owner.slots.seal(owner.slots.write(0, header, [data]), [data]);
      owner.scan();
      await new Promise((r) => setTimeout(r, 500));
      for (const h of real) expect(h.store.heldShards).toBe(0);
      expect(owner.status().versions).toEqual([]);
      expect(await hold(-1)).toBeNull();
      await until('the owner to place its shards once let go', () => owner.status().versions.some((v) => v.step === 4));
      for (const h of real) expect(h.store.heldShards).toBe(1);
    } finally {
      client.close();
    }
  });

  it('places a degraded plan\'s shards on its fewer holders, one each, and rebuilds from them', async () => {
    const data = snapshotBytes(3 * 1024 * 1024 + 5);
    const owner = await manager('degraded-owner');
    const real = [await manager('degraded-a'), await manager('degraded-b')];
    // RS(2,1) with two other nodes: the two data shards, no parity (placeShards).
    owner.configure({ stage: STAGE, code, holders: real.map((h) => ({ nodeId: h.slots.dir, address: h.address })), degraded: true }, -1);
    const header: SnapshotHeader = { stage: STAGE, step: 5, tensors: [], scalars: {}, epoch: 0 };
    owner.slots.seal(owner.slots.write(0, header, [data]), [data]);
    owner.scan();
    await until('the owner to place its shards', () => owner.status().versions.some((v) => v.step === 5));
    expect(owner.status().versions.find((v) => v.step === 5)!.holders).toEqual(real.map((h) => h.slots.dir));
    for (const h of real) expect(h.store.heldShards).toBe(1);
    const fresh = await manager('degraded-fresh');
    const r = await fresh.rebuild({ stage: STAGE, step: 5, epoch: 0, code, sources: real.map((h) => h.address) });
    expect(r.used).toEqual([0, 1]);
    expect(Buffer.compare(fresh.slots.read(fresh.slots.find(5)!), Buffer.from(data))).toBe(0);
  });
});
