// The options of one training job, compiled once into a complete, validated object.
// The coordinator compiles them and sends them to every node with its stage assignment.

import { resolve } from 'node:path';
import { OptionError } from './errors.ts';
import { DEFAULT_CORPUS } from './corpus.ts';
import { parseInjections, type Injection } from './inject-spec.ts';
import { codeDoesNotFit, type ErasureSetting } from './erasure-protection.ts';
import { MIN_STAGES_OUT_OF_ORDER } from './pipeline-route.ts';
import { SNAPSHOT_EVERY_AUTO, type SnapshotEvery } from './snapshot-schedule.ts';

export const Backend = {
  wasm: 'wasm',
  cpu: 'cpu',
  tensorflow: 'tensorflow',
} as const;
export type Backend = (typeof Backend)[keyof typeof Backend];

export interface ModelOptions {
  /** Tokens per training sequence. */
  readonly seqLen: number;
  readonly dModel: number;
  readonly heads: number;
  /** Transformer blocks held by each stage; the model has stages x layersPerStage blocks. */
  readonly layersPerStage: number;
  /** Hidden width of the MLP as a multiple of dModel. */
  readonly ffnMult: number;
}

export interface JobOptions {
  /** Pipeline stages; one node per stage of each replica. */
  readonly stages: number;
  /**
   * Data-parallel replicas of the pipeline (`--replicas`): stages x replicas nodes, each step's
   * batch is replicas x microBatches micro-batches, and the replicas of a stage sum their
   * gradients (domain/replica-slots.ts).
   */
  readonly replicas: number;
  /** With replicas: compare the replicas' weight digests after every K-th step (`--check-every`); 0: never. */
  readonly replicaCheckEvery: number;
  /** With replicas: what the other replicas do while a lost one is rebuilt (`--on-replica-loss`). */
  readonly onReplicaLoss: ReplicaLossPolicy;
  /**
   * With replicas and snapshots: each replica slot snapshots only its share of the stage's state
   * (`--snapshot-shares on`, the default), so a node holds about 1/D of the snapshot bytes; a
   * restore gathers the shares from the replicas' snapshot managers.
   */
  readonly snapshotShares: boolean;
  /**
   * With replicas: the all-reduce sums the gradient in buckets, each as soon as the backward pass
   * has finished its variables, while the pass goes on (`--overlap-reduce on`); off (the default):
   * the whole vector once the pass is over. The same bits either way. Off by default because tfjs
   * computes on the thread that carries the ring's streams: they move only between the pieces of
   * the backward pass, and measured no faster (`ftrain bench replicas`, `overlap`).
   */
  readonly overlapReduce: boolean;
  /** Steps to train, or null to train until stopped. */
  readonly steps: number | null;
  readonly seed: number;
  /** `moby-dick` (bundled) or an absolute path to a UTF-8 text file. */
  readonly data: string;
  readonly backend: Backend;
  readonly microBatches: number;
  /** Sequences per micro-batch. */
  readonly microBatchSize: number;
  readonly model: ModelOptions;
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
  /** Per-stage gradient clipping to this L2 norm. */
  readonly clipNorm: number;
  readonly heartbeatMs: number;
  readonly leaseMs: number;
  /** Where each stage writes its first step's gradients (for the split-exactness test), or null. */
  readonly dumpGradsDir: string | null;
  /**
   * Snapshot into the node's snapshot manager after every N-th step; 0 turns snapshots off;
   * `auto`: the coordinator picks the interval while training (domain/snapshot-schedule.ts).
   */
  readonly snapshotEvery: SnapshotEvery;
  /** Failures to cause on purpose (`--inject`). */
  readonly injections: readonly Injection[];
  /**
   * How long a recovery waits: a node it placed that has not answered its halt or assignment
   * after this long is given up like a lost one, and a stage no node has taken after this long
   * fails the run (coordinator/core/recovery-answers.ts).
   */
  readonly recoveryTimeoutMs: number;
  /** Write a durable disk checkpoint after every K-th step; 0: never. */
  readonly checkpointEvery: number;
  /** Where disk checkpoints are written and, at start, resumed from; null: no disk tier. */
  readonly checkpointDir: string | null;
  /** Erasure coding of snapshots across nodes (`--ec`). */
  readonly ec: ErasureSetting;
  /** Nodes beyond one per stage that the coordinator waits for: they hold shards and take over lost stages. */
  readonly spares: number;
  /** How lost stages come back (`--recovery`). */
  readonly recovery: RecoveryPolicy;
  /** Learning-rate multiplier of a stage rebuilt by CheckFree. */
  readonly checkfreeLrScale: number;
}

