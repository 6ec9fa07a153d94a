// The coordinator's plans and the snapshot managers' word on them, on the wire: erasure codes,
// protection plans and statuses, rebuild orders, CheckFree orders and jobs. Shared by the
// Coordinator service (Assign, Protect, StepReport, ProtectionReport) and the SnapshotManager
// service (Configure, Rebuild). `encode*` builds the proto object, `decode*` checks and converts
// a received one, naming the field of the first problem (WireError).

import type { CheckfreeOrder, StageSource } from '../../domain/checkfree.ts';
import { describeCode, type ErasureCode, type ErasureSetting, type PlacedNode, type ProtectedVersion, type ProtectionPlan, type ProtectionStatus, type RebuildOrder, type ReplicaCopyOrder } from '../../domain/erasure-protection.ts';
import { InjectionKind, type Injection } from '../../domain/inject-spec.ts';
import { Backend, DEFAULT_JOB, MAX_REPLICAS, MAX_SLOTS, MAX_SNAPSHOT_EVERY, MAX_SPARES, MAX_STAGES, RecoveryPolicy, ReplicaLossPolicy, type JobOptions } from '../../domain/job-options.ts';
import { SNAPSHOT_EVERY_AUTO, type SnapshotEvery } from '../../domain/snapshot-schedule.ts';
import type { CheckfreeOrder as CheckfreeOrderProto, CheckfreeOrder__Output } from '../../proto/generated/ftrain/v1/CheckfreeOrder.ts';
import type { ErasureCode as ErasureCodeProto, ErasureCode__Output } from '../../proto/generated/ftrain/v1/ErasureCode.ts';
import type { Job, Job__Output } from '../../proto/generated/ftrain/v1/Job.ts';
import type { Injection as InjectionProto } from '../../proto/generated/ftrain/v1/Injection.ts';
import type { ProtectionPlan as ProtectionPlanProto, ProtectionPlan__Output } from '../../proto/generated/ftrain/v1/ProtectionPlan.ts';
import type { ProtectionStatus as ProtectionStatusProto, ProtectionStatus__Output } from '../../proto/generated/ftrain/v1/ProtectionStatus.ts';
import type { RebuildOrder as RebuildOrderProto, RebuildOrder__Output } from '../../proto/generated/ftrain/v1/RebuildOrder.ts';
import type { ReplicaCopyOrder as ReplicaCopyOrderProto, ReplicaCopyOrder__Output } from '../../proto/generated/ftrain/v1/ReplicaCopyOrder.ts';
import type { StageSource__Output } from '../../proto/generated/ftrain/v1/StageSource.ts';
import { WireError, enumName, enumOf, int, list, num, present, str } from './wire-check.ts';

/** Most shards one snapshot is cut into (k + m), as `--ec` allows. */
export const MAX_SHARDS = 64;

export const INJECTION_KINDS = {
  INJECTION_KIND_WORKER_KILL: InjectionKind.workerKill,
  INJECTION_KIND_WORKER_KILL_MID_SNAPSHOT: InjectionKind.workerKillMidSnapshot,
  INJECTION_KIND_NODE_KILL: InjectionKind.nodeKill,
  INJECTION_KIND_FREEZE: InjectionKind.freeze,
  INJECTION_KIND_PREEMPT: InjectionKind.preempt,
  INJECTION_KIND_ZONE_KILL: InjectionKind.zoneKill,
  INJECTION_KIND_CORRUPT: InjectionKind.corrupt,
} as const satisfies Readonly<Record<string, InjectionKind>>;

const BACKENDS = { BACKEND_WASM: Backend.wasm, BACKEND_CPU: Backend.cpu, BACKEND_TENSORFLOW: Backend.tensorflow } as const satisfies Readonly<Record<string, Backend>>;

const RECOVERY_POLICIES = {
  RECOVERY_POLICY_AUTO: RecoveryPolicy.auto,
  RECOVERY_POLICY_SNAPSHOT: RecoveryPolicy.snapshot,
  RECOVERY_POLICY_CHECKFREE: RecoveryPolicy.checkfree,
  RECOVERY_POLICY_CHECKFREE_PLUS: RecoveryPolicy.checkfreePlus,
  RECOVERY_POLICY_CHECKPOINT: RecoveryPolicy.checkpoint,
} as const satisfies Readonly<Record<string, RecoveryPolicy>>;

export function encodeCode(code: ErasureCode): ErasureCodeProto {
  return { dataShards: code.dataShards, parityShards: code.parityShards };
}

