// The Coordinator service on the wire: the commands a node receives, the requests the
// coordinator receives, and its Status reply, each converted to domain types and checked here
// (WireError names the field). The coordinator's adapter and the node's worker both use it.

import type { Command, ReceivedCommand, ShareSource, StateSource } from '../../domain/commands.ts';
import type { InjectionKind } from '../../domain/inject-spec.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import { MAX_SLOTS, MAX_SNAPSHOT_EVERY, MAX_STAGES } from '../../domain/job-options.ts';
import { ZONE_PATTERN } from '../../domain/zones.ts';
import { slotName, slotOf, slotsOfStage } from '../../domain/replica-slots.ts';
import type { ProcessMemory, Registration, RestoreTrace, SmpMemoryReport, StepReport } from '../../domain/node-reports.ts';
import { NodeState, RecoveryMethod, RunPhase, type Failure, type NodeSummary, type RecoveredFailure, type RunSummary } from '../../domain/run-status.ts';
import type { Command as CommandProto, Command__Output } from '../../proto/generated/ftrain/v1/Command.ts';
import type { FaultReport__Output } from '../../proto/generated/ftrain/v1/FaultReport.ts';
import type { HaltedReport__Output } from '../../proto/generated/ftrain/v1/HaltedReport.ts';
import type { HeartbeatRequest__Output } from '../../proto/generated/ftrain/v1/HeartbeatRequest.ts';
import type { MemoryReport, MemoryReport__Output } from '../../proto/generated/ftrain/v1/MemoryReport.ts';
import type { ProcessMemory__Output } from '../../proto/generated/ftrain/v1/ProcessMemory.ts';
import type { InjectionReport__Output } from '../../proto/generated/ftrain/v1/InjectionReport.ts';
import type { LeaveRequest__Output } from '../../proto/generated/ftrain/v1/LeaveRequest.ts';
import type { ProtectionReport__Output } from '../../proto/generated/ftrain/v1/ProtectionReport.ts';
import type { ReadyReport__Output } from '../../proto/generated/ftrain/v1/ReadyReport.ts';
import type { RegisterRequest__Output } from '../../proto/generated/ftrain/v1/RegisterRequest.ts';
import type { StatusReply, StatusReply__Output } from '../../proto/generated/ftrain/v1/StatusReply.ts';
import type { StepReport__Output } from '../../proto/generated/ftrain/v1/StepReport.ts';
import type { StepReply, StepReply__Output } from '../../proto/generated/ftrain/v1/StepReply.ts';
import type { SnapshotInterval } from '../../domain/snapshot-schedule.ts';
import type { ProtectionStatus } from '../../domain/erasure-protection.ts';
import {
  INJECTION_KINDS,
  decodeCheckfree,
  decodeJob,
  decodePlan,
  decodeRebuild,
  decodeReplicaCopy,
  decodeStatus,
  encodeCheckfree,
  encodeJob,
  encodePlan,
  encodeRebuild,
  encodeReplicaCopy,
} from './plan-wire.ts';
import { WireError, enumName, enumOf, hostPort, int, list, num, present, str, type MalformedMessage, parsed } from './wire-check.ts';
import type { ShareSource__Output } from '../../proto/generated/ftrain/v1/ShareSource.ts';
import type { StateSource__Output } from '../../proto/generated/ftrain/v1/StateSource.ts';

/** Longest node id accepted. */
export const MAX_NODE_ID_CHARS = 256;
/** Longest free text (fault messages, reasons) accepted. */
export const MAX_TEXT_CHARS = 16 * 1024;

const NODE_STATES = {
  NODE_STATE_REGISTERED: NodeState.registered,
  NODE_STATE_ASSIGNED: NodeState.assigned,
  NODE_STATE_READY: NodeState.ready,
  NODE_STATE_TRAINING: NodeState.training,
  NODE_STATE_RECOVERING: NodeState.recovering,
  NODE_STATE_SPARE: NodeState.spare,
  NODE_STATE_STOPPED: NodeState.stopped,
  NODE_STATE_LOST: NodeState.lost,
} as const satisfies Readonly<Record<string, NodeState>>;

