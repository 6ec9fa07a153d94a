// Coordinator scenarios as data (after etcd-io/raft's testdata): a text file of commands, each
// followed by `----` and the actions the core answered with, printed in a stable form, then a
// blank line. `runScenarioFile` replays a file against a fresh core and returns the file as it
// should read; the test compares, and FTRAIN_REWRITE=1 writes it back when a change is intended.
//
//   job nodes=2 steps=2 lease=1000        a fresh core for this job (compileJobOptions flags; replicas=2 too)
//   at 1500                               the time of the following events, in ms (no ---- follows)
//   register n0 [addr=a:1] [smp=s0:1] [pid=1] [snapshots=STAGE:S1,S2]
//   open n0 n1 / close n1 / heartbeat n0 n1 / exit n1 [detail...]
//   ready n0 stage=0 [epoch=1] [checkpoints=4,8]
//   report n0 stage=0 step=3 [loss=4.5] [epoch=1] [snap=2] [stall=1] [stepms=15] [grad=0.5] [clipped=0.2] [last]
//   steps 0..2 [reverse] [snap] [stall=1] [stepms=15] [epoch=1]  every placed stage reports each step (snap: the snapshot of the step before)
//   (under --snapshot-every auto, a step report's reply prints its snapshot interval when it changed: `reply n0 every=N from=E`)
//   halted n0 stage=0 epoch=1 steps=2,3
//   inject n1 stage=1 step=4 kind=node-kill
//   protection n1 stage=1 versions=4@0:n2,n3,n4,n0;5@0:... [held=100] [encode=5] [smp=ADDR]
//   probe n1 alive|dead / fault n1 stage=1 MESSAGE... / leave n1 grace=25000 [reason=SIGTERM]
//   tick / stop [graceful] [reason=...] / finish / status
//   register n0 ... reattach              a node of the old leader attaches to the new one
//   restore                               a new leader: a core built from this one's durable state (through JSON)

import { readFileSync, writeFileSync } from 'node:fs';
import { compileJobOptions, type JobOptions, type RawJobOptions } from '../../domain/job-options.ts';
import type { InjectionKind } from '../../domain/inject-spec.ts';
import type { ProtectionStatus } from '../../domain/erasure-protection.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { isLive } from '../../coordinator/core/node-lifecycle.ts';
import { RunPhase } from '../../domain/run-status.ts';
import type { Action, CoordinatorEvent } from '../../coordinator/core/core-events.ts';
import type { Command } from '../../domain/commands.ts';

/** Job flags a scenario's `job` line takes, by their short name. */
const JOB_KEYS: Record<string, keyof RawJobOptions> = {
  nodes: 'nodes',
  replicas: 'replicas',
  'on-replica-loss': 'onReplicaLoss',
  'snapshot-shares': 'snapshotShares',
  steps: 'steps',
  lease: 'leaseMs',
  heartbeat: 'heartbeatMs',
  'snapshot-every': 'snapshotEvery',
  spares: 'spares',
  ec: 'ec',
  recovery: 'recovery',
  'checkpoint-dir': 'checkpointDir',
  'checkpoint-every': 'checkpointEvery',
  'recovery-timeout': 'recoveryTimeoutMs',
  inject: 'inject',
  'lr-scale': 'checkfreeLrScale',
};

interface Args {
  readonly words: string[];
  readonly kv: Map<string, string>;
  readonly flags: Set<string>;
  readonly rest: string;
}

function parseArgs(line: string): { cmd: string; args: Args } {
  const [cmd = '', ...tokens] = line.trim().split(/\s+/);
  const words: string[] = [];
  const kv = new Map<string, string>();
  const flags = new Set<string>();
  for (const t of tokens) {
    const eq = t.indexOf('=');
    if (eq > 0) kv.set(t.slice(0, eq), t.slice(eq + 1));
    else {
      words.push(t);
      flags.add(t);
    }
  }
  const rest = line.trim().slice(cmd.length).trim();
  return { cmd, args: { words, kv, flags, rest } };
}

function num(a: Args, key: string, fallback?: number): number {
  const v = a.kv.get(key);
  if (v === undefined) {
    if (fallback === undefined) throw new Error(`missing ${key}=`);
    return fallback;
  }
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`${key}=${v} is not a number`);
  return n;
}

function steps(list: string | undefined): number[] {
  return list === undefined || list === '' ? [] : list.split(',').map(Number);
}