export function decodeCode(field: string, c: ErasureCode__Output | null | undefined): ErasureCode {
  const v = present(field, c);
  const dataShards = int(`${field}.data_shards`, v.dataShards, 1, MAX_SHARDS - 1);
  const parityShards = int(`${field}.parity_shards`, v.parityShards, 1, MAX_SHARDS - dataShards);
  return { dataShards, parityShards };
}

export function encodePlan(plan: ProtectionPlan): ProtectionPlanProto {
  return { stage: plan.stage, code: encodeCode(plan.code), holders: plan.holders.map((h) => ({ nodeId: h.nodeId, address: h.address })), degraded: plan.degraded };
}

export function decodePlan(field: string, p: ProtectionPlan__Output | null | undefined): ProtectionPlan {
  const v = present(field, p);
  const code = decodeCode(`${field}.code`, v.code);
  const holders = list(`${field}.holders`, v.holders, (h, f): PlacedNode => ({ nodeId: str(`${f}.node_id`, h.nodeId, { nonEmpty: true }), address: str(`${f}.address`, h.address, { nonEmpty: true }) }), MAX_SHARDS);
  // A full plan places every shard; a degraded one places the k data shards and the parity that
  // fits on its distinct other nodes (placeShards).
  const n = code.dataShards + code.parityShards;
  if (v.degraded ? holders.length < code.dataShards || holders.length > n : holders.length !== n) {
    const wanted = v.degraded ? `${code.dataShards} to ${n} holders (degraded)` : `${n} holders`;
    throw new WireError(`${field}.holders`, `has ${holders.length} holders: a plan of ${describeCode(code)} places ${wanted}`);
  }
  return { stage: int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1), code, holders, degraded: v.degraded };
}

/** A time in ms, or null sent as a negative number. */
function optionalMs(field: string, v: number): number | null {
  return v < 0 ? null : num(field, v, 0);
}

export function encodeStatus(s: ProtectionStatus): ProtectionStatusProto {
  return {
    stage: s.stage ?? -1,
    versions: s.versions.map((v) => ({ step: v.step, epoch: v.epoch, holders: [...v.holders] })),
    heldBytes: s.heldBytes,
    heldShards: s.heldShards,
    encodeMs: s.encodeMs ?? -1,
    placeMs: s.placeMs ?? -1,
    lastError: s.lastError ?? '',
  };
}

export function decodeStatus(field: string, s: ProtectionStatus__Output | null | undefined): ProtectionStatus {
  const v = present(field, s);
  const stage = int(`${field}.stage`, v.stage, -1, MAX_SLOTS - 1);
  return {
    stage: stage < 0 ? null : stage,
    versions: list(
      `${field}.versions`,
      v.versions,
      (x, f): ProtectedVersion => ({
        step: int(`${f}.step`, x.step, 0),
        epoch: int(`${f}.epoch`, x.epoch, 0),
        holders: list(`${f}.holders`, x.holders, (h, hf) => str(hf, h), MAX_SHARDS),
      }),
      1024,
    ),
    heldBytes: int(`${field}.held_bytes`, v.heldBytes, 0),
    heldShards: int(`${field}.held_shards`, v.heldShards, 0),
    encodeMs: optionalMs(`${field}.encode_ms`, v.encodeMs),
    placeMs: optionalMs(`${field}.place_ms`, v.placeMs),
    lastError: v.lastError === '' ? null : str(`${field}.last_error`, v.lastError),
  };
}

export function encodeReplicaCopy(o: ReplicaCopyOrder): ReplicaCopyOrderProto {
  return { stage: o.stage, step: o.step, fromStage: o.fromStage, fromAddress: o.fromAddress };
}

export function decodeReplicaCopy(field: string, o: ReplicaCopyOrder__Output | null | undefined): ReplicaCopyOrder {
  const v = present(field, o);
  const stage = int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1);
  const fromStage = int(`${field}.from_stage`, v.fromStage, 0, MAX_SLOTS - 1);
  if (fromStage === stage) throw new WireError(`${field}.from_stage`, `is the stage being copied into (${stage}): a replica copies from another replica`);
  return { stage, step: int(`${field}.step`, v.step, 0), fromStage, fromAddress: str(`${field}.from_address`, v.fromAddress, { nonEmpty: true }) };
}

export function encodeRebuild(o: RebuildOrder): RebuildOrderProto {
  return { stage: o.stage, step: o.step, epoch: o.epoch, code: encodeCode(o.code), sources: [...o.sources] };
}

export function decodeRebuild(field: string, o: RebuildOrder__Output | null | undefined): RebuildOrder {
  const v = present(field, o);
  return {
    stage: int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1),
    step: int(`${field}.step`, v.step, 0),
    epoch: int(`${field}.epoch`, v.epoch, 0),
    code: decodeCode(`${field}.code`, v.code),
    sources: list(`${field}.sources`, v.sources, (a, f) => str(f, a, { nonEmpty: true }), 4096),
  };
}