const RUN_PHASES = {
  RUN_PHASE_WAITING_FOR_NODES: RunPhase.waiting,
  RUN_PHASE_STARTING: RunPhase.starting,
  RUN_PHASE_TRAINING: RunPhase.training,
  RUN_PHASE_RECOVERING: RunPhase.recovering,
  RUN_PHASE_COMPLETE: RunPhase.complete,
  RUN_PHASE_FINISHED: RunPhase.finished,
  RUN_PHASE_FAILED: RunPhase.failed,
  RUN_PHASE_STOPPED: RunPhase.stopped,
} as const satisfies Readonly<Record<string, RunPhase>>;

const RECOVERY_METHODS = {
  RECOVERY_METHOD_LOCAL_SNAPSHOT: RecoveryMethod.localSnapshot,
  RECOVERY_METHOD_ERASURE_REBUILD: RecoveryMethod.erasureRebuild,
  RECOVERY_METHOD_CHECKFREE: RecoveryMethod.checkfree,
  RECOVERY_METHOD_CHECKFREE_PLUS: RecoveryMethod.checkfreePlus,
  RECOVERY_METHOD_DISK_CHECKPOINT: RecoveryMethod.diskCheckpoint,
  RECOVERY_METHOD_REPLICA_COPY: RecoveryMethod.replicaCopy,
} as const satisfies Readonly<Record<string, RecoveryMethod>>;

function nodeId(field: string, v: unknown): string {
  return str(field, v, { nonEmpty: true, maxChars: MAX_NODE_ID_CHARS });
}

function stage(field: string, v: unknown): number {
  return int(field, v, 0, MAX_SLOTS - 1);
}

// --- commands: coordinator -> node ---------------------------------------------------------

/** A command as sent: an Assign also carries the job and the training text's digest. */
export function encodeCommand(command: Command, job: JobOptions, dataSha256: string): CommandProto {
  switch (command.kind) {
    case 'assign':
      return {
        assign: {
          stage: command.stage,
          numStages: command.numStages,
          prevAddress: command.prevAddress,
          nextAddress: command.nextAddress,
          job: encodeJob(job),
          dataSha256,
          epoch: command.epoch,
          restoreStep: command.restoreStep,
          plan: command.plan ? encodePlan(command.plan) : null,
          rebuild: command.rebuild ? encodeRebuild(command.rebuild) : null,
          checkfree: command.checkfree ? encodeCheckfree(command.checkfree) : null,
          replica: command.replica,
          replicaAddresses: [...command.replicaAddresses],
          replicaCopy: command.replicaCopy ? encodeReplicaCopy(command.replicaCopy) : null,
          guestReplicas: [...(command.guestReplicas ?? [])],
          outReplicas: [...(command.outReplicas ?? [])],
          shareIndex: command.shareIndex ?? 0,
          shareCount: command.shareCount ?? 0,
          shareSources: (command.shareSources ?? []).map((s) => ({ slot: s.slot, smpAddress: s.smpAddress })),
          stateSource: command.stateSource ? { slot: command.stateSource.slot, address: command.stateSource.address } : null,
          peerNodeIds: [...(command.peerNodeIds ?? [])],
        },
      };
    case 'protect':
      return { protect: { plan: command.plan ? encodePlan(command.plan) : null } };
    case 'halt':
      return { halt: { epoch: command.epoch, reason: command.reason, resumeAtMost: command.resumeAtMost } };
    case 'start':
      return { start: { fromStep: command.fromStep, toStep: command.toStep, restoreCheckpointStep: command.restoreCheckpointStep, fromScratch: command.fromScratch ?? false } };
    case 'limit':
      return { limit: { toStep: command.toStep, pause: command.pause ?? false } };
    case 'stop':
      return { stop: { reason: command.reason, failed: command.failed } };
  }
}

