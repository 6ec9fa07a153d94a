// The worker's link to its node's snapshot manager: found through smp.json in the slot
// directory, told the protection plan and the protected commit step (its status comes back,
// for the next step report), and asked to rebuild a lost stage's snapshot from shards on peers.

import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { decodeStatus, encodePlan, encodeRebuild, encodeReplicaCopy } from '../common/wire/snapshot-manager-wire.ts';
import type { ProtectionPlan, ProtectionStatus, RebuildOrder, ReplicaCopyOrder } from '../domain/erasure-protection.ts';
import { SMP_INFO_FILE, readSmpInfo, type SmpInfo } from '../domain/snapshot-slots.ts';
import type { SnapshotManagerClient } from '../proto/generated/ftrain/v1/SnapshotManager.ts';
import { channelCredentials } from '../common/transport.ts';

/** The longest a recovery holds its node's protection back; it lets go sooner when training resumes. */
export const PROTECTION_HOLD_MS = 5000;

/** How often smp.json is looked for while the snapshot manager starts. */
const SMP_INFO_POLL_MS = 50;

export class SnapshotLink {
  /** The manager's last word on protection, sent with the next step report. */
  protection: ProtectionStatus | null = null;

  private constructor(
    readonly info: SmpInfo,
    private readonly client: SnapshotManagerClient,
  ) {}

  /**
   * Waits for the node's snapshot manager to publish its address in `dir` (it writes smp.json on
   * start). Null when `waitForIt` is false and there is none (a bare `ftrain worker --snapshot-dir`:
   * local snapshots only).
   */
  static async find(dir: string, waitForIt: boolean, timeoutMs: number): Promise<SnapshotLink | null> {
    const started = Date.now();
    let info = readSmpInfo(dir);
    while (!info) {
      if (!waitForIt) return null;
      if (Date.now() - started > timeoutMs) throw new Error(`the snapshot manager did not start: no ${join(dir, SMP_INFO_FILE)} after ${timeoutMs / 1000} s`);
      await new Promise((r) => setTimeout(r, SMP_INFO_POLL_MS));
      info = readSmpInfo(dir);
    }
    return new SnapshotLink(info, new (loadProto().ftrain.v1.SnapshotManager)(info.address, channelCredentials(), GRPC_CHANNEL_OPTIONS));
  }

  /**
   * Hands the manager a protection plan (null: keep the current one) and the protected commit step;
   * keeps its status. `holdMs` > 0: it sends no shards for at most that long; -1: it sends again.
   */
  configure(plan: ProtectionPlan | null, protectedCommitStep: number, holdMs = 0): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.Configure({ plan: plan ? encodePlan(plan) : null, protectedCommitStep, holdMs }, { deadline: deadline() }, (err, res) => {
        if (err || !res) return reject(new Error(`snapshot manager refused its configuration: ${err?.details ?? 'no reply'}`));
        try {
          this.protection = decodeStatus('status', res.status);
        } catch (e) {
          return reject(e);
        }
        resolve();
      }),
    );
  }

  /**
   * A recovery is under way on this node (true: for at most PROTECTION_HOLD_MS) or over (false):
   * the manager holds back its shards meanwhile, leaving the CPU to the recovery. Not awaited;
   * a failure only costs that CPU.
   */
  holdProtection(on: boolean): void {
    this.configure(null, -1, on ? PROTECTION_HOLD_MS : -1).catch(() => undefined);
  }

  /** Rebuilds the ordered snapshot from peers' shards into this node's slots. */
  rebuild(order: RebuildOrder, timeoutMs: number): Promise<{ bytes: number; usedShards: number[]; corruptShards: number[]; fetchMs: number; decodeMs: number }> {
    return new Promise((resolve, reject) =>
      this.client.Rebuild({ order: encodeRebuild(order) }, { deadline: deadline(timeoutMs) }, (err, res) => (err || !res ? reject(new Error(err?.details ?? 'no reply')) : resolve(res))),
    );
  }

  /** Copies the ordered snapshot from a live replica's snapshot manager into this node's slots. */
  copyFromReplica(copy: ReplicaCopyOrder, timeoutMs: number): Promise<{ bytes: number; fetchMs: number }> {
    return new Promise((resolve, reject) =>
      this.client.Rebuild({ copy: encodeReplicaCopy(copy) }, { deadline: deadline(timeoutMs) }, (err, res) => (err || !res ? reject(new Error(err?.details ?? 'no reply')) : resolve(res))),
    );
  }

  close(): void {
    this.client.close();
  }
}