function plan(p: { code: { dataShards: number; parityShards: number }; holders: readonly { nodeId: string }[] } | null): string {
  return p ? `RS(${p.code.dataShards},${p.code.parityShards}):${p.holders.map((h) => h.nodeId).join(',')}` : '-';
}

function formatCommand(c: Command): string {
  switch (c.kind) {
    case 'assign': {
      const parts = [`assign stage=${c.stage}/${c.numStages}`, `prev=${c.prevAddress || '-'}`, `next=${c.nextAddress || '-'}`, `epoch=${c.epoch}`, `restore=${c.restoreStep}`, `plan=${plan(c.plan)}`];
      if (c.rebuild) parts.push(`rebuild=step${c.rebuild.step}@e${c.rebuild.epoch}`);
      const cf = c.checkfree;
      if (cf?.kind === 'average') parts.push(`checkfree=average(${cf.prev.stage},${cf.next.stage} a=${cf.weights.a.toFixed(4)} b=${cf.weights.b.toFixed(4)}) lr=${cf.learningRateScale}`);
      if (cf?.kind === 'copy') parts.push(`checkfree=copy(${cf.from.stage}) lr=${cf.learningRateScale}`);
      if (c.replicaCopy) parts.push(`copy=slot${c.replicaCopy.fromStage}@${c.replicaCopy.fromAddress}`);
      if (c.replicaAddresses.length > 0) parts.push(`replica=${c.replica} ring=${c.replicaAddresses.map((a) => a || '-').join(',')}`);
      if (c.guestReplicas?.length) parts.push(`guests=${c.guestReplicas.join(',')}`);
      if (c.outReplicas?.length) parts.push(`out=${c.outReplicas.join(',')}`);
      if (c.shareCount !== undefined) parts.push(`share=${c.shareIndex}/${c.shareCount}`);
      if (c.shareSources?.length) parts.push(`sources=${c.shareSources.map((x) => `slot${x.slot}@${x.smpAddress}`).join(',')}`);
      if (c.stateSource) parts.push(`state=slot${c.stateSource.slot}@${c.stateSource.address}`);
      if (c.peerNodeIds?.length) parts.push(`peers=${c.peerNodeIds.join(',')}`);
      return parts.join(' ');
    }
    case 'start':
      return `start from=${c.fromStep} to=${c.toStep} checkpoint=${c.restoreCheckpointStep}${c.fromScratch ? ' from-scratch' : ''}`;
    case 'limit':
      return `limit to=${c.toStep}${c.pause ? ' pause' : ''}`;
    case 'halt':
      return `halt epoch=${c.epoch} resume<=${c.resumeAtMost}: ${c.reason}`;
    case 'stop':
      return `stop${c.failed ? ' failed' : ''}: ${c.reason}`;
    case 'protect':
      return `protect ${plan(c.plan)}`;
  }
}

/** One action per line, in a stable form; actions only the ledger reads (timings) are left out. */
export function formatAction(a: Action): string | null {
  switch (a.type) {
    case 'send':
      return `send ${a.nodeId} ${formatCommand(a.command)}`;
    case 'log':
      return `log ${a.level}: ${a.msg}`;
    case 'notice':
      return `notice ${a.level}: ${a.msg}`;
    case 'stage-assigned':
      return `stage-assigned ${a.stage} -> ${a.nodeId}`;
    case 'training-started':
      return `training-started from=${a.fromStep} to=${a.toStep ?? '-'}${a.resumedFromCheckpoint ? ' resumed' : ''}`;
    case 'step-completed':
      return `step-completed ${a.step} loss=${a.loss} mb=${a.microBatches} commit=${a.commitStep}`;
    case 'training-complete':
      return `training-complete steps=${a.steps}`;
    case 'run-failed':
      return `run-failed ${a.failure.nodeId} stage=${a.failure.stage ?? '-'}: ${a.failure.detail}`;
    case 'recovery-started':
      return `recovery-started stage=${a.stage} ${a.nodeId}: ${a.detail}`;
    case 'recovered': {
      const f = a.failure;
      return `recovered stage=${f.stage} ${f.nodeId} kind=${f.kind} method=${f.method} step=${f.step} restored=${f.restoredStep} lost=${f.lostSteps} detect=${f.detectMs ?? '-'} recover=${f.recoverMs}${f.handoverMs != null ? ` handover=${f.handoverMs}` : ''}${f.trainedOn ? ` trained-on: replica=${f.trainedOn.replica} host=${f.trainedOn.host ?? '-'} steps=${f.trainedOn.steps} rejoin=${f.trainedOn.rejoinMs} pause=${f.trainedOn.joinPauseMs} joined=${f.trainedOn.joinedAtStep}` : ''}`;
    }
    case 'snapshot-committed':
      return `snapshot-committed stage=${a.snapshot.stage} step=${a.snapshot.step}`;
    case 'snapshot-interval':
      return `snapshot-interval every=${a.every} from=${a.fromStep}: ${a.reason}`;
    case 'probe-smp':
      return `probe-smp ${a.nodeId} ${a.address}`;
    case 'run-stopped':
      return `run-stopped: ${a.reason}`;
    case 'run-finished':
      return `run-finished steps=${a.steps}`;
    case 'step-reported':
    case 'encode-reported':
    case 'injection-announced':
      return null;
  }
}