/** A received command, checked. */
export function decodeCommand(c: Command__Output): ReceivedCommand {
  switch (c.kind) {
    case 'assign': {
      const a = present('assign', c.assign);
      const numStages = int('assign.num_stages', a.numStages, 1, MAX_STAGES);
      const job = decodeJob('assign.job', a.job);
      if (job.stages !== numStages) throw new WireError('assign.num_stages', `is ${numStages}, but the job has ${job.stages} stages`);
      const st = int('assign.stage', a.stage, 0, numStages - 1);
      const replica = int('assign.replica', a.replica, 0, job.replicas - 1);
      const replicaList = (field: string, v: readonly unknown[]): number[] => {
        const out: number[] = list(field, v, (x, f) => int(f, x, 0, job.replicas - 1));
        out.forEach((r, i) => {
          if (r === replica) throw new WireError(field, `names replica ${r}, the node's own`);
          if (i > 0 && r <= out[i - 1]!) throw new WireError(field, 'must be ascending, without repeats');
        });
        return out;
      };
      const guestReplicas = replicaList('assign.guest_replicas', a.guestReplicas ?? []);
      const outReplicas = replicaList('assign.out_replicas', a.outReplicas ?? []);
      if (guestReplicas.length > 0 && outReplicas.length > 0) throw new WireError('assign.out_replicas', 'a replica is either trained by a guest host (keep) or out (shrink), not both kinds at once');
      // An out replica has no address; every other needs one.
      const replicaAddresses = list('assign.replica_addresses', a.replicaAddresses, (v, f) => str(f, v));
      if (replicaAddresses.length !== (job.replicas > 1 ? job.replicas : 0)) {
        throw new WireError('assign.replica_addresses', `has ${replicaAddresses.length} addresses, but the job has ${job.replicas} replica(s) (one address each, none with one)`);
      }
      replicaAddresses.forEach((address, r) => {
        if ((address === '') !== outReplicas.includes(r)) {
          throw new WireError(`assign.replica_addresses[${r}]`, address === '' ? 'must not be empty' : `must be empty: replica ${r} is out`);
        }
      });
      const restoreStep = int('assign.restore_step', a.restoreStep, -1);
      const share = shareFields(a.shareIndex ?? 0, a.shareCount ?? 0, job.replicas);
      const shareSources = shareSourceList(a.shareSources ?? [], job, st, replica, restoreStep);
      const stateSource = a.stateSource ? stateSourceOf(a.stateSource, job, st, replica, restoreStep, shareSources.length) : null;
      return {
        kind: 'assign',
        stage: st,
        numStages,
        prevAddress: str('assign.prev_address', a.prevAddress, { nonEmpty: st > 0 }),
        nextAddress: str('assign.next_address', a.nextAddress, { nonEmpty: st < numStages - 1 }),
        epoch: int('assign.epoch', a.epoch, 0),
        restoreStep,
        plan: a.plan ? decodePlan('assign.plan', a.plan) : null,
        rebuild: a.rebuild ? decodeRebuild('assign.rebuild', a.rebuild) : null,
        checkfree: a.checkfree ? decodeCheckfree('assign.checkfree', a.checkfree) : null,
        replica,
        replicaAddresses,
        ...(guestReplicas.length > 0 ? { guestReplicas } : {}),
        ...(outReplicas.length > 0 ? { outReplicas } : {}),
        ...(a.replicaCopy ? { replicaCopy: decodeReplicaCopy('assign.replica_copy', a.replicaCopy) } : {}),
        ...share,
        ...(shareSources.length > 0 ? { shareSources } : {}),
        ...(stateSource ? { stateSource } : {}),
        ...((a.peerNodeIds ?? []).length > 0 ? { peerNodeIds: list('assign.peer_node_ids', a.peerNodeIds, (v, f) => str(f, v, { nonEmpty: true })) } : {}),
        job,
        dataSha256: str('assign.data_sha256', a.dataSha256),
      };
    }
    case 'protect': {
      const p = present('protect', c.protect);
      return { kind: 'protect', plan: p.plan ? decodePlan('protect.plan', p.plan) : null };
    }
    case 'halt': {
      const h = present('halt', c.halt);
      return { kind: 'halt', epoch: int('halt.epoch', h.epoch, 0), reason: str('halt.reason', h.reason, { maxChars: MAX_TEXT_CHARS }), resumeAtMost: int('halt.resume_at_most', h.resumeAtMost, 0) };
    }
    case 'start': {
      const s = present('start', c.start);
      return {
        kind: 'start',
        fromStep: int('start.from_step', s.fromStep, 0),
        toStep: int('start.to_step', s.toStep, 0),
        restoreCheckpointStep: int('start.restore_checkpoint_step', s.restoreCheckpointStep, -1),
        fromScratch: s.fromScratch,
      };
    }
    case 'limit': {
      const l = present('limit', c.limit);
      return { kind: 'limit', toStep: int('limit.to_step', l.toStep, 0), pause: l.pause };
    }
    case 'stop': {
      const s = present('stop', c.stop);
      return { kind: 'stop', reason: str('stop.reason', s.reason, { maxChars: MAX_TEXT_CHARS }), failed: s.failed };
    }
    default:
      throw new WireError('command.kind', `is not a command this node knows (${String(c.kind)})`);
  }
}

