// What a node tells the coordinator: who it is when it registers, and each step it completes.

import type { ProtectionStatus } from './erasure-protection.ts';

/** A node announcing itself (Coordinator.Register). */
export interface Registration {
  readonly nodeId: string;
  /** host:port of its Worker service. */
  readonly address: string;
  readonly pid: number;
  readonly hostname: string;
  /** Snapshots held by the node's snapshot manager (a restarted worker), if any. */
  readonly snapshots?: { readonly stage: number; readonly steps: readonly number[] } | null;
  /** Its snapshot manager's address; empty or absent: none. */
  readonly smpAddress?: string;
  /** Process ids of its snapshot manager and node agent; 0 or absent: none or unknown. */
  readonly smpPid?: number;
  readonly agentPid?: number;
  /** Its failure domain (`ftrain node --zone`); empty or absent: none given. */
  readonly zone?: string;
  /** It was attached to a coordinator that no longer leads, and attaches to the new leader. */
  readonly reattach?: boolean;
}

/**
 * Where a worker's time went between an assignment and its ready report, by phase, in
 * milliseconds (0: the phase did not run). Recovery traces are built from them.
 */
export interface RestoreTrace {
  /** Backend and stage model made: a node new to the stage. */
  readonly buildMs: number;
  /** Erasure shards fetched from peers (a rebuilt stage). */
  readonly rebuildFetchMs: number;
  /** The snapshot decoded from them. */
  readonly rebuildDecodeMs: number;
  /** The whole rebuild: fetch, decode and commit into a slot. */
  readonly rebuildMs: number;
  /** The committed snapshot read and loaded into the backend. */
  readonly restoreMs: number;
  /** Snapshot slots readied. */
  readonly prepareMs: number;
  /** Pipeline neighbours connected. */
  readonly connectMs: number;
  /** The restored state's bytes (0: nothing restored). */
  readonly bytes: number;
}

/** One stage finished one optimizer step (Coordinator.ReportStep). */
export interface StepReport {
  readonly nodeId: string;
  readonly stage: number;
  readonly step: number;
  readonly loss: number;
  readonly gradNorm: number;
  /** After per-stage clipping: what CheckFree weighs a neighbour by. */
  readonly clippedGradNorm?: number;
  readonly computeMs: number;
  readonly waitMs: number;
  readonly stepMs: number;
  /** With replicas: time of the step's gradient all-reduce (part of computeMs). */
  readonly allReduceMs?: number;
  /** With replicas, after every K-th step: crc32 (8 hex digits) of the stage's parameters; absent otherwise. */
  readonly weightsDigest?: string;
  readonly tokens: number;
  /** Stage 0 starts no step after this one. */
  readonly last?: boolean;
  readonly epoch?: number;
  /** Latest committed snapshot (steps completed), -1 for none. */
  readonly snapshotStep?: number;
  readonly snapshotStallMs?: number;
  readonly snapshotCopyMs?: number;
  readonly snapshotBytes?: number;
  /** The node's snapshot manager on the erasure protection of this stage's snapshots. */
  readonly protection?: ProtectionStatus | null;
}

/**
 * One process's memory, in bytes: resident set now and the most it has had resident since it
 * started (Linux VmHWM; elsewhere the most seen). peakRssBytes >= rssBytes > 0.
 */
export interface ProcessMemory {
  readonly rssBytes: number;
  readonly peakRssBytes: number;
}

/**
 * What a node's snapshot manager holds (Coordinator.ReportMemory), sampled together about once a
 * second. The shards live in its heap, so shardBytes is inside process.rssBytes, not beside it.
 * Peaks are the most seen in its samples since it started.
 */
export interface SmpMemoryReport {
  readonly nodeId: string;
  /** The reporting manager's address: it must be the one the node registered. */
  readonly smpAddress: string;
  readonly process: ProcessMemory;
  /** Its slot files on tmpfs: blocks allocated, which on tmpfs is RAM (or swap) in use. */
  readonly slotBytes: number;
  readonly peakSlotBytes: number;
  /** Shards held for other nodes' stages (ShardStore.heldBytes). */
  readonly shardBytes: number;
  readonly peakShardBytes: number;
}