/**
 * `auto`: the cheapest tier that works, in order local snapshot, erasure rebuild, CheckFree,
 * disk checkpoint. The others force one strategy (for experiments): `snapshot` (local or erasure
 * only), `checkfree` (rebuild a lost intermediate stage from its neighbours, no rollback),
 * `checkfree-plus` (CheckFree+: trains with out-of-order pipelining and keeps copies of the
 * embedding and the head on the neighbouring stages, so any stage can be rebuilt, the edge ones
 * too), `checkpoint` (every stage back to the newest disk checkpoint).
 */
export const RecoveryPolicy = {
  auto: 'auto',
  snapshot: 'snapshot',
  checkfree: 'checkfree',
  checkfreePlus: 'checkfree-plus',
  checkpoint: 'checkpoint',
} as const;
export type RecoveryPolicy = (typeof RecoveryPolicy)[keyof typeof RecoveryPolicy];

/**
 * `--on-replica-loss`, with replicas: `keep` (the default) trains on while a lost replica is
 * rebuilt, a live replica training the lost one's micro-batches too, each replica's partial sum
 * kept apart and reduced in the same order, so the run stays bit-identical to one without the
 * loss; `shrink` trains on with the live replicas' micro-batches only; `stop` halts every replica
 * until the lost one is back.
 */
export const ReplicaLossPolicy = { keep: 'keep', shrink: 'shrink', stop: 'stop' } as const;
export type ReplicaLossPolicy = (typeof ReplicaLossPolicy)[keyof typeof ReplicaLossPolicy];

/** Options as they come from a command line or a config: any field may be missing or a string. */
export type RawJobOptions = Partial<Record<
  | 'nodes' | 'steps' | 'seed' | 'data' | 'backend' | 'microBatches' | 'microBatchSize'
  | 'seqLen' | 'dModel' | 'heads' | 'layersPerStage' | 'ffnMult' | 'lr' | 'clipNorm'
  | 'heartbeatMs' | 'leaseMs' | 'dumpGrads' | 'snapshotEvery' | 'inject' | 'recoveryTimeoutMs'
  | 'checkpointEvery' | 'checkpointDir' | 'ec' | 'spares' | 'recovery' | 'checkfreeLrScale' | 'model' | 'replicas' | 'checkEvery' | 'onReplicaLoss' | 'snapshotShares' | 'overlapReduce',
  unknown
>>;

export const DEFAULT_JOB = {
  nodes: 4,
  seed: 0,
  data: DEFAULT_CORPUS,
  backend: Backend.wasm,
  microBatches: 4,
  microBatchSize: 4,
  seqLen: 64,
  dModel: 64,
  heads: 4,
  layersPerStage: 1,
  ffnMult: 4,
  lr: 3e-3,
  clipNorm: 1,
  heartbeatMs: 500,
  leaseMs: 2500,
  snapshotEvery: SNAPSHOT_EVERY_AUTO,
  recoveryTimeoutMs: 60_000,
  checkEvery: 10,
  overlapReduce: false,
} as const;

/** The longest fixed `--snapshot-every N`. */
export const MAX_SNAPSHOT_EVERY = 1_000_000;

/**
 * Model presets (`--model`): the shape flags a preset gives when they are not given themselves.
 * `wide`: 257 MiB of training state per stage (parameters and both Adam moments, 22.5 M
 * parameters in two blocks of width 968) that still steps in seconds on a CPU: short sequences
 * and one sequence per micro-batch keep the compute small beside the state.
 */