/** An Assign's share of the stage's snapshots: none (the whole state) for a count of 0 or 1. */
function shareFields(index: number, count: number, replicas: number): { shareIndex?: number; shareCount?: number } {
  const c = int('assign.share_count', count, 0, replicas);
  if (c <= 1) {
    int('assign.share_index', index, 0, 0);
    return {};
  }
  return { shareIndex: int('assign.share_index', index, 0, c - 1), shareCount: c };
}

/**
 * An Assign's share sources: other replica slots of the assigned stage (never the node's own),
 * each once, each with its snapshot manager's HOST:PORT; only beside a restore_step.
 */
function shareSourceList(v: readonly ShareSource__Output[], job: JobOptions, stage: number, replica: number, restoreStep: number): ShareSource[] {
  const field = 'assign.share_sources';
  const own = slotOf(job, replica, stage);
  const replicaSlots = slotsOfStage(job, stage);
  const out = list(field, v, (s, f): ShareSource => {
    const slot = int(`${f}.slot`, s.slot, 0, MAX_SLOTS - 1);
    if (slot === own) throw new WireError(`${f}.slot`, `is ${slot}, the node's own slot: its share is read from its own slots`);
    if (!replicaSlots.includes(slot)) throw new WireError(`${f}.slot`, `is ${slot}, not a replica of stage ${stage} (its slots are ${replicaSlots.join(', ')})`);
    return { slot, smpAddress: hostPort(`${f}.smp_address`, s.smpAddress) };
  });
  out.forEach((s, i) => {
    if (out.findIndex((o) => o.slot === s.slot) !== i) throw new WireError(`${field}[${i}].slot`, `names ${slotName(job, s.slot)} (slot ${s.slot}) twice`);
  });
  if (out.length > 0 && restoreStep < 0) throw new WireError(field, 'are given without a restore_step: they are where a restore finds its shares');
  return out;
}