export class Scenario {
  private core: CoordinatorCore | null = null;
  private job: JobOptions | null = null;
  private now = 0;
  /** Auto: the snapshot interval each node was last told (by its Start or a step reply). */
  private readonly interval = new Map<string, string>();

  private get c(): CoordinatorCore {
    if (!this.core) throw new Error('no job yet: start with `job ...`');
    return this.core;
  }

  private feed(event: CoordinatorEvent, out: string[]): void {
    const { reply, actions } = this.c.handle(event, this.now);
    if (!reply.ok) out.push(`refused ${reply.refusal.reason}: ${reply.refusal.message}`);
    for (const a of actions) {
      const line = formatAction(a);
      if (line !== null) out.push(line);
      // A Start begins a node's snapshot schedule afresh: under auto, every step from its step.
      if (a.type === 'send' && a.command.kind === 'start') this.interval.set(a.nodeId, `every=1 from=${a.command.fromStep}`);
    }
    if (event.type === 'step' && reply.ok && reply.snapshotInterval) {
      const told = `every=${reply.snapshotInterval.every} from=${reply.snapshotInterval.fromStep}`;
      if (this.interval.get(event.report.nodeId) !== told) out.push(`reply ${event.report.nodeId} ${told}`);
      this.interval.set(event.report.nodeId, told);
    }
  }