function decodeSource(field: string, s: StageSource__Output | null | undefined): StageSource {
  const v = present(field, s);
  return { stage: int(`${field}.stage`, v.stage, 0, MAX_SLOTS - 1), address: str(`${field}.address`, v.address, { nonEmpty: true }) };
}

export function encodeCheckfree(o: CheckfreeOrder): CheckfreeOrderProto {
  return o.kind === 'average'
    ? { learningRateScale: o.learningRateScale, average: { prev: { ...o.prev }, next: { ...o.next }, a: o.weights.a, b: o.weights.b } }
    : { learningRateScale: o.learningRateScale, copy: { from: { ...o.from } } };
}

export function decodeCheckfree(field: string, o: CheckfreeOrder__Output | null | undefined): CheckfreeOrder {
  const v = present(field, o);
  const learningRateScale = num(`${field}.learning_rate_scale`, v.learningRateScale, Number.MIN_VALUE, 100);
  if (v.source === 'average') {
    const a = present(`${field}.average`, v.average);
    return {
      kind: 'average',
      prev: decodeSource(`${field}.average.prev`, a.prev),
      next: decodeSource(`${field}.average.next`, a.next),
      weights: { a: num(`${field}.average.a`, a.a, 0), b: num(`${field}.average.b`, a.b, 0) },
      learningRateScale,
    };
  }
  if (v.source === 'copy') return { kind: 'copy', from: decodeSource(`${field}.copy.from`, present(`${field}.copy`, v.copy).from), learningRateScale };
  throw new WireError(`${field}.source`, 'must be average or copy');
}

export function encodeInjection(i: Injection): InjectionProto {
  return { step: i.step, stage: i.stage, replica: i.replica, kind: enumName(INJECTION_KINDS, i.kind) };
}

/** Job.snapshot_every of `--snapshot-every auto`. */
export const SNAPSHOT_EVERY_AUTO_WIRE = -1;

function decodeSnapshotEvery(field: string, v: unknown): SnapshotEvery {
  const n = int(field, v, SNAPSHOT_EVERY_AUTO_WIRE, MAX_SNAPSHOT_EVERY);
  return n === SNAPSHOT_EVERY_AUTO_WIRE ? SNAPSHOT_EVERY_AUTO : n;
}

export function encodeJob(job: JobOptions): Job {
  const ec = job.ec;
  return {
    stages: job.stages,
    replicas: job.replicas,
    replicaCheckEvery: job.replicaCheckEvery,
    onReplicaLoss: job.onReplicaLoss,
    snapshotShares: job.snapshotShares ? 'on' : 'off',
    overlapReduce: job.overlapReduce ? 'on' : 'off',
    steps: job.steps ?? 0,
    seed: job.seed,
    data: job.data,
    backend: enumName(BACKENDS, job.backend),
    microBatches: job.microBatches,
    microBatchSize: job.microBatchSize,
    model: { ...job.model },
    learningRate: job.learningRate,
    beta1: job.beta1,
    beta2: job.beta2,
    epsilon: job.epsilon,
    clipNorm: job.clipNorm,
    heartbeatMs: job.heartbeatMs,
    leaseMs: job.leaseMs,
    dumpGradsDir: job.dumpGradsDir ?? '',
    snapshotEvery: job.snapshotEvery === SNAPSHOT_EVERY_AUTO ? SNAPSHOT_EVERY_AUTO_WIRE : job.snapshotEvery,
    injections: job.injections.map(encodeInjection),
    recoveryTimeoutMs: job.recoveryTimeoutMs,
    checkpointEvery: job.checkpointEvery,
    checkpointDir: job.checkpointDir ?? '',
    ec: ec === 'auto' ? { auto: true } : ec === 'off' ? { off: true } : { code: encodeCode(ec) },
    spares: job.spares,
    recovery: enumName(RECOVERY_POLICIES, job.recovery),
    checkfreeLrScale: job.checkfreeLrScale,
  };
}

