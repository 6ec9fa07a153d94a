// `ftrain bench coordinator --simulate`: the coordinator's pure core (no sockets, no timers)
// driven through many nodes and hours of spot churn on a simulated clock, as fast as it goes.
// Simulated nodes answer the core's commands as workers do (ready after an Assign, halted after a
// Halt with the snapshots of their last steps, steps in order after a Start, a replica paused at a
// Limit), beat and report steps on schedule, and the churn schedule takes nodes away: half
// preempted with notice (`leave`, then gone once told to stop or at the deadline), half lost
// abruptly (silent: found by their lease). Each lost node is replaced by a new one that joins as
// a spare a while later, as a spot fleet does.
//
// Time moves in ticks of `tickMs` simulated: each tick the nodes that are due beat and report, the
// answers to the last tick's commands arrive, and the core gets its clock tick. A day at the
// default interval of 500 ms heartbeats would be billions of events, so the simulated job beats
// every `heartbeatMs` (default 30 s, lease 5x that) and steps every `stepMs`: the figure that
// matters here is what the core does with membership, leases, steps and recoveries at scale.

import { CoordinatorCore } from '../coordinator/core/coordinator-core.ts';
import type { Action, CoordinatorEvent } from '../coordinator/core/core-events.ts';
import { compileJobOptions } from '../domain/job-options.ts';
import { Prng } from '../domain/prng.ts';
import { sig } from './stats.ts';

export interface CoordinatorSimOptions {
  readonly nodes: number;
  readonly stages: number;
  readonly spares: number;
  readonly hours: number;
  /** Fraction of the nodes lost per hour. */
  readonly churnPerHour: number;
  readonly stepMs: number;
  readonly heartbeatMs: number;
  readonly seed: number;
  readonly progress: (line: string) => void;
}

export interface CoordinatorSimResult {
  readonly config: Readonly<Record<string, number | string>>;
  readonly simulatedNodes: number;
  readonly simulatedHours: number;
  readonly eventsFed: number;
  readonly wallSeconds: number;
  readonly eventsPerSecond: number;
  readonly failuresInjected: number;
  readonly preemptions: number;
  readonly abruptLosses: number;
  readonly failuresRecovered: number;
  /** Lost nodes that held no stage when the coordinator found them gone (spares): nothing to recover. */
  readonly sparesLost: number;
  /** Nodes declared failed that were neither lost nor leaving. */
  readonly falseLosses: number;
  readonly recoveryTiers: Readonly<Record<string, number>>;
  readonly nodesJoined: number;
  readonly stepsCompleted: number;
  readonly finalPhase: string;
  readonly runFailure: string | null;
  readonly peakRssBytes: number;
  readonly slowestEventMs: number;
  readonly slowestEventType: string;
}

/** Simulated time between ticks: node schedules and the core's clock tick. */
export const SIM_TICK_MS = 1000;
/** The simulated job's --recovery-timeout-ms: ten ticks, each node answering a command the tick after it. */
const SIM_ANSWER_BOUND_MS = 10 * SIM_TICK_MS;
/** A preempted node's notice (GKE gives spot VMs 30 s). */
const PREEMPT_GRACE_MS = 30_000;
/** A replacement node registers this long after the node it replaces went away. */
const REJOIN_MS = 120_000;
const PROGRESS_EVERY_SIM_MS = 3_600_000;
/** Failures fall in this share of the period, at the rate asked: the rest lets the last ones recover. */
const CHURN_SHARE = 0.9;

interface SimNode {
  readonly id: string;
  gone: boolean;
  /** Silent: beats and answers nothing (lost abruptly); gone once the coordinator says so. */
  silent: boolean;
  leavingUntilMs: number | null;
  nextBeatMs: number;
  slot: number;
  replica: number;
  lastStage: boolean;
  tokens: number;
  epoch: number;
  training: boolean;
  lastStep: number;
  fromStep: number;
  startAtMs: number;
  toStep: number;
}