  run(line: string): string[] {
    const { cmd, args: a } = parseArgs(line);
    const out: string[] = [];
    const id = a.words[0] ?? '';
    switch (cmd) {
      case 'job': {
        const raw: Record<string, unknown> = {};
        for (const [k, v] of a.kv) {
          const key = JOB_KEYS[k];
          if (!key) throw new Error(`unknown job key ${k}`);
          raw[key] = v;
        }
        this.job = compileJobOptions(raw as RawJobOptions);
        this.core = new CoordinatorCore(this.job);
        this.interval.clear();
        this.now = 0;
        break;
      }
      case 'at':
        this.now = Number(id);
        break;
      case 'register': {
        const snap = a.kv.get('snapshots');
        const [st, list] = snap ? snap.split(':') : [];
        this.feed(
          {
            type: 'register',
            nodeId: id,
            address: a.kv.get('addr') ?? `w-${id}:1`,
            pid: num(a, 'pid', 1),
            hostname: 'h',
            snapshots: snap ? { stage: Number(st), steps: steps(list) } : null,
            smpAddress: a.kv.get('smp') ?? '',
            ...(a.flags.has('reattach') ? { reattach: true } : {}),
          },
          out,
        );
        break;
      }
      case 'restore':
        this.core = CoordinatorCore.restore(this.job!, JSON.parse(JSON.stringify(this.c.durable())), this.now);
        out.push(...this.c.status().nodes.map((n) => `node ${n.nodeId} ${n.state} stage=${n.stage ?? '-'}`));
        break;
      case 'open':
        for (const n of a.words) this.feed({ type: 'commands-opened', nodeId: n }, out);
        break;
      case 'close':
        for (const n of a.words) this.feed({ type: 'commands-closed', nodeId: n }, out);
        break;
      case 'heartbeat':
        for (const n of a.words) this.feed({ type: 'heartbeat', nodeId: n }, out);
        break;
      case 'exit':
        this.feed({ type: 'process-exited', nodeId: id, detail: a.words.slice(1).join(' ') || 'killed by SIGKILL' }, out);
        break;
      case 'ready':
        this.feed({ type: 'ready', nodeId: id, stage: num(a, 'stage'), epoch: num(a, 'epoch', 0), checkpointSteps: steps(a.kv.get('checkpoints')) }, out);
        break;
      case 'report':
        this.report(id, num(a, 'stage'), num(a, 'step'), a, out);
        break;
      case 'steps': {
        const [from, to] = id.split('..').map(Number) as [number, number];
        // `slots=0,1`: only these (a replica is out); else every slot.
        const only = a.kv.has('slots') ? steps(a.kv.get('slots')) : null;
        const stages = this.c.status().stages.filter((s) => !only || only.includes(s.stage)).map((s) => ({ stage: s.stage, nodeId: s.nodeId! }));
        if (a.flags.has('reverse')) stages.reverse();
        for (let step = from; step <= to; step++) {
          for (const s of stages) {
            const kv = new Map(a.kv);
            if (a.flags.has('snap')) kv.set('snap', String(step));
            this.report(s.nodeId, s.stage, step, { ...a, kv }, out);
          }
        }
        break;
      }
      case 'halted':
        this.feed({ type: 'halted', nodeId: id, stage: num(a, 'stage'), epoch: num(a, 'epoch'), snapshotSteps: steps(a.kv.get('steps')), memoryStep: num(a, 'memory', -1) }, out);
        break;
      case 'inject':
        this.feed({ type: 'injection', nodeId: id, stage: num(a, 'stage'), step: num(a, 'step'), kind: a.kv.get('kind') as InjectionKind }, out);
        break;
      case 'protection':
        this.feed({ type: 'protection', nodeId: id, status: this.protection(a), ...(a.kv.has('smp') ? { smpAddress: a.kv.get('smp')! } : {}) }, out);
        break;
      case 'probe':
        this.feed({ type: 'smp-probed', nodeId: id, alive: a.flags.has('alive'), detail: a.flags.has('alive') ? 'answered' : 'connection refused' }, out);
        break;
      case 'fault':
        this.feed({ type: 'fault', nodeId: id, stage: num(a, 'stage'), message: a.words.slice(1).join(' ') }, out);
        break;
      case 'leave':
        this.feed({ type: 'leave', nodeId: id, graceMs: num(a, 'grace'), reason: a.kv.get('reason') ?? '' }, out);
        break;
      case 'tick':
        this.feed({ type: 'tick', ...(a.kv.has('stalled') ? { stalledMs: num(a, 'stalled') } : {}) }, out);
        break;
      case 'stop':
        this.feed({ type: 'stop-requested', reason: a.kv.get('reason') ?? 'test', graceful: a.flags.has('graceful') }, out);
        break;
      case 'finish':
        this.feed({ type: 'finish' }, out);
        break;
      case 'status': {
        const s = this.c.status();
        out.push(`phase=${s.phase} epoch=${s.epoch} completed=${s.completedSteps} to=${s.toStep ?? '-'} commit=${s.globalCommitStep} protected=${s.protectedCommitStep}`);
        // Auto's interval once it has moved off the every-step start.
        if (s.snapshotInterval.mode === 'auto' && s.snapshotInterval.every !== 1) out.push(`snapshot interval auto: every=${s.snapshotInterval.every} from=${s.snapshotInterval.fromStep}`);
        for (const n of s.nodes) out.push(`node ${n.nodeId} ${n.state} stage=${n.stage ?? '-'} addr=${n.address}`);
        if (s.erasure.code) out.push(`erasure ${s.erasure.codeName}${s.erasure.degraded ? ' degraded' : ''} ${s.erasure.placement.map((p) => `${p.stage}:${p.holders.join(',')}`).join(' ')}`);
        if (s.failure) out.push(`failure ${s.failure.nodeId}: ${s.failure.detail}`);
        for (const f of s.failures) out.push(`survived stage=${f.stage} ${f.kind} ${f.method} caught-up=${f.caughtUpMs ?? '-'}`);
        break;
      }
      default:
        throw new Error(`unknown scenario command "${cmd}"`);
    }
    return out;
  }

  /** Whether a new leader could take over here: training, no recovery under way. */
  get steady(): boolean {
    const s = this.core?.status();
    return !!s && s.phase === RunPhase.training && s.recovering === null;
  }