export const MODEL_PRESETS = {
  default: { microBatchSize: DEFAULT_JOB.microBatchSize, seqLen: DEFAULT_JOB.seqLen, dModel: DEFAULT_JOB.dModel, heads: DEFAULT_JOB.heads, layersPerStage: DEFAULT_JOB.layersPerStage },
  wide: { microBatchSize: 1, seqLen: 16, dModel: 968, heads: 8, layersPerStage: 2 },
} as const;
export type ModelPreset = keyof typeof MODEL_PRESETS;

/** Bytes of training state per transformer block (parameters and two Adam moments, float32). */
export function blockStateBytes(dModel: number, ffnMult: number): number {
  // Two layer norms (gain and bias), attention's q, k, v and o, the MLP's two weights (no biases).
  const params = 4 * dModel + 4 * dModel * dModel + 2 * ffnMult * dModel * dModel;
  return params * 3 * 4;
}

/** The smallest width (a multiple of 8) whose `layersPerStage` blocks hold at least `mib` MiB of state. */
export function widthForStateMib(mib: number, layersPerStage: number, ffnMult: number = DEFAULT_JOB.ffnMult): number {
  let d = 8;
  while (layersPerStage * blockStateBytes(d, ffnMult) < mib * 2 ** 20) d += 8;
  return d;
}

/** Maximum pipeline stages: more processes than this on one coordinator is untested. */
export const MAX_STAGES = 64;

/**
 * Maximum replicas of the pipeline. One coordinator was measured with 1,000 nodes over gRPC and
 * its core with 10,000 (`ftrain bench coordinator`); the limits leave room above those.
 */
export const MAX_REPLICAS = 1024;

/** Maximum stage slots (stages x replicas): one node each. */
export const MAX_SLOTS = 16_384;

/** Maximum spare nodes beyond the slots. */
export const MAX_SPARES = 4096;

/** An integer flag in [min, max], or `fallback` when absent; any other value is an OptionError naming the flag. */
export function intOption(field: string, raw: unknown, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === null) return fallback;
  const text = String(raw).trim();
  const value = Number(text);
  if (text === '' || !Number.isInteger(value) || value < min || value > max) {
    throw new OptionError(field, `must be an integer from ${min} to ${max}, got "${String(raw)}"`);
  }
  return value;
}

function numberOption(field: string, raw: unknown, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === null) return fallback;
  const text = String(raw).trim();
  const value = Number(text);
  if (text === '' || !Number.isFinite(value) || value <= min || value > max) {
    throw new OptionError(field, `must be a number above ${min} and at most ${max}, got "${String(raw)}"`);
  }
  return value;
}

/** `--snapshot-every`: `auto`, or N from 0 (off) to MAX_SNAPSHOT_EVERY. */
export function parseSnapshotEvery(field: string, raw: unknown): SnapshotEvery {
  if (raw === undefined || raw === null) return DEFAULT_JOB.snapshotEvery;
  if (String(raw).trim() === SNAPSHOT_EVERY_AUTO) return SNAPSHOT_EVERY_AUTO;
  const text = String(raw).trim();
  const value = Number(text);
  if (text === '' || !Number.isInteger(value) || value < 0 || value > MAX_SNAPSHOT_EVERY) {
    throw new OptionError(field, `must be "auto" or an integer from 0 (off) to ${MAX_SNAPSHOT_EVERY}, got "${String(raw)}"`);
  }
  return value;
}

export function parseBackend(field: string, raw: unknown): Backend {
  const value = String(raw);
  if (!Object.values(Backend).includes(value as Backend)) {
    throw new OptionError(field, `must be one of ${Object.values(Backend).join(', ')}, got "${value}"`);
  }
  return value as Backend;
}