/** An Assign's state source: another replica slot of the stage and its worker's HOST:PORT; only beside a restore_step, never with share sources. */
function stateSourceOf(v: StateSource__Output, job: JobOptions, stage: number, replica: number, restoreStep: number, shareSources: number): StateSource {
  const field = 'assign.state_source';
  const slot = int(`${field}.slot`, v.slot, 0, MAX_SLOTS - 1);
  if (slot === slotOf(job, replica, stage)) throw new WireError(`${field}.slot`, `is ${slot}, the node's own slot`);
  if (!slotsOfStage(job, stage).includes(slot)) throw new WireError(`${field}.slot`, `is ${slot}, not a replica of stage ${stage} (its slots are ${slotsOfStage(job, stage).join(', ')})`);
  if (restoreStep < 0) throw new WireError(field, 'is given without a restore_step: it is where the restore finds the state');
  if (shareSources > 0) throw new WireError(field, 'is given with share_sources: the state comes whole from one, or in shares from the others');
  return { slot, address: hostPort(`${field}.address`, v.address) };
}

// --- requests: node -> coordinator ---------------------------------------------------------

export function decodeRegister(msg: RegisterRequest__Output | MalformedMessage): Registration {
  const r = parsed(msg, 'RegisterRequest');
  const snapshotStage = int('snapshot_stage', r.snapshotStage, -1, MAX_SLOTS - 1);
  return {
    nodeId: nodeId('node_id', r.nodeId),
    address: str('address', r.address, { nonEmpty: true, maxChars: MAX_NODE_ID_CHARS }),
    pid: int('pid', r.pid, 0),
    hostname: str('hostname', r.hostname, { maxChars: MAX_NODE_ID_CHARS }),
    snapshots: snapshotStage >= 0 ? { stage: snapshotStage, steps: list('snapshot_steps', r.snapshotSteps, (s, f) => int(f, s, 0), 64) } : null,
    smpAddress: str('smp_address', r.smpAddress, { maxChars: MAX_NODE_ID_CHARS }),
    smpPid: int('smp_pid', r.smpPid, 0),
    agentPid: int('agent_pid', r.agentPid, 0),
    zone: zoneOf('zone', r.zone ?? ''),
    ...(r.reattach ? { reattach: true } : {}),
  };
}

/** crc32 as 8 lowercase hex digits. */
function hexDigest(field: string, v: string): string {
  if (!/^[0-9a-f]{8}$/.test(v)) throw new WireError(field, `must be 8 hex digits (a crc32), got "${v.slice(0, 40)}"`);
  return v;
}

/** A zone label: letters, digits, '.', '_' and '-', at most 64; empty: none given. */
function zoneOf(field: string, v: string): string {
  const zone = str(field, v, { maxChars: 64 });
  if (zone !== '' && !ZONE_PATTERN.test(zone)) throw new WireError(field, `must be letters, digits, '.', '_' or '-', got "${zone}"`);
  return zone;
}

/** The node id of a request that carries nothing else (Heartbeat, Commands). */
export function decodeNodeId(msg: { nodeId: string } | MalformedMessage, type: string): string {
  return nodeId('node_id', parsed(msg, type).nodeId);
}

export function decodeReady(msg: ReadyReport__Output | MalformedMessage): { nodeId: string; stage: number; epoch: number; checkpointSteps: number[]; trace?: RestoreTrace } {
  const r = parsed(msg, 'ReadyReport');
  const t = r.trace;
  const ms = (field: string, v: unknown) => num(`trace.${field}`, v, 0, 86_400_000);
  return {
    nodeId: nodeId('node_id', r.nodeId),
    stage: stage('stage', r.stage),
    epoch: int('epoch', r.epoch, 0),
    checkpointSteps: list('checkpoint_steps', r.checkpointSteps, (s, f) => int(f, s, 0)),
    ...(t
      ? {
          trace: {
            buildMs: ms('build_ms', t.buildMs),
            rebuildFetchMs: ms('rebuild_fetch_ms', t.rebuildFetchMs),
            rebuildDecodeMs: ms('rebuild_decode_ms', t.rebuildDecodeMs),
            rebuildMs: ms('rebuild_ms', t.rebuildMs),
            restoreMs: ms('restore_ms', t.restoreMs),
            prepareMs: ms('prepare_ms', t.prepareMs),
            connectMs: ms('connect_ms', t.connectMs),
            bytes: int('trace.bytes', t.bytes, 0),
          },
        }
      : {}),
  };
}