export function runCoordinatorSimulation(o: CoordinatorSimOptions): CoordinatorSimResult {
  const replicas = (o.nodes - o.spares) / o.stages;
  if (!Number.isInteger(replicas) || replicas < 1) throw new Error(`${o.nodes} nodes less ${o.spares} spares is not a whole number of ${o.stages}-stage replicas`);
  const job = compileJobOptions({
    nodes: o.stages,
    replicas,
    spares: o.spares,
    snapshotEvery: 1,
    ec: 'off',
    checkEvery: 0,
    heartbeatMs: o.heartbeatMs,
    leaseMs: o.heartbeatMs * 5,
    // The simulated nodes answer every command a tick later: one that has not answered ten ticks
    // on is gone (silent), and a recovery gives it up then (recovery-answers.ts) rather than
    // wait for its lease, five slow heartbeats long, while more nodes go silent.
    recoveryTimeoutMs: SIM_ANSWER_BOUND_MS,
  });
  const core = new CoordinatorCore(job);
  const prng = new Prng(o.seed);
  const endMs = o.hours * 3_600_000;
  const nodes = new Map<string, SimNode>();
  const replicaLimits = new Map<number, number>();
  /** Events that arrive at the next tick: the nodes' answers to this tick's commands. */
  let next: CoordinatorEvent[] = [];
  let now = 0;
  let events = 0;
  let slowest = { ms: 0, type: '' };
  let nextId = 0;
  let stepsCompleted = 0;
  let recovered = 0;
  let joined = 0;
  const tiers: Record<string, number> = {};
  let runFailure: string | null = null;
  let falseLosses = 0;
  let sparesLost = 0;
  let peakRss = process.memoryUsage.rss();

  const feed = (e: CoordinatorEvent): void => {
    const t0 = performance.now();
    const { actions } = core.handle(e, now);
    const ms = performance.now() - t0;
    if (ms > slowest.ms) slowest = { ms, type: e.type };
    events += 1;
    for (const a of actions) act(a);
  };

  const act = (a: Action): void => {
    switch (a.type) {
      case 'send':
        command(a.nodeId, a.command);
        return;
      case 'step-completed':
        stepsCompleted = Math.max(stepsCompleted, a.step + 1);
        return;
      case 'recovered':
        recovered += 1;
        tiers[a.failure.method] = (tiers[a.failure.method] ?? 0) + 1;
        return;
      case 'log': {
        // A node the coordinator gives up on is gone: fenced, it exits (a silent one was gone already).
        const id = a.msg === 'node failed' ? (a.fields?.nodeId as string | undefined) : undefined;
        const n = id === undefined ? undefined : nodes.get(id);
        // Found once; a spare that leaves with notice has been told to stop already.
        if (n && a.fields?.stage === null && (n.silent || n.leavingUntilMs !== null)) sparesLost += 1;
        if (n && !n.gone) {
          if (!n.silent && n.leavingUntilMs === null) falseLosses += 1;
          n.gone = true;
          n.training = false;
        }
        return;
      }
      case 'run-failed':
        runFailure = `node ${a.failure.nodeId} (stage ${a.failure.stage}): ${a.failure.detail}`;
        return;
      default:
        return;
    }
  };

  const command = (nodeId: string, c: Extract<Action, { type: 'send' }>['command']): void => {
    const n = nodes.get(nodeId);
    if (!n || n.gone || n.silent) return;
    switch (c.kind) {
      case 'assign':
        n.training = false;
        n.epoch = c.epoch;
        n.replica = c.replica;
        n.slot = c.replica * c.numStages + c.stage;
        n.lastStage = c.stage === c.numStages - 1;
        n.tokens = job.microBatches * job.microBatchSize * job.model.seqLen * (1 + (c.guestReplicas?.length ?? 0));
        if (c.restoreStep >= 0) n.lastStep = c.restoreStep - 1;
        next.push({ type: 'ready', nodeId, stage: n.slot, epoch: c.epoch, checkpointSteps: [] });
        return;
      case 'start':
        replicaLimits.delete(n.replica);
        n.training = true;
        n.fromStep = c.fromStep;
        n.lastStep = c.fromStep - 1;
        n.startAtMs = now;
        n.toStep = c.toStep;
        return;
      case 'halt':
        n.training = false;
        n.epoch = c.epoch;
        next.push({ type: 'halted', nodeId, stage: n.slot, epoch: c.epoch, snapshotSteps: [n.lastStep - 1, n.lastStep, n.lastStep + 1].filter((s) => s >= 0), memoryStep: n.lastStep + 1 });
        return;
      case 'limit':
        replicaLimits.set(n.replica, c.toStep);
        return;
      case 'stop':
        // The node exits: its command stream ends.
        n.gone = true;
        n.training = false;
        next.push({ type: 'commands-closed', nodeId });
        return;
      case 'protect':
        return;
    }
  };

  const join = (): void => {
    const id = `n${nextId++}`;
    // A phase of its own within the heartbeat interval, as nodes started at different times beat.
    const n: SimNode = { id, gone: false, silent: false, leavingUntilMs: null, nextBeatMs: now + prng.nextInt(o.heartbeatMs), slot: -1, replica: -1, lastStage: false, tokens: 0, epoch: 0, training: false, lastStep: -1, fromStep: 0, startAtMs: 0, toStep: 0 };
    nodes.set(id, n);
    feed({ type: 'register', nodeId: id, address: `w${id}:1`, pid: 1, hostname: 'sim', smpAddress: `s${id}:1` });
    feed({ type: 'commands-opened', nodeId: id });
  };

  // The churn schedule: failure times uniform over the period but its last tenth (so that each
  // failure has time to be recovered before the end), each a random node then alive.
  const failures = Math.round(o.nodes * o.churnPerHour * o.hours * CHURN_SHARE);
  const failAt = Array.from({ length: failures }, () => Math.floor(prng.next() * endMs * CHURN_SHARE)).sort((a, b) => a - b);
  const rejoinAt: number[] = [];
  let preemptions = 0;
  let abrupt = 0;

  const t0 = performance.now();
  for (let i = 0; i < o.nodes; i++) join();
  let nextProgress = PROGRESS_EVERY_SIM_MS;
  let f = 0;
  for (now = 0; now <= endMs && runFailure === null; now += SIM_TICK_MS) {
    const arriving = next;
    next = [];
    for (const e of arriving) feed(e);
    while (f < failAt.length && failAt[f]! <= now) {
      f += 1;
      const alive = [...nodes.values()].filter((n) => !n.gone && !n.silent && n.leavingUntilMs === null);
      const victim = alive[prng.nextInt(alive.length)];
      if (!victim) continue;
      if ((preemptions + abrupt) % 2 === 0) {
        preemptions += 1;
        victim.leavingUntilMs = now + PREEMPT_GRACE_MS;
        feed({ type: 'leave', nodeId: victim.id, graceMs: PREEMPT_GRACE_MS, reason: 'spot preemption notice' });
      } else {
        abrupt += 1;
        victim.silent = true;
        victim.training = false;
      }
      rejoinAt.push(now + REJOIN_MS);
    }
    while (rejoinAt.length > 0 && rejoinAt[0]! <= now) {
      rejoinAt.shift();
      joined += 1;
      join();
    }
    for (const n of nodes.values()) {
      if (n.gone) continue;
      if (n.silent) continue;
      if (n.leavingUntilMs !== null && now >= n.leavingUntilMs) {
        // The notice ran out: the machine goes, its stream with it.
        n.gone = true;
        n.training = false;
        feed({ type: 'commands-closed', nodeId: n.id });
        continue;
      }
      if (now >= n.nextBeatMs) {
        n.nextBeatMs += o.heartbeatMs;
        feed({ type: 'heartbeat', nodeId: n.id });
      }
      if (!n.training) continue;
      const step = n.lastStep + 1;
      if ((n.toStep > 0 && step >= n.toStep) || step >= (replicaLimits.get(n.replica) ?? Infinity)) continue;
      if (now < n.startAtMs + (step - n.fromStep + 1) * o.stepMs) continue;
      const epoch = n.epoch;
      const { reply, actions } = core.handle(
        {
          type: 'step',
          report: { nodeId: n.id, stage: n.slot, step, loss: n.lastStage ? 2.5 : 0, gradNorm: 1, clippedGradNorm: 1, computeMs: o.stepMs * 0.8, waitMs: o.stepMs * 0.1, stepMs: o.stepMs, tokens: n.tokens, last: false, epoch, snapshotStep: step, snapshotStallMs: 1, snapshotCopyMs: 5, snapshotBytes: 1 << 20, allReduceMs: 10 },
        },
        now,
      );
      events += 1;
      for (const a of actions) act(a);
      if (reply.ok && n.epoch === epoch && n.training) n.lastStep = step;
    }
    feed({ type: 'tick' });
    if (now >= nextProgress) {
      nextProgress += PROGRESS_EVERY_SIM_MS;
      peakRss = Math.max(peakRss, process.memoryUsage.rss());
      o.progress(`bench coordinator --simulate: hour ${(now / 3_600_000).toFixed(0)}: ${events} events in ${((performance.now() - t0) / 1000).toFixed(1)} s, ${stepsCompleted} steps, ${preemptions + abrupt} failures, ${recovered} recovered`);
    }
  }
  const wallSeconds = (performance.now() - t0) / 1000;
  peakRss = Math.max(peakRss, process.memoryUsage.rss(), process.resourceUsage().maxRSS * 1024);
  const status = core.status();
  return {
    config: { nodes: o.nodes, stages: o.stages, replicas, spares: o.spares, stepMs: o.stepMs, heartbeatMs: job.heartbeatMs, leaseMs: job.leaseMs, recoveryTimeoutMs: job.recoveryTimeoutMs, tickMs: SIM_TICK_MS, churnPerHour: o.churnPerHour, preemptGraceMs: PREEMPT_GRACE_MS, rejoinMs: REJOIN_MS, seed: o.seed, snapshots: 'every step, as the simulated nodes report them; --ec off', answers: 'a node answers a command one tick later' },
    simulatedNodes: o.nodes,
    simulatedHours: o.hours,
    eventsFed: events,
    wallSeconds: sig(wallSeconds),
    eventsPerSecond: sig(events / wallSeconds),
    failuresInjected: preemptions + abrupt,
    preemptions,
    abruptLosses: abrupt,
    failuresRecovered: recovered,
    sparesLost,
    falseLosses,
    recoveryTiers: tiers,
    nodesJoined: joined,
    stepsCompleted,
    finalPhase: status.phase,
    runFailure,
    peakRssBytes: peakRss,
    slowestEventMs: sig(slowest.ms),
    slowestEventType: slowest.type,
  };
}