/** `--ec K,M`, `auto` or `off`. */
export function parseErasureSetting(field: string, raw: unknown): ErasureSetting {
  const text = raw === undefined || raw === null ? 'auto' : String(raw).trim();
  if (text === 'auto' || text === 'off') return text;
  const m = /^(\d+),(\d+)$/.exec(text);
  const k = m ? Number(m[1]) : NaN;
  const p = m ? Number(m[2]) : NaN;
  if (!m || k < 1 || p < 1 || k + p > 64) {
    throw new OptionError(field, `must be K,M (data and parity shards, K >= 1, M >= 1, K + M <= 64), "auto" or "off", got "${text}"`);
  }
  return { dataShards: k, parityShards: p };
}

/**
 * `--ec` as the job can honour it: an explicit code needs snapshots to protect and room for its
 * k + m shards on nodes other than each stage's own (the placement rule of placeShards).
 */
function erasureSetting(raw: unknown, snapshotEvery: SnapshotEvery, stages: number, replicas: number, spares: number): ErasureSetting {
  const setting = parseErasureSetting('--ec', raw);
  if (typeof setting !== 'object') return snapshotEvery === 0 ? 'off' : setting;
  if (snapshotEvery === 0) throw new OptionError('--ec', 'erasure coding protects snapshots, and --snapshot-every 0 turns them off: drop one of the two');
  const tooBig = codeDoesNotFit(setting, stages * replicas + spares, `--nodes ${stages}${replicas > 1 ? ` --replicas ${replicas}` : ''} --spares ${spares}`);
  if (tooBig) throw new OptionError('--ec', tooBig);
  return setting;
}