export function decodeStepReport(msg: StepReport__Output | MalformedMessage): StepReport {
  const r = parsed(msg, 'StepReport');
  return {
    nodeId: nodeId('node_id', r.nodeId),
    stage: stage('stage', r.stage),
    step: int('step', r.step, 0),
    loss: num('loss', r.loss),
    gradNorm: num('grad_norm', r.gradNorm, 0),
    clippedGradNorm: num('clipped_grad_norm', r.clippedGradNorm, 0),
    computeMs: num('compute_ms', r.computeMs, 0),
    waitMs: num('wait_ms', r.waitMs, 0),
    stepMs: num('step_ms', r.stepMs, 0),
    allReduceMs: num('all_reduce_ms', r.allReduceMs ?? 0, 0),
    ...(r.weightsDigest ? { weightsDigest: hexDigest('weights_digest', r.weightsDigest) } : {}),
    tokens: int('tokens', r.tokens, 0),
    last: r.last,
    epoch: int('epoch', r.epoch, 0),
    snapshotStep: int('snapshot_step', r.snapshotStep, -1),
    snapshotStallMs: num('snapshot_stall_ms', r.snapshotStallMs, 0),
    snapshotCopyMs: num('snapshot_copy_ms', r.snapshotCopyMs, 0),
    snapshotBytes: int('snapshot_bytes', r.snapshotBytes, 0),
    protection: r.protection ? decodeStatus('protection', r.protection) : null,
  };
}

/** The coordinator's answer to a step report. */
export interface StepReplyFields {
  readonly protectedCommitStep: number;
  /** `--snapshot-every auto`: the newest snapshot interval of the segment; null otherwise. */
  readonly snapshotInterval: SnapshotInterval | null;
}

export function encodeStepReply(r: StepReplyFields): StepReply {
  return { protectedCommitStep: r.protectedCommitStep, snapshotInterval: r.snapshotInterval ? { fromStep: r.snapshotInterval.fromStep, every: r.snapshotInterval.every } : null };
}

export function decodeStepReply(msg: StepReply__Output | null | undefined): StepReplyFields {
  const r = parsed(msg, 'StepReply');
  const i = r.snapshotInterval;
  return {
    protectedCommitStep: int('protected_commit_step', r.protectedCommitStep, -1),
    snapshotInterval: i ? { fromStep: int('snapshot_interval.from_step', i.fromStep, 0), every: int('snapshot_interval.every', i.every, 1, MAX_SNAPSHOT_EVERY) } : null,
  };
}

export function decodeFault(msg: FaultReport__Output | MalformedMessage): { nodeId: string; stage: number; message: string } {
  const r = parsed(msg, 'FaultReport');
  // A node that faults before it holds a stage says -1; the coordinator then refuses the stage.
  return { nodeId: nodeId('node_id', r.nodeId), stage: int('stage', r.stage, -1, MAX_SLOTS - 1), message: str('message', r.message, { maxChars: MAX_TEXT_CHARS }) };
}

export function decodeHalted(msg: HaltedReport__Output | MalformedMessage): { nodeId: string; stage: number; epoch: number; snapshotSteps: number[]; memoryStep: number } {
  const r = parsed(msg, 'HaltedReport');
  return {
    nodeId: nodeId('node_id', r.nodeId),
    stage: stage('stage', r.stage),
    epoch: int('epoch', r.epoch, 0),
    snapshotSteps: list('snapshot_steps', r.snapshotSteps, (s, f) => int(f, s, 0), 64),
    memoryStep: int('memory_step', r.memoryStep, -1),
  };
}