export function decodeJob(field: string, j: Job__Output | null | undefined): JobOptions {
  const v = present(field, j);
  const stages = int(`${field}.stages`, v.stages, 1, MAX_STAGES);
  // 0 is what an older coordinator leaves unset: one replica.
  const replicas = v.replicas === 0 ? 1 : int(`${field}.replicas`, v.replicas, 1, MAX_REPLICAS);
  if (stages * replicas > MAX_SLOTS) throw new WireError(`${field}.replicas`, `${replicas} replicas of ${stages} stages exceed ${MAX_SLOTS} slots`);
  const model = present(`${field}.model`, v.model);
  const ecField = present(`${field}.ec`, v.ec);
  let ec: ErasureSetting;
  if (ecField.setting === 'auto') ec = 'auto';
  else if (ecField.setting === 'off') ec = 'off';
  else if (ecField.setting === 'code') ec = decodeCode(`${field}.ec.code`, ecField.code);
  else throw new WireError(`${field}.ec`, 'must be auto, off or a code');
  const steps = int(`${field}.steps`, v.steps, 0);
  const dModel = int(`${field}.model.d_model`, model.dModel, 4, 8192);
  const heads = int(`${field}.model.heads`, model.heads, 1, 256);
  if (dModel % heads !== 0) throw new WireError(`${field}.model.heads`, `must divide d_model (${dModel}), got ${heads}`);
  return {
    stages,
    replicas,
    replicaCheckEvery: int(`${field}.replica_check_every`, v.replicaCheckEvery ?? 0, 0, 1_000_000),
    // '' is what an older coordinator leaves unset: keep.
    onReplicaLoss: v.onReplicaLoss ? enumOf(`${field}.on_replica_loss`, v.onReplicaLoss, ReplicaLossPolicy) : ReplicaLossPolicy.keep,
    // '' as well: on wherever shares apply (replicas and snapshots).
    snapshotShares: v.snapshotShares ? enumOf(`${field}.snapshot_shares`, v.snapshotShares, { on: 'on', off: 'off' }) === 'on' : replicas > 1 && decodeSnapshotEvery(`${field}.snapshot_every`, v.snapshotEvery) !== 0,
    overlapReduce: v.overlapReduce ? enumOf(`${field}.overlap_reduce`, v.overlapReduce, { on: 'on', off: 'off' }) === 'on' : DEFAULT_JOB.overlapReduce,
    steps: steps === 0 ? null : steps,
    seed: int(`${field}.seed`, v.seed, 0, 0xffff_ffff),
    data: str(`${field}.data`, v.data, { nonEmpty: true }),
    backend: enumOf(`${field}.backend`, v.backend, BACKENDS),
    microBatches: int(`${field}.micro_batches`, v.microBatches, 1, 1024),
    microBatchSize: int(`${field}.micro_batch_size`, v.microBatchSize, 1, 4096),
    model: {
      seqLen: int(`${field}.model.seq_len`, model.seqLen, 2, 8192),
      dModel,
      heads,
      layersPerStage: int(`${field}.model.layers_per_stage`, model.layersPerStage, 1, 256),
      ffnMult: int(`${field}.model.ffn_mult`, model.ffnMult, 1, 16),
    },
    learningRate: num(`${field}.learning_rate`, v.learningRate, Number.MIN_VALUE, 10),
    beta1: num(`${field}.beta1`, v.beta1, 0, 1),
    beta2: num(`${field}.beta2`, v.beta2, 0, 1),
    epsilon: num(`${field}.epsilon`, v.epsilon, 0, 1),
    clipNorm: num(`${field}.clip_norm`, v.clipNorm, Number.MIN_VALUE),
    heartbeatMs: int(`${field}.heartbeat_ms`, v.heartbeatMs, 1),
    leaseMs: int(`${field}.lease_ms`, v.leaseMs, 1),
    dumpGradsDir: v.dumpGradsDir === '' ? null : str(`${field}.dump_grads_dir`, v.dumpGradsDir),
    snapshotEvery: decodeSnapshotEvery(`${field}.snapshot_every`, v.snapshotEvery),
    injections: list(`${field}.injections`, v.injections, (i, f) => ({
      step: int(`${f}.step`, i.step, 0),
      stage: int(`${f}.stage`, i.stage, 0, stages - 1),
      replica: int(`${f}.replica`, i.replica, 0, replicas - 1),
      kind: enumOf(`${f}.kind`, i.kind, INJECTION_KINDS),
    })),
    recoveryTimeoutMs: int(`${field}.recovery_timeout_ms`, v.recoveryTimeoutMs, 1),
    checkpointEvery: int(`${field}.checkpoint_every`, v.checkpointEvery, 0),
    checkpointDir: v.checkpointDir === '' ? null : str(`${field}.checkpoint_dir`, v.checkpointDir),
    ec,
    spares: int(`${field}.spares`, v.spares, 0, MAX_SPARES),
    recovery: enumOf(`${field}.recovery`, v.recovery, RECOVERY_POLICIES),
    checkfreeLrScale: num(`${field}.checkfree_lr_scale`, v.checkfreeLrScale, Number.MIN_VALUE, 100),
  };
}