  /** The core's durable state now. */
  durable(): ReturnType<CoordinatorCore['durable']> {
    return this.c.durable();
  }

  /** Every live node beats now: its lease runs from here, as after a takeover. */
  heartbeatAll(): string[] {
    const out: string[] = [];
    for (const n of this.c.status().nodes) if (isLive(n.state)) this.feed({ type: 'heartbeat', nodeId: n.nodeId }, out);
    return out;
  }

  /**
   * A new leader takes over: its core is restored from the old one's durable state (through
   * JSON, as a store keeps it), and every live node re-attaches (opens its command stream,
   * beats).
   */
  takeover(): string[] {
    const state = JSON.parse(JSON.stringify(this.c.durable()));
    this.core = CoordinatorCore.restore(this.job!, state, this.now);
    const out: string[] = [];
    for (const n of this.c.status().nodes) if (isLive(n.state)) this.feed({ type: 'commands-opened', nodeId: n.nodeId }, out);
    out.push(...this.heartbeatAll());
    return out;
  }

  private report(nodeId: string, stage: number, step: number, a: Args, out: string[]): void {
    const snap = a.kv.get('snap');
    this.feed(
      {
        type: 'step',
        report: {
          nodeId,
          stage,
          step,
          loss: num(a, 'loss', 1),
          gradNorm: num(a, 'grad', 0.5),
          clippedGradNorm: num(a, 'clipped', num(a, 'grad', 0.5)),
          computeMs: 10,
          waitMs: 5,
          stepMs: num(a, 'stepms', 15),
          // Every stage trains its replica's micro-batches (`mb=`: as many as said, a host's with a guest's).
          tokens: num(a, 'mb', this.job!.microBatches) * this.job!.microBatchSize * this.job!.model.seqLen,
          last: a.flags.has('last'),
          epoch: num(a, 'epoch', 0),
          ...(snap === undefined ? {} : { snapshotStep: Number(snap), snapshotBytes: 100, snapshotStallMs: num(a, 'stall', 1), snapshotCopyMs: 2 }),
          ...(a.kv.has('versions') ? { protection: this.protection(a) } : {}),
        },
      },
      out,
    );
  }

  private protection(a: Args): ProtectionStatus {
    const versions = (a.kv.get('versions') ?? '')
      .split(';')
      .filter(Boolean)
      .map((v) => {
        const [stepEpoch, holders] = v.split(':') as [string, string];
        const [step, epoch] = stepEpoch.split('@').map(Number) as [number, number];
        return { step, epoch, holders: holders.split(',') };
      });
    return { stage: num(a, 'stage'), versions, heldBytes: num(a, 'held', 0), heldShards: 0, encodeMs: a.kv.has('encode') ? num(a, 'encode') : null, placeMs: null, lastError: null };
  }
}

/**
 * Replays a scenario file; returns its text with every expectation replaced by what the core
 * did now (equal to the file when the behaviour is as written).
 */
export function runScenarioFile(path: string): { expected: string; actual: string } {
  const expected = readFileSync(path, 'utf8');
  const lines = expected.split('\n');
  const scenario = new Scenario();
  const outLines: string[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.trim() === '' || line.startsWith('#')) {
      outLines.push(line);
      i++;
      continue;
    }
    if (/^at \d+$/.test(line.trim())) {
      // The time of the commands that follow: a directive, with no output of its own.
      scenario.run(line);
      outLines.push(line);
      i++;
      continue;
    }
    outLines.push(line);
    i++;
    if (lines[i] !== '----') throw new Error(`${path}:${i + 1}: expected ---- after "${line}"`);
    outLines.push('----');
    i++;
    while (i < lines.length && lines[i]!.trim() !== '') i++; // the old expectation
    let produced: string[];
    try {
      produced = scenario.run(line);
    } catch (err) {
      produced = [`error: ${(err as Error).message}`];
    }
    outLines.push(...produced);
  }
  return { expected, actual: outLines.join('\n') };
}

/** The commands of a scenario file, in order (`at` lines too), without their expectations. */
export function scenarioCommands(path: string): string[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line, i, all) => line.trim() !== '' && !line.startsWith('#') && (all[i + 1] === '----' || /^at \d+$/.test(line.trim())));
}

export function rewriteScenarioFile(path: string, text: string): void {
  writeFileSync(path, text);
}
