// The snapshot manager (SMP) of a node: owns the node's snapshot slot directory on tmpfs, which
// outlives the worker process, and checks every newly sealed snapshot against its checksum,
// withdrawing the commit record of a corrupt one so that it is never restored.
//
// With a protection plan (erasure coding across nodes) it also Reed-Solomon encodes each newly
// committed snapshot of its stage, off its event loop, and sends shard i to holder i of the
// plan; it keeps the shards other nodes send it in RAM; and it rebuilds a lost node's snapshot
// from any k shards fetched from peers, into its own slots, for its worker to restore.
//
// Memory: besides the shards it holds for others, never a whole snapshot. Checking one reads it
// in pieces (SnapshotSlots.verify); protecting one streams it through a few column chunks
// (protect); a received shard is allocated once (ShardAssembler); a rebuild holds the shards it
// fetched and decodes them straight into a file (rebuild).

import * as grpc from '@grpc/grpc-js';
import { watch, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { errorMessage } from '../domain/errors.ts';
import type { Logger } from '../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, GRPC_SERVER_OPTIONS, bindServer, deadline, loadProto, statusError } from '../common/proto.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import { LeaderFollower } from '../common/leader-follower.ts';
import type { ShardChunk__Output } from '../proto/generated/ftrain/v1/ShardChunk.ts';
import { decodeConfigure, decodeFetchShards, decodeFetchSnapshot, decodeRebuildRequest, encodeStatus } from '../common/wire/snapshot-manager-wire.ts';
import { SEAL_WAIT_MS, copySnapshot, serveSnapshot, type CopyOutcome } from './snapshot-copy.ts';
import { decodeOrRefuse, invalidStatus, refusalStatus } from '../common/wire/refusal-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';
import { ShardAssembler, ShardStreamClosedError, readShards, writeShard, type ReceivedShard } from './shard-transfer.ts';
import { ShardUpload } from './shard-upload.ts';
import { ColumnsChangedError, SlotEncoder, SnapshotOverwrittenError } from './slot-encoder.ts';
import type { SnapshotManagerClient, SnapshotManagerHandlers } from '../proto/generated/ftrain/v1/SnapshotManager.ts';
import { NotEnoughShardsError, oneStripeLayout } from './erasure-codec.ts';
import { ErasurePool } from './erasure-pool.ts';
import { ShardStore } from './shard-store.ts';
import { rebuildSnapshot, type RebuildOutcome } from './shard-rebuild.ts';
import { COLLECT_AFTER_BYTES, collectGarbage } from './collect-garbage.ts';
import { SmpMemoryReporter } from './memory-reporter.ts';
import { ProtectionHold } from './protection-hold.ts';
import { describeCode, type ProtectedVersion, type ProtectionPlan, type ProtectionStatus, type RebuildOrder, type ReplicaCopyOrder, type ShardHeader } from '../domain/erasure-protection.ts';
import { CorruptSnapshotError, SnapshotSlots, writeSmpInfo, type SnapshotRecord } from '../domain/snapshot-slots.ts';
import { hostOf } from '../domain/host-port.ts';
import { channelCredentials, impersonation, peerName, type AuthenticatedCall } from '../common/transport.ts';
import { RefusalReason } from '../domain/refusal.ts';

/** How often the directory is rescanned in case a watch event was missed. */
export const RESCAN_MS = 1000;
/** How long one shard transfer to or from a peer may take. */
export const SHARD_TRANSFER_TIMEOUT_MS = 30_000;

/** Protected versions a manager remembers for its status. */
const MAX_STATUS_VERSIONS = 6;

export class SnapshotManager {
  readonly slots: SnapshotSlots;
  readonly store = new ShardStore();
  private readonly proto = loadProto();
  private readonly server = new grpc.Server(GRPC_SERVER_OPTIONS);
  private readonly peers = new Map<string, SnapshotManagerClient>();
  /** Encodes and rebuilds in a worker thread, started on first use. */
  private poolInstance: ErasurePool | null = null;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Commit records already checked, by slot: "step:crc". */
  private readonly checked = new Map<number, string>();
  private plan: ProtectionPlan | null = null;
  private protectedCommitStep = -1;
  /** The newest step of any snapshot in the slots or shard stored that this manager has seen (Configure is checked against it). */
  private newestStepSeen = -1;
  /**
   * The newest snapshot taken up under the current plan, as (epoch, step): a snapshot is newer
   * when its epoch is, so after a rollback the steps of the new timeline are protected again.
   */
  private lastTaken = { epoch: -1, step: -1 };
  private versions: ProtectedVersion[] = [];
  private protecting: Promise<void> | null = null;
  private encodeMs: number | null = null;
  private placeMs: number | null = null;
  private lastError: string | null = null;
  private closed = false;
  /** Where protection is reported as soon as a snapshot is placed (null: only through the worker). */
  private coordinator: LeaderReports | null = null;
  private lastReported = '';
  private memory: SmpMemoryReporter | null = null;
  /** Held while a recovery on this node needs the CPU: no shard is coded or sent (protection-hold.ts). */
  private readonly hold = new ProtectionHold();
  verified = 0;
  corrupt = 0;
  address = '';

  constructor(
    dir: string,
    slotCount: number,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {
    this.slots = new SnapshotSlots(dir, slotCount);
    this.server.addService(this.proto.ftrain.v1.SnapshotManager.service, this.handlers());
  }

  /**
   * Serves on `listen` (port 0: any free port) and tells the node's worker where, through
   * smp.json in the slot directory; then watches the slots.
   */
  async start(listen = '127.0.0.1:0', advertiseHost: string | null = null, coordinator: string | null = null): Promise<void> {
    if (coordinator) this.coordinator = reportsToLeader(new LeaderFollower(coordinator));
    const port = await bindServer(this.server, listen);
    const listenHost = hostOf(listen);
    const host = advertiseHost ?? (listenHost === '0.0.0.0' || listenHost === '' ? hostname() : listenHost);
    this.address = `${host}:${port}`;
    writeSmpInfo(this.slots.dir, { address: this.address, pid: process.pid });
    void this.pool; // the coding thread starts now: a rebuild must not wait for it
    const sources = { nodeId: this.nodeId, address: () => this.address, slotBytes: () => this.slots.residentBytes(), shardBytes: () => this.store.heldBytes };
    this.memory = new SmpMemoryReporter(sources, this.coordinator, this.log, undefined, (step) => {
      if (step > this.protectedCommitStep) this.configure(null, step);
    });
    this.watcher = watch(this.slots.dir, () => this.scan());
    this.timer = setInterval(() => {
      this.scan();
      this.reportProtection();
      this.memory?.report();
    }, RESCAN_MS);
    this.scan();
    this.memory.report();
  }

  /** Verifies each commit record not seen before; protects the newest new one under the plan. */
  scan(): void {
    if (this.closed) return;
    for (const record of this.slots.records()) {
      if (record.crc32 === null) continue; // its writer seals it within milliseconds
      this.newestStepSeen = Math.max(this.newestStepSeen, record.step);
      const key = `${record.step}:${record.crc32}`;
      if (this.checked.get(record.slot) === key) continue;
      this.checked.set(record.slot, key);
      try {
        this.slots.verify(record);
        this.verified += 1;
        this.log.debug({ step: record.step, slot: record.slot, bytes: record.bytes }, 'snapshot verified');
      } catch (err) {
        if (!(err instanceof CorruptSnapshotError)) throw err;
        this.corrupt += 1;
        this.slots.dropOne(record);
        this.log.error({ step: record.step, slot: record.slot, err: err.message }, 'corrupt snapshot withdrawn');
      }
    }
    this.maybeProtect();
  }

  /** Starts protecting the oldest sealed snapshot not yet protected under the plan. */
  private maybeProtect(): void {
    const plan = this.plan;
    if (!plan || this.protecting || this.closed) return;
    const newer = (r: SnapshotRecord) => {
      const epoch = r.header.epoch ?? 0;
      return epoch > this.lastTaken.epoch || (epoch === this.lastTaken.epoch && r.step > this.lastTaken.step);
    };
    const next = this.slots.records().find((r) => r.crc32 !== null && r.header.stage === plan.stage && newer(r));
    if (!next) return;
    this.protecting = this.protect(plan, next)
      .catch((err: unknown) => {
        this.lastError = errorMessage(err);
        this.log.warn({ step: next.step, err: this.lastError }, 'erasure protection of a snapshot failed');
      })
      .finally(() => {
        this.protecting = null;
        this.maybeProtect();
      });
  }

  /**
   * Codes the snapshot of `record` from its slot file and streams shard i to holder i as it goes
   * (slot-encoder.ts): a first pass takes the checksums, which the shards' headers carry and which
   * must name the commit record's bytes; the second codes again and sends each chunk only if it
   * is the first pass's. Neither holds the snapshot: the memory is a few column chunks and the
   * gRPC windows (SlotEncoder, ShardUpload). The slot may be reused by the worker meanwhile: then
   * the stream stops before a changed chunk leaves, the uploads are cancelled short of their
   * length (holders refuse them), and the version is given up, as a snapshot overwritten since.
   */
  private async protect(plan: ProtectionPlan, record: SnapshotRecord): Promise<void> {
    const epoch = record.header.epoch ?? 0;
    this.lastTaken = { epoch, step: record.step };
    const layout = oneStripeLayout(record.bytes, plan.code);
    const path = this.slots.dataFile(record.slot);
    const encoder = new SlotEncoder((from, bytes, keep) => this.pool.codeColumns(path, layout, from, bytes, keep), layout);
    const committed = () => this.slots.records().some((r) => r.slot === record.slot && r.step === record.step && r.crc32 === record.crc32);
    await this.hold.pass();
    const t0 = performance.now();
    const sums = await encoder.checksums();
    if (sums.fileCrc !== record.crc32 || !committed()) throw new SnapshotOverwrittenError(record, 'before its shards were sent');
    const t1 = performance.now();
    const uploads = plan.holders.map((holder, index) => {
      const header: ShardHeader = {
        ownerNodeId: this.nodeId,
        stage: plan.stage,
        step: record.step,
        epoch,
        index,
        crc32: sums.shardCrcs[index]!,
        bytes: layout.stripeBytes,
        layout,
        snapshot: record.header,
        protectedCommitStep: this.protectedCommitStep,
      };
      return new ShardUpload(this.peer(holder.address), holder.address, header, SHARD_TRANSFER_TIMEOUT_MS);
    });
    try {
      await encoder.stream(sums, async ({ pieces, bytes }) => {
        await this.hold.pass();
        await Promise.all(uploads.map((u, i) => u.write(pieces.subarray(i * bytes, (i + 1) * bytes))));
      });
      await Promise.all(uploads.map((u) => u.finish()));
    } catch (err) {
      for (const u of uploads) u.abort();
      if (err instanceof ColumnsChangedError) throw new SnapshotOverwrittenError(record, 'while its shards were sent', { cause: err });
      throw err;
    }
    if (this.plan !== plan) return; // re-planned meanwhile: these holders may be gone
    this.encodeMs = t1 - t0;
    this.placeMs = performance.now() - t1;
    this.lastError = null;
    this.versions = [...this.versions.filter((v) => v.step !== record.step), { step: record.step, epoch, holders: plan.holders.map((h) => h.nodeId) }]
      .sort((a, b) => a.step - b.step)
      .slice(-MAX_STATUS_VERSIONS);
    this.log.debug({ step: record.step, code: describeCode(plan.code), encodeMs: this.encodeMs, placeMs: this.placeMs }, 'snapshot protected');
    this.reportProtection();
  }

  /** Tells the coordinator the protection status, when it changed (not awaited). */
  private reportProtection(): void {
    if (!this.coordinator || this.closed) return;
    const status = this.status();
    const json = JSON.stringify({ ...status, encodeMs: null, placeMs: null });
    if (json === this.lastReported) return;
    this.lastReported = json;
    this.coordinator.ReportProtection({ nodeId: this.nodeId, status: encodeStatus(status), smpAddress: this.address }, { deadline: deadline() }, (err, reply) => {
      if (err) {
        this.lastReported = ''; // say it again next time
        this.log.debug({ err: err.details || err.message }, 'protection report not taken');
        return;
      }
      if (reply && reply.protectedCommitStep > this.protectedCommitStep) this.configure(null, reply.protectedCommitStep);
    });
  }

  private peer(address: string): SnapshotManagerClient {
    let client = this.peers.get(address);
    if (!client) {
      client = new this.proto.ftrain.v1.SnapshotManager(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
      this.peers.set(address, client);
    }
    return client;
  }

  private get pool(): ErasurePool {
    this.poolInstance ??= new ErasurePool();
    return this.poolInstance;
  }

  /** The worker's view: plan in force, protected versions, memory held for others. */
  status(): ProtectionStatus {
    return {
      stage: this.plan?.stage ?? null,
      versions: this.versions,
      heldBytes: this.store.heldBytes,
      heldShards: this.store.heldShards,
      encodeMs: this.encodeMs,
      placeMs: this.placeMs,
      lastError: this.lastError,
    };
  }

  /** A new plan, or the protected commit step moving on. */
  configure(plan: ProtectionPlan | null, protectedCommitStep: number): void {
    if (plan) {
      const changed = JSON.stringify(plan) !== JSON.stringify(this.plan);
      if (changed) {
        this.log.info(
          { stage: plan.stage, code: describeCode(plan.code), holders: plan.holders.map((h) => h.nodeId), degraded: plan.degraded },
          plan.degraded ? 'erasure protection plan (degraded: too few nodes for distinct holders)' : 'erasure protection plan',
        );
        // The shards this node holds of its new stage stay until it is rebuilt here: they may be
        // among the k the rebuild needs.
        if (this.plan?.stage !== plan.stage) this.versions = [];
        this.plan = plan;
        // Protect the newest snapshot again under the new plan: shards on lost holders are re-created.
        const newest = this.slots.records().filter((r) => r.header.stage === plan.stage && r.crc32 !== null).at(-1);
        this.lastTaken = newest ? { epoch: newest.header.epoch ?? 0, step: newest.step - 1 } : { epoch: -1, step: -1 };
      }
    }
    if (protectedCommitStep >= 0 && protectedCommitStep !== this.protectedCommitStep) {
      this.protectedCommitStep = protectedCommitStep;
      this.versions = this.versions.filter((v) => v.step >= protectedCommitStep);
      // As soon as the step moves, not when the next version's shards arrive: until then the
      // node would hold three versions of every stage it holds shards of.
      this.released(this.store.freeBelow(protectedCommitStep));
    }
    this.maybeProtect();
  }

  /**
   * After the store let go of `bytes` of shards: their memory goes back now, not at some later
   * collection. Small shards are left to V8's own collections (a full one per version freed
   * would cost the default model's few-MiB snapshots more time than it saves memory).
   */
  private released(bytes: number): void {
    if (bytes >= COLLECT_AFTER_BYTES) collectGarbage();
  }

  /** Fetches shards of one version from its holders, then rebuilds and commits the snapshot (shard-rebuild.ts). */
  rebuild(order: RebuildOrder): Promise<RebuildOutcome> {
    return rebuildSnapshot(
      {
        address: this.address,
        store: this.store,
        slots: this.slots,
        pool: this.pool,
        log: this.log,
        fetchShards: (address) => readShards(this.peer(address).FetchShards({ stage: order.stage, step: order.step, epoch: order.epoch }, { deadline: deadline(SHARD_TRANSFER_TIMEOUT_MS) })),
        released: (bytes) => this.released(bytes),
      },
      order,
    );
  }

  /** Copies a live replica's committed snapshot into a slot, as this node's stage's (snapshot-copy.ts). */
  copyFromReplica(order: ReplicaCopyOrder): Promise<CopyOutcome> {
    const stream = this.peer(order.fromAddress).FetchSnapshot({ stage: order.fromStage, step: order.step }, { deadline: deadline(SHARD_TRANSFER_TIMEOUT_MS) });
    return copySnapshot(this.slots, this.log, order, stream);
  }

  /**
   * With TLS, who may ask what of this manager: its own node's worker (the name in its
   * certificate is this node's) configures it and orders rebuilds; a shard comes only from the
   * node that owns it (its header's owner). The refusal, or null.
   */
  private outsider(call: AuthenticatedCall, nodeId: string, what: string): grpc.ServiceError | null {
    const impostor = impersonation(call, nodeId);
    if (impostor === null) return null;
    const message = `${what} refused: ${impostor}`;
    this.log.warn({ peer: peerName(call) }, message);
    return refusalStatus({ reason: RefusalReason.notMember, message });
  }

  private handlers(): SnapshotManagerHandlers {
    return {
      Configure: (call, callback) => {
        const request = decodeOrRefuse(() => decodeConfigure(call.request), callback);
        if (!request) return;
        // Anyone of the job may ask whether this manager lives (a Configure that changes nothing:
        // the coordinator's probe); only its own worker changes anything.
        const changes = request.plan !== null || request.protectedCommitStep >= 0 || request.holdMs !== 0;
        const outsider = changes ? this.outsider(call, this.nodeId, 'Configure') : null;
        if (outsider) return callback(outsider);
        // A newer protected step frees every older shard version. It comes from the coordinator
        // through the node's worker at once (the headers of the shards this manager sends carry
        // it, and holders keep versions by it), so it is taken as given; but a step beyond every
        // snapshot and shard this node has seen cannot be the job's (the node verified its own
        // stage's version of that step, or holds a shard of it): refused, and nothing freed.
        if (request.plan === null && request.protectedCommitStep > Math.max(this.protectedCommitStep, this.newestStepSeen)) {
          callback(statusError(grpc.status.FAILED_PRECONDITION, `protected_commit_step ${request.protectedCommitStep} is beyond every snapshot and shard this node has seen (newest step ${this.newestStepSeen}): refused, nothing freed`));
          return;
        }
        this.configure(request.plan, request.protectedCommitStep);
        this.hold.set(request.holdMs);
        callback(null, { status: encodeStatus(this.status()) });
      },
      PutShard: (call, callback) => {
        // Versions the new shard's header makes stale are freed before its memory is taken.
        const assembler = new ShardAssembler(undefined, (h) => this.released(this.store.free(h)));
        let failed = false;
        const refuse = (err: unknown) => {
          if (failed) return;
          failed = true;
          assembler.discard();
          this.log.warn({ err: errorMessage(err) }, 'refused a shard');
          callback(invalidStatus(err));
        };
        call.on('data', (c: ShardChunk__Output) => {
          if (failed) return;
          // A shard only from its owner (by the name in the sender's certificate), before any memory is taken for it.
          const outsider = c.header ? this.outsider(call, c.header.ownerNodeId, `a shard of stage ${c.header.stage} step ${c.header.step}`) : null;
          if (outsider) {
            failed = true;
            assembler.discard();
            callback(outsider);
            return;
          }
          try {
            assembler.add(c);
          } catch (err) {
            refuse(err);
          }
        });
        call.on('end', () => {
          if (failed) return;
          let shards: ReceivedShard[];
          try {
            shards = assembler.finish();
          } catch (err) {
            refuse(err);
            return;
          }
          if (shards.length !== 1) return refuse(new WireError('header', `a PutShard stream carries one shard, this one ${shards.length}`));
          const { data, ...header } = shards[0]!;
          // The checksum is checked when the shard is used: a corrupt one counts as missing then.
          this.released(this.store.put(header, data));
          this.newestStepSeen = Math.max(this.newestStepSeen, header.step);
          this.log.debug({ stage: header.stage, step: header.step, index: header.index, bytes: data.byteLength, heldBytes: this.store.heldBytes }, 'shard stored');
          callback(null, {});
        });
        // A sender that cancels (its snapshot changed while it was coded) leaves nothing behind.
        const drop = () => {
          failed = true;
          assembler.discard();
        };
        call.on('error', drop);
        call.on('cancelled', drop);
      },
      FetchShards: (call) => {
        const request = decodeOrRefuse(() => decodeFetchShards(call.request), (status) => call.emit('error', status));
        if (!request) return;
        const { stage, step, epoch } = request;
        void (async () => {
          for (const s of this.store.get(stage, step, epoch)) await writeShard(call, s.header, s.bytes);
          call.end();
        })().catch((err) => {
          if (err instanceof ShardStreamClosedError) return; // the reader went away: no one to tell
          call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err)));
        });
      },
      FetchSnapshot: (call) => {
        const request = decodeOrRefuse(() => decodeFetchSnapshot(call.request), (status) => call.emit('error', status));
        if (!request) return;
        serveSnapshot(call, this.slots, request.stage, request.step, SEAL_WAIT_MS, request.waitMs).catch((err: unknown) => call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err))));
      },
      Rebuild: (call, callback) => {
        const request = decodeOrRefuse(() => decodeRebuildRequest(call.request), callback);
        if (!request) return;
        const outsider = this.outsider(call, this.nodeId, 'Rebuild');
        if (outsider) return callback(outsider);
        if ('copy' in request) {
          const copy = request.copy;
          this.copyFromReplica(copy).then(
            (r) => callback(null, { bytes: r.bytes, usedShards: [], corruptShards: [], fetchMs: r.fetchMs, decodeMs: 0 }),
            (err: unknown) => {
              this.log.error({ stage: copy.stage, step: copy.step, from: copy.fromStage, err: errorMessage(err) }, 'copy from a live replica failed');
              callback(statusError(grpc.status.FAILED_PRECONDITION, `copying stage ${copy.stage} step ${copy.step} from replica stage ${copy.fromStage} at ${copy.fromAddress}: ${errorMessage(err)}`));
            },
          );
          return;
        }
        const order = request.order;
        this.rebuild(order).then(
          (r) => callback(null, { bytes: r.bytes, usedShards: r.used, corruptShards: r.corrupt, fetchMs: r.fetchMs, decodeMs: r.decodeMs }),
          (err: unknown) => {
            const code = err instanceof NotEnoughShardsError ? grpc.status.FAILED_PRECONDITION : grpc.status.INTERNAL;
            this.log.error({ stage: order.stage, step: order.step, err: errorMessage(err) }, 'rebuild from erasure shards failed');
            callback(statusError(code, `rebuilding stage ${order.stage} step ${order.step}: ${errorMessage(err)}`));
          },
        );
      },
    };
  }

  /** Stops serving and watching; `removeSlots` deletes the snapshots (the node is leaving). */
  close(removeSlots: boolean): void {
    this.closed = true;
    this.watcher?.close();
    this.hold.release();
    if (this.timer) clearInterval(this.timer);
    this.server.forceShutdown();
    for (const c of this.peers.values()) c.close();
    this.coordinator?.close();
    void this.poolInstance?.close();
    if (removeSlots) this.slots.remove();
  }
}

/** The two reports a snapshot manager sends its coordinator, to whichever coordinator leads. */
type LeaderReports = Pick<CoordinatorClient, 'ReportProtection' | 'ReportMemory'> & { close(): void };

/** Reports that follow the leader: a failed one moves the follower on (once, however many fail there); the next report goes there. */
function reportsToLeader(follower: LeaderFollower): LeaderReports {
  const observed = <T>(cb: (err: grpc.ServiceError | null, reply?: T) => void) => {
    const sentTo = follower.address;
    return (err: grpc.ServiceError | null, reply?: T) => {
      if (err) follower.observe(err, sentTo);
      cb(err, reply);
    };
  };
  return {
    ReportProtection: ((req: never, options: never, cb: never) => follower.client.ReportProtection(req, options, observed(cb))) as unknown as CoordinatorClient['ReportProtection'],
    ReportMemory: ((req: never, options: never, cb: never) => follower.client.ReportMemory(req, options, observed(cb))) as unknown as CoordinatorClient['ReportMemory'],
    close: () => follower.close(),
  };
}