export function compileJobOptions(raw: RawJobOptions): JobOptions {
  const stages = intOption('--nodes', raw.nodes, DEFAULT_JOB.nodes, 1, MAX_STAGES);
  const replicas = intOption('--replicas', raw.replicas, 1, 1, MAX_REPLICAS);
  if (stages * replicas > MAX_SLOTS) throw new OptionError('--replicas', `${replicas} replicas of ${stages} stages need ${stages * replicas} nodes; at most ${MAX_SLOTS} are supported`);
  const steps = raw.steps === undefined || raw.steps === null ? null : intOption('--steps', raw.steps, 0, 1, Number.MAX_SAFE_INTEGER);
  const seed = intOption('--seed', raw.seed, DEFAULT_JOB.seed, 0, 0xffff_ffff);
  const dataRaw = raw.data === undefined ? DEFAULT_JOB.data : String(raw.data);
  if (dataRaw.trim() === '') throw new OptionError('--data', 'must name a text file or "moby-dick"');
  const data = dataRaw === DEFAULT_CORPUS ? dataRaw : resolve(dataRaw);
  const backend = raw.backend === undefined ? DEFAULT_JOB.backend : parseBackend('--backend', raw.backend);
  const microBatches = intOption('--micro-batches', raw.microBatches, DEFAULT_JOB.microBatches, 1, 1024);
  const presetName = raw.model === undefined || raw.model === null ? 'default' : String(raw.model);
  if (!Object.hasOwn(MODEL_PRESETS, presetName)) throw new OptionError('--model', `must be one of ${Object.keys(MODEL_PRESETS).join(', ')}, got "${presetName}"`);
  const preset = MODEL_PRESETS[presetName as ModelPreset];
  const microBatchSize = intOption('--micro-batch-size', raw.microBatchSize, preset.microBatchSize, 1, 4096);
  const seqLen = intOption('--seq-len', raw.seqLen, preset.seqLen, 2, 8192);
  const dModel = intOption('--d-model', raw.dModel, preset.dModel, 4, 8192);
  const heads = intOption('--heads', raw.heads, preset.heads, 1, 256);
  if (dModel % heads !== 0) throw new OptionError('--heads', `must divide --d-model (${dModel}), got ${heads}`);
  const layersPerStage = intOption('--layers-per-stage', raw.layersPerStage, preset.layersPerStage, 1, 256);
  const ffnMult = intOption('--ffn-mult', raw.ffnMult, DEFAULT_JOB.ffnMult, 1, 16);
  const learningRate = numberOption('--lr', raw.lr, DEFAULT_JOB.lr, 0, 10);
  const clipNorm = numberOption('--clip-norm', raw.clipNorm, DEFAULT_JOB.clipNorm, 0, 1e9);
  const heartbeatMs = intOption('--heartbeat-ms', raw.heartbeatMs, DEFAULT_JOB.heartbeatMs, 50, 60_000);
  const leaseMs = intOption('--lease-ms', raw.leaseMs, DEFAULT_JOB.leaseMs, 100, 600_000);
  if (leaseMs <= heartbeatMs) {
    throw new OptionError('--lease-ms', `must be longer than --heartbeat-ms (${heartbeatMs}), got ${leaseMs}`);
  }
  const dumpGradsDir = raw.dumpGrads === undefined || raw.dumpGrads === null ? null : resolve(String(raw.dumpGrads));
  const snapshotEvery = parseSnapshotEvery('--snapshot-every', raw.snapshotEvery);
  const checkpointEvery = intOption('--checkpoint-every', raw.checkpointEvery, 0, 0, 1_000_000);
  const checkpointDir = raw.checkpointDir === undefined || raw.checkpointDir === null || String(raw.checkpointDir) === '' ? null : resolve(String(raw.checkpointDir));
  if (checkpointEvery > 0 && checkpointDir === null) throw new OptionError('--checkpoint-every', 'needs --checkpoint-dir DIR');
  const injections = parseInjections(raw.inject === undefined || raw.inject === null ? null : String(raw.inject), { stages, replicas, steps, snapshotEvery });
  const recoveryText = raw.recovery === undefined || raw.recovery === null ? RecoveryPolicy.auto : String(raw.recovery);
  if (!(Object.values(RecoveryPolicy) as string[]).includes(recoveryText)) {
    throw new OptionError('--recovery', `must be one of ${Object.values(RecoveryPolicy).join(', ')}, got "${recoveryText}"`);
  }
  const recovery = recoveryText as RecoveryPolicy;
  if (recovery === RecoveryPolicy.snapshot && snapshotEvery === 0) {
    throw new OptionError('--recovery', 'snapshot recovery needs snapshots; drop --snapshot-every 0');
  }
  if (recovery === RecoveryPolicy.checkfreePlus && stages < MIN_STAGES_OUT_OF_ORDER) {
    throw new OptionError('--recovery', `checkfree-plus swaps the first two and the last two stages: it needs --nodes ${MIN_STAGES_OUT_OF_ORDER} or more, got ${stages}`);
  }
  if (recovery === RecoveryPolicy.checkfree && stages < 3) {
    throw new OptionError('--recovery', `checkfree rebuilds a lost stage from its neighbours on both sides, which no stage of a ${stages}-stage pipeline has: it needs --nodes 3 or more, got ${stages}`);
  }
  if (replicas > 1 && (recovery === RecoveryPolicy.checkfree || recovery === RecoveryPolicy.checkfreePlus)) {
    // A stage rebuilt by CheckFree in one replica would differ from its live replicas.
    throw new OptionError('--recovery', `${recovery} rebuilds a stage from its neighbours, and then its replicas would hold different weights: with --replicas ${replicas} use auto, snapshot or checkpoint`);
  }
  if (recovery === RecoveryPolicy.checkpoint && checkpointDir === null) {
    throw new OptionError('--recovery', 'checkpoint recovery needs --checkpoint-dir DIR and --checkpoint-every K');
  }
  if (snapshotEvery === 0 && checkpointDir === null && (recovery === RecoveryPolicy.auto || recovery === RecoveryPolicy.checkfree)) {
    // Only CheckFree is left, which cannot bring back stage 0 or the last stage: say so at once.
    const edge = injections.find((i) => i.stage === 0 || i.stage === stages - 1);
    if (edge) throw new OptionError('--inject', `"${edge.step}:${edge.stage}:${edge.kind}": with snapshots off only CheckFree can recover, and it cannot rebuild stage 0 or the last stage`);
  }
  const corrupt = injections.find((i) => i.kind === 'corrupt');
  const checkEvery = intOption('--check-every', raw.checkEvery, DEFAULT_JOB.checkEvery, 0, 1_000_000);
  if (corrupt && (replicas < 2 || checkEvery === 0)) {
    throw new OptionError('--inject', `"${corrupt.step}:${corrupt.stage}@${corrupt.replica}:corrupt": corruption is caught by comparing replicas' weights: it needs --replicas 2 or more (3 or more to repair it) and --check-every above 0`);
  }
  const spares = intOption('--spares', raw.spares, 0, 0, MAX_SPARES);
  const ec = erasureSetting(raw.ec, snapshotEvery, stages, replicas, spares);
  return {
    stages,
    replicas,
    replicaCheckEvery: checkEvery,
    onReplicaLoss: replicaLossPolicy(raw.onReplicaLoss),
    snapshotShares: snapshotShares(raw.snapshotShares, replicas, snapshotEvery, ec),
    overlapReduce: onOff('--overlap-reduce', raw.overlapReduce, DEFAULT_JOB.overlapReduce),
    steps,
    seed,
    data,
    backend,
    microBatches,
    microBatchSize,
    model: { seqLen, dModel, heads, layersPerStage, ffnMult },
    learningRate,
    beta1: 0.9,
    beta2: 0.999,
    epsilon: 1e-8,
    clipNorm,
    heartbeatMs,
    leaseMs,
    dumpGradsDir,
    snapshotEvery,
    injections,
    recoveryTimeoutMs: intOption('--recovery-timeout-ms', raw.recoveryTimeoutMs, DEFAULT_JOB.recoveryTimeoutMs, 1000, 86_400_000),
    checkpointEvery,
    checkpointDir,
    ec,
    spares,
    recovery,
    checkfreeLrScale: numberOption('--checkfree-lr-scale', raw.checkfreeLrScale, 1.1, 0, 100),
  };
}