export function decodeInjection(msg: InjectionReport__Output | MalformedMessage): { nodeId: string; stage: number; step: number; kind: InjectionKind } {
  const r = parsed(msg, 'InjectionReport');
  return { nodeId: nodeId('node_id', r.nodeId), stage: stage('stage', r.stage), step: int('step', r.step, 0), kind: enumOf('kind', r.kind, INJECTION_KINDS) };
}

export function encodeInjectionKind(kind: InjectionKind): keyof typeof INJECTION_KINDS {
  return enumName(INJECTION_KINDS, kind);
}

export function decodeProtectionReport(msg: ProtectionReport__Output | MalformedMessage): { nodeId: string; status: ProtectionStatus; smpAddress: string } {
  const r = parsed(msg, 'ProtectionReport');
  return { nodeId: nodeId('node_id', r.nodeId), status: decodeStatus('status', r.status), smpAddress: str('smp_address', r.smpAddress, { maxChars: MAX_TEXT_CHARS }) };
}

// --- memory: the worker's with each heartbeat, the snapshot manager's on its own -------------

/** A peak below the current value it goes with is a sender's bug: refused, naming both. */
function peakOf(field: string, v: unknown, current: number, currentField: string): number {
  const peak = int(field, v, 0);
  if (peak < current) throw new WireError(field, `must be at least ${currentField} (${current}), got ${peak}`);
  return peak;
}

function processMemory(field: string, m: ProcessMemory__Output): ProcessMemory {
  const rssBytes = int(`${field}.rss_bytes`, m.rssBytes, 1);
  return { rssBytes, peakRssBytes: peakOf(`${field}.peak_rss_bytes`, m.peakRssBytes, rssBytes, 'rss_bytes') };
}

/** A heartbeat: the node id, and the worker's memory when the sender measures it (null: unknown). */
export function decodeHeartbeat(msg: HeartbeatRequest__Output | MalformedMessage): { nodeId: string; memory: ProcessMemory | null } {
  const r = parsed(msg, 'HeartbeatRequest');
  return { nodeId: nodeId('node_id', r.nodeId), memory: r.memory ? processMemory('memory', r.memory) : null };
}

export function encodeMemoryReport(m: SmpMemoryReport): MemoryReport {
  return { ...m, process: { ...m.process } };
}

export function decodeMemoryReport(msg: MemoryReport__Output | MalformedMessage): SmpMemoryReport {
  const r = parsed(msg, 'MemoryReport');
  const id = nodeId('node_id', r.nodeId);
  const smpAddress = str('smp_address', r.smpAddress, { maxChars: MAX_TEXT_CHARS });
  const process = processMemory('process', present('process', r.process));
  const slotBytes = int('slot_bytes', r.slotBytes, 0);
  const shardBytes = int('shard_bytes', r.shardBytes, 0);
  return {
    nodeId: id,
    smpAddress,
    process,
    slotBytes,
    peakSlotBytes: peakOf('peak_slot_bytes', r.peakSlotBytes, slotBytes, 'slot_bytes'),
    shardBytes,
    peakShardBytes: peakOf('peak_shard_bytes', r.peakShardBytes, shardBytes, 'shard_bytes'),
  };
}

/** Longest notice a departing node may give. */
export const MAX_GRACE_MS = 24 * 3600 * 1000;

export function decodeLeave(msg: LeaveRequest__Output | MalformedMessage): { nodeId: string; graceMs: number; reason: string } {
  const r = parsed(msg, 'LeaveRequest');
  return { nodeId: nodeId('node_id', r.nodeId), graceMs: int('grace_ms', r.graceMs, 0, MAX_GRACE_MS), reason: str('reason', r.reason, { maxChars: MAX_TEXT_CHARS }) };
}

// --- Status ---------------------------------------------------------------------------------

/** Checks that a Status request parsed (it has no fields). */
export function decodeStatusRequest(msg: object | MalformedMessage): void {
  parsed(msg, 'StatusRequest');
}