/**
 * `--snapshot-shares`: on by default where it applies (replicas, snapshots, erasure coding). A
 * replica's share lives only in its own slot and in erasure shards: without erasure coding a lost
 * node's share could not be rebuilt, so asking for shares then is refused.
 */
function snapshotShares(raw: unknown, replicas: number, snapshotEvery: SnapshotEvery, ec: ErasureSetting): boolean {
  const asked = onOff('--snapshot-shares', raw, true);
  const explicit = raw !== undefined && raw !== null;
  if (!asked || replicas < 2 || snapshotEvery === 0) return false;
  if (ec === 'off') {
    if (explicit) throw new OptionError('--snapshot-shares', 'on needs erasure coding (--ec auto or K,M): a replica\'s share of a snapshot is held only by its node and by the erasure shards');
    return false;
  }
  return true;
}

/** An on|off option (a boolean from a config too). */
function onOff(flag: string, raw: unknown, fallback: boolean): boolean {
  if (raw === undefined || raw === null) return fallback;
  if (typeof raw === 'boolean') return raw;
  const text = String(raw);
  if (text !== 'on' && text !== 'off') throw new OptionError(flag, `must be on or off, got "${text}"`);
  return text === 'on';
}

/** `--on-replica-loss`: keep (the default), shrink or stop. */
function replicaLossPolicy(raw: unknown): ReplicaLossPolicy {
  const text = raw === undefined || raw === null ? ReplicaLossPolicy.keep : String(raw);
  if (!(Object.values(ReplicaLossPolicy) as string[]).includes(text)) {
    throw new OptionError('--on-replica-loss', `must be one of ${Object.values(ReplicaLossPolicy).join(', ')}, got "${text}"`);
  }
  return text as ReplicaLossPolicy;
}

/** Tokens one step trains on across the whole pipeline, every replica's. */
export function tokensPerStep(job: JobOptions): number {
  return job.replicas * job.microBatches * job.microBatchSize * job.model.seqLen;
}

/** Parses the job JSON sent with a stage assignment; the object was compiled by the coordinator. */
export function parseJobJson(json: string): JobOptions {
  const value = JSON.parse(json) as JobOptions;
  if (typeof value !== 'object' || value === null || typeof value.stages !== 'number' || typeof value.model !== 'object') {
    throw new OptionError('job_json', 'is not a compiled ftrain job');
  }
  return value;
}