export function encodeRunStatus(nodes: readonly NodeSummary[], run: RunSummary): StatusReply {
  const failure = (f: Failure) => ({ nodeId: f.nodeId, stage: f.stage ?? -1, detail: f.detail, detectedAtMs: f.detectedAtMs });
  return {
    nodes: nodes.map((n) => ({ ...n, state: enumName(NODE_STATES, n.state), stage: n.stage ?? -1 })),
    run: {
      phase: enumName(RUN_PHASES, run.phase),
      epoch: run.epoch,
      completedSteps: run.completedSteps,
      failure: run.failure ? failure(run.failure) : null,
      failures: run.failures.map((f) => ({
        step: f.step,
        stage: f.stage,
        nodeId: f.nodeId,
        kind: f.kind,
        method: enumName(RECOVERY_METHODS, f.method),
        detail: f.detail,
        detectMs: f.detectMs ?? -1,
        detectedAtMs: f.detectedAtMs,
        recoverMs: f.recoverMs,
        handoverMs: f.handoverMs ?? -1,
        lostSteps: f.lostSteps,
        restoredStep: f.restoredStep,
        caughtUpMs: f.caughtUpMs ?? -1,
      })),
    },
  };
}

const orNull = (v: number): number | null => (v < 0 ? null : v);

export function decodeRunStatus(reply: StatusReply__Output): { nodes: NodeSummary[]; run: RunSummary } {
  const nodes = list('nodes', reply.nodes, (n, f): NodeSummary => {
    const st = int(`${f}.stage`, n.stage, -1, MAX_SLOTS - 1);
    return {
      nodeId: nodeId(`${f}.node_id`, n.nodeId),
      state: enumOf(`${f}.state`, n.state, NODE_STATES),
      stage: st < 0 ? null : st,
      pid: int(`${f}.pid`, n.pid, 0),
      smpPid: int(`${f}.smp_pid`, n.smpPid, 0),
      agentPid: int(`${f}.agent_pid`, n.agentPid, 0),
      hostname: str(`${f}.hostname`, n.hostname),
      address: str(`${f}.address`, n.address),
      smpAddress: str(`${f}.smp_address`, n.smpAddress),
      zone: zoneOf(`${f}.zone`, n.zone ?? ''),
    };
  });
  const r = present('run', reply.run);
  const failure = r.failure
    ? { nodeId: str('run.failure.node_id', r.failure.nodeId), stage: orNull(int('run.failure.stage', r.failure.stage, -1)), detail: str('run.failure.detail', r.failure.detail), detectedAtMs: num('run.failure.detected_at_ms', r.failure.detectedAtMs) }
    : null;
  return {
    nodes,
    run: {
      phase: enumOf('run.phase', r.phase, RUN_PHASES),
      epoch: int('run.epoch', r.epoch, 0),
      completedSteps: int('run.completed_steps', r.completedSteps, 0),
      failure,
      failures: list('run.failures', r.failures, (f, p): RecoveredFailure => ({
        step: int(`${p}.step`, f.step, 0),
        stage: stage(`${p}.stage`, f.stage),
        nodeId: str(`${p}.node_id`, f.nodeId),
        kind: str(`${p}.kind`, f.kind),
        method: enumOf(`${p}.method`, f.method, RECOVERY_METHODS),
        detail: str(`${p}.detail`, f.detail),
        detectMs: orNull(num(`${p}.detect_ms`, f.detectMs)),
        detectedAtMs: num(`${p}.detected_at_ms`, f.detectedAtMs),
        recoverMs: num(`${p}.recover_ms`, f.recoverMs),
        handoverMs: orNull(num(`${p}.handover_ms`, f.handoverMs)),
        lostSteps: int(`${p}.lost_steps`, f.lostSteps, 0),
        restoredStep: int(`${p}.restored_step`, f.restoredStep, 0),
        caughtUpMs: orNull(num(`${p}.caught_up_ms`, f.caughtUpMs)),
      })),
    },
  };
}
