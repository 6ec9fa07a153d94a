// `ftrain chaos`: hits a training job with failures on a seeded schedule, one at a time, waits
// for each to be recovered, replaces lost nodes as a spot fleet would, and says how detection,
// recovery and lost steps went, by kind. This file is the adapter that owns the clock, the
// processes and the signals; what to hit (chaos-target), when (chaos-schedule) and what it all
// means (chaos-summary) are pure.

import { chaosSecurity } from './chaos-security.ts';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join } from 'node:path';
import type { RecoveredFailure } from '../domain/run-status.ts';
import { errorMessage } from '../domain/errors.ts';
import { Prng, hashString, mixSeed } from '../domain/prng.ts';
import { ChaosFleet, type ReplaceResult } from './chaos-fleet.ts';
import { WARMUP_STEPS, type ChaosOptions } from './chaos-options.ts';
import { CHAOS_KINDS, ChaosKind, HA_KINDS, NODE_ENDING_KINDS, chaosSchedule, formatRates } from './chaos-schedule.ts';
import { haFigures, haProcesses, haRecovered, haTarget, haUnready } from './ha-chaos.ts';
import {
  EventOutcome,
  chaosVerdict,
  eventFigures,
  formatClock,
  formatTable,
  matchFailure,
  progressLine,
  summarizeByKind,
  type ChaosEventResult,
  type EventFigures,
  type FiredEvent,
  type KindSummary,
  type Verdict,
} from './chaos-summary.ts';
import { nodePids, pickTarget, signalPlan } from './chaos-target.ts';
import { CoordinatorStatusClient, type ClusterStatus } from './coordinator-status.ts';
import { LocalJob } from './local-job.ts';
import { FrozenProcesses, descendantProcesses, isFtrainProcess, sendSignal } from './process-control.ts';

export const CHAOS_SCHEMA = 'ftrain.chaos/1';
/** How often Status is read while waiting. */
export const STATUS_POLL_MS = 200;
/** A coordinator that has not answered Status for this long is taken for gone. */
export const STATUS_OUTAGE_MS = 15_000;
/** How long the job may take from launch (or attach) to training WARMUP_STEPS steps. */
export const STARTUP_TIMEOUT_MS = 180_000;

/**
 * How long a hit node's processes may take to be gone, beyond a freeze: a preempted node hands
 * its stage over within its grace period (25 s by default) and then exits.
 */
export const GONE_GRACE_MS = 30_000;
/** How long `ftrain run` gets to stop after SIGINT (it finishes the step and stops its nodes). */
export const JOB_STOP_TIMEOUT_MS = 60_000;
/** How long replacement nodes get to leave at the end: a running job's, to hand their stages over. */
const FLEET_STOP_LOCAL_MS = 10_000;
const FLEET_STOP_ATTACHED_MS = 30_000;

export interface ChaosIo {
  /** The table and the verdict. */
  readonly out: (line: string) => void;
  /** Progress, as events happen. */
  readonly err: (line: string) => void;
}

const STDIO: ChaosIo = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
};

/** An event not fired: no fit target, or its pids were not ftrain's. */
export interface SkippedEvent {
  readonly kind: ChaosKind;
  readonly atMs: number;
  readonly reason: string;
}

/** What `--json` writes. */
export interface ChaosResult {
  readonly schema: typeof CHAOS_SCHEMA;
  readonly mode: 'local' | 'attach';
  readonly coordinator: string;
  readonly seed: number;
  readonly durationSeconds: number;
  readonly ratesPerMinute: Readonly<Record<string, number>>;
  readonly freezeSeconds: number;
  readonly maxLostSteps: number;
  readonly workDir: string;
  /** The local job's `ftrain run` process (its process group too), or null. */
  readonly jobPid: number | null;
  readonly reportPath: string | null;
  readonly logFile: string | null;
  readonly elapsedSeconds: number;
  readonly scheduled: number;
  readonly notFired: number;
  readonly stepsAtStart: number;
  readonly stepsAtEnd: number;
  readonly trainingProgressed: boolean;
  readonly runStatus: string | null;
  readonly byKind: readonly KindSummary[];
  readonly events: readonly (ChaosEventResult & { readonly failure: RecoveredFailure | null })[];
  readonly skipped: readonly SkippedEvent[];
  /** Failures the coordinator recovered that no event caused (a neighbour, a replacement). */
  readonly otherFailures: readonly RecoveredFailure[];
  readonly problems: readonly string[];
  readonly ok: boolean;
  readonly reasons: Verdict['reasons'];
}

type PollResult<T> = { readonly kind: 'value'; readonly value: T } | { readonly kind: 'timeout' } | { readonly kind: 'aborted' } | { readonly kind: 'ended'; readonly why: string };

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const ENDED_PHASES = new Set(['failed', 'stopped', 'finished', 'complete']);

function runEndedWhy(s: ClusterStatus): string {
  if (s.phase === 'failed') {
    const f = s.failure;
    return f ? `the run failed: node ${f.nodeId}${f.stage === null ? '' : ` (stage ${f.stage})`}: ${f.detail}` : 'the run failed';
  }
  return `the run ended (phase ${s.phase})`;
}

/** A mutable record of a fired event, finished when chaos ends. */
interface EventState {
  readonly fired: FiredEvent;
  outcome: EventOutcome;
  failureIndex: number | null;
  notes: string[];
  replacement: Promise<ReplaceResult> | null;
  /** An HA event's figures (it has no failure of its own in the coordinator's list). */
  figures: EventFigures | null;
}

export async function runChaos(o: ChaosOptions, io: ChaosIo = STDIO): Promise<number> {
  mkdirSync(o.workDir, { recursive: true });
  const host = hostname();
  const stop = new AbortController();
  const security = await chaosSecurity(o.security, o.workDir, o.target.mode === 'local');
  const job = o.target.mode === 'local' ? new LocalJob([...o.target.runArgs, ...security.runArgs], o.workDir, security.env) : null;
  const frozen = new FrozenProcesses();
  let fleet: ChaosFleet | null = null;
  let t0: number | null = null;
  const clock = () => formatClock(t0 === null ? 0 : Date.now() - t0);
  const say = (line: string) => io.err(`chaos ${clock()} ${line}`);

  // Whatever happens (an error, process.exit, a second Ctrl-C), no process chaos started or froze
  // is left behind.
  const killNow = () => {
    frozen.thawAll();
    fleet?.killNow();
    job?.killNow();
  };
  let interrupts = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    interrupts += 1;
    if (interrupts === 1) {
      io.err(`chaos: ${signal}: no more events; seeing the one in flight through, then stopping (again to kill everything now)`);
      stop.abort();
    } else {
      killNow();
      process.exit(130);
    }
  };
  process.on('exit', killNow);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  let client: CoordinatorStatusClient | null = null;
  let outputFd: number | null = null;
  try {
    const address = o.target.mode === 'attach' ? o.target.coordinator : await job!.start();
    if (job) {
      io.err(`chaos: started ftrain run (pid ${job.pid}), coordinator on ${address}`);
      io.err(`  work dir ${o.workDir}: report.json, run.log (JSON logs of every node), run-output.txt`);
    } else {
      io.err(`chaos: attached to ${address}; only nodes on this machine (hostname ${host}) can be hit; replacement nodes log to ${o.workDir}`);
    }
    outputFd = openSync(join(o.workDir, 'nodes-output.txt'), 'a');
    fleet = new ChaosFleet({ coordinator: address, replaceAfterMs: o.replaceAfterMs, logFile: job ? job.logFile : join(o.workDir, 'nodes.log'), outputFd, print: say, security });
    const statusClient = new CoordinatorStatusClient(address);
    client = statusClient;
    /** The newest Status read. */
    const seen: { last: ClusterStatus | null } = { last: null };

    /** Reads Status until `check` returns a value, `timeoutMs` passes, `signal` aborts or the run ends. */
    const poll = async <T>(check: (s: ClusterStatus) => T | null, timeoutMs: number, signal?: AbortSignal): Promise<PollResult<T>> => {
      const until = Date.now() + timeoutMs;
      let lastOk = Date.now();
      let lastError = '';
      for (;;) {
        if (signal?.aborted) return { kind: 'aborted' };
        if (job?.exit) return { kind: 'ended', why: `ftrain run exited (${job.exit.signal ?? `code ${job.exit.code}`}); see ${job.outputPath}` };
        try {
          const s = await statusClient.status();
          seen.last = s;
          lastOk = Date.now();
          if (ENDED_PHASES.has(s.phase)) return { kind: 'ended', why: runEndedWhy(s) };
          const v = check(s);
          if (v !== null) return { kind: 'value', value: v };
        } catch (err) {
          lastError = errorMessage(err);
          if (Date.now() - lastOk > STATUS_OUTAGE_MS) return { kind: 'ended', why: `the coordinator at ${address} has not answered Status for ${STATUS_OUTAGE_MS / 1000} s (${lastError})` };
        }
        if (Date.now() >= until) return { kind: 'timeout' };
        await sleep(STATUS_POLL_MS, signal);
      }
    };

    const problems: string[] = [];
    const events: EventState[] = [];
    const skipped: SkippedEvent[] = [];
    let runProblem: string | null = null;
    let consumed = 0;

    const started = await poll((s) => (s.phase === 'training' && s.completedSteps >= WARMUP_STEPS ? s : null), STARTUP_TIMEOUT_MS, stop.signal);
    if (started.kind === 'ended') runProblem = started.why;
    if (started.kind === 'timeout') {
      runProblem = `the job had not trained ${WARMUP_STEPS} steps ${STARTUP_TIMEOUT_MS / 1000} s after chaos began (phase ${seen.last?.phase ?? 'unknown'}, ${seen.last?.completedSteps ?? 0} steps)`;
    }
    const stepsAtStart = started.kind === 'value' ? started.value.completedSteps : (seen.last?.completedSteps ?? 0);
    const schedule = chaosSchedule(o.seed, o.durationMs, o.rates);
    t0 = Date.now();
    if (started.kind === 'value') {
      const counts = CHAOS_KINDS.map((k) => [k, schedule.filter((e) => e.kind === k).length] as const).filter(([, n]) => n > 0);
      io.err(
        `chaos: training (step ${stepsAtStart}); ${schedule.length} events scheduled over ${o.durationMs / 1000} s (seed ${o.seed}, per minute ${formatRates(o.rates)}): ${counts.map(([k, n]) => `${n} ${k}`).join(', ')}`,
      );
    }
    const targetPrng = new Prng(mixSeed(o.seed, hashString('chaos-targets')));
    const takenIds = () => new Set(seen.last?.nodes.map((n) => n.nodeId) ?? []);

    /**
     * A coordinator or etcd event (`--ha`): waits until the job can take it (a standby ready, every
     * etcd member up), hits the leader or a member, and waits until training goes on past the step
     * it was fired at (under another leader, for a coordinator). 'ended' when the run ended.
     */
    const fireHa = async (kind: ChaosKind, scheduledAtMs: number): Promise<'fired' | 'skipped' | 'ended'> => {
      const skip = (reason: string) => {
        skipped.push({ kind, atMs: Date.now() - t0!, reason });
        say(`${kind}: skipped: ${reason}`);
        return 'skipped' as const;
      };
      const pgid = job?.pid;
      if (!pgid) return skip('coordinator and etcd events need the local job (--ha)');
      let unready: string | null = 'not checked';
      const until = Date.now() + o.recoveryWaitMs;
      while (unready !== null && Date.now() < until && !stop.signal.aborted) {
        unready = haUnready(kind, haProcesses(descendantProcesses(pgid)), await statusClient.standbys());
        if (unready !== null) await sleep(STATUS_POLL_MS, stop.signal);
      }
      if (unready !== null) return skip(unready);
      const leaderAtFire = statusClient.leader;
      const atFire = await statusClient.status().catch(() => seen.last);
      const stepsAtFire = atFire?.completedSteps ?? 0;
      const termAtFire = atFire?.term ?? 0;
      const target = haTarget(kind, haProcesses(descendantProcesses(pgid)), leaderAtFire, () => targetPrng.next());
      if (!target.ok) return skip(target.reason);
      const firedAtMs = Date.now();
      const sent = target.signals.map((p) => ({ ...p, result: sendSignal(p.pid, p.signal) }));
      const fired: FiredEvent = { index: events.length, kind, scheduledAtMs, atMs: firedAtMs - t0!, firedAtMs, nodeId: target.name, stage: null, signals: target.signals };
      const state: EventState = { fired, outcome: EventOutcome.notRecovered, failureIndex: null, notes: [], replacement: null, figures: null };
      events.push(state);
      const unsent = sent.filter((x) => x.result !== 'sent');
      if (unsent.length > 0) state.notes.push(unsent.map((x) => `${x.role} pid ${x.pid}: ${x.result}`).join(', '));
      if (kind === ChaosKind.coordinatorFreeze) frozen.add(sent.filter((x) => x.result === 'sent').map((x) => x.pid), o.freezeMs);
      let ledAtMs: number | null = null;
      const outcome = await poll((s) => {
        if (ledAtMs === null && s.term > termAtFire) ledAtMs = Date.now();
        return haRecovered(kind, s, termAtFire, stepsAtFire) ? s : null;
      }, o.recoveryWaitMs);
      if (outcome.kind === 'value') {
        state.outcome = EventOutcome.recovered;
        state.figures = haFigures(kind, firedAtMs, ledAtMs, Date.now());
      } else {
        state.notes.push(outcome.kind === 'ended' ? outcome.why : `not recovered within ${o.recoveryWaitMs / 1000} s (phase ${seen.last?.phase ?? 'unknown'}, leader ${statusClient.leader} of term ${seen.last?.term ?? '?'}, ${seen.last?.completedSteps ?? '?'} steps; at the event: term ${termAtFire}, ${stepsAtFire} steps)`);
      }
      io.err(progressLine(result(state, null), Date.now() - firedAtMs));
      if (outcome.kind === 'ended') {
        runProblem = outcome.why;
        return 'ended';
      }
      return 'fired';
    };

    for (const sched of started.kind === 'value' ? schedule : []) {
      if (stop.signal.aborted) break;
      const dueIn = t0 + sched.atMs - Date.now();
      if (dueIn > 0) await sleep(dueIn, stop.signal);
      if (stop.signal.aborted || Date.now() - t0 >= o.durationMs) break;
      // Never two at once: the last event is recovered, its replacement has joined.
      const readyNotes: string[] = [];
      const ready = await poll((s) => (s.phase === 'training' && fleet!.settled(s, readyNotes) ? s : null), o.recoveryWaitMs, stop.signal);
      for (const n of readyNotes) {
        problems.push(n);
        say(n);
      }
      if (ready.kind === 'ended') {
        runProblem = ready.why;
        break;
      }
      if (ready.kind === 'aborted') break;
      if (Date.now() - t0 >= o.durationMs) break;
      consumed += 1;
      if (ready.kind === 'timeout' && seen.last?.phase !== 'training') {
        // Never two at once: with a recovery still under way, this event is not fired.
        const reason = `the job was still not training after ${o.recoveryWaitMs / 1000} s (phase ${seen.last?.phase ?? 'unknown'})`;
        skipped.push({ kind: sched.kind, atMs: Date.now() - t0, reason });
        say(`${sched.kind}: skipped: ${reason}`);
        continue;
      }
      if (ready.kind === 'timeout') {
        const why = `a replacement node had not joined after ${o.recoveryWaitMs / 1000} s; the next event fires anyway`;
        problems.push(why);
        say(why);
      }
      if (HA_KINDS.has(sched.kind)) {
        const hit = await fireHa(sched.kind, sched.atMs);
        if (hit === 'ended') break;
        if (hit === 'fired') await sleep(o.gapMs, stop.signal);
        continue;
      }
      const status = ready.kind === 'value' ? ready.value : seen.last!;
      const choice = pickTarget(status.nodes, sched.kind, host, () => targetPrng.next());
      if (!choice.ok) {
        skipped.push({ kind: sched.kind, atMs: Date.now() - t0, reason: choice.reason });
        say(`${sched.kind}: skipped: ${choice.reason}`);
        continue;
      }
      const node = choice.node;
      const plan = signalPlan(sched.kind, node);
      const foreign = plan.filter((p) => !isFtrainProcess(p.pid));
      if (foreign.length > 0) {
        const reason = `${node.nodeId}'s ${foreign.map((p) => `${p.role} pid ${p.pid}`).join(', ')} is not an ftrain process here`;
        skipped.push({ kind: sched.kind, atMs: Date.now() - t0, reason });
        say(`${sched.kind}: skipped: ${reason}`);
        continue;
      }
      const firedAtMs = Date.now();
      const sent = plan.map((p) => ({ ...p, result: sendSignal(p.pid, p.signal) }));
      const fired: FiredEvent = { index: events.length, kind: sched.kind, scheduledAtMs: sched.atMs, atMs: firedAtMs - t0, firedAtMs, nodeId: node.nodeId, stage: node.stage, signals: plan };
      const state: EventState = { fired, outcome: EventOutcome.notRecovered, failureIndex: null, notes: [], replacement: null, figures: null };
      events.push(state);
      const unsent = sent.filter((s) => s.result !== 'sent');
      if (unsent.length > 0) state.notes.push(`${unsent.map((s) => `${s.role} pid ${s.pid}: ${s.result}`).join(', ')}`);
      if (sched.kind === ChaosKind.freeze) frozen.add(sent.filter((s) => s.result === 'sent').map((s) => s.pid), o.freezeMs);
      if (NODE_ENDING_KINDS.has(sched.kind)) {
        const goneMs = (sched.kind === ChaosKind.freeze ? o.freezeMs : 0) + GONE_GRACE_MS;
        state.replacement = fleet.replace(node.nodeId, nodePids(node), goneMs, takenIds);
      }
      // Recovered: the coordinator lists the node's failure (it does once training resumed).
      const taken = new Set(events.map((e) => e.failureIndex).filter((i): i is number => i !== null));
      const outcome = await poll((s) => {
        const i = matchFailure(fired, s.failures, taken);
        return i !== null && s.phase === 'training' ? { i, s } : null;
      }, o.recoveryWaitMs);
      if (outcome.kind === 'value') {
        state.outcome = EventOutcome.recovered;
        state.failureIndex = outcome.value.i;
      } else {
        state.notes.push(outcome.kind === 'ended' ? outcome.why : `not recovered within ${o.recoveryWaitMs / 1000} s (phase ${seen.last?.phase ?? 'unknown'})`);
      }
      const f = outcome.kind === 'value' ? outcome.value.s.failures[outcome.value.i]! : null;
      io.err(progressLine(result(state, f), Date.now() - firedAtMs));
      if (outcome.kind === 'ended') {
        runProblem = outcome.why;
        break;
      }
      await sleep(o.gapMs, stop.signal);
    }

    // The end: wake what is frozen, stop the job, read its verdict on every failure.
    const elapsedMs = Date.now() - t0;
    frozen.thawAll();
    let failures: readonly RecoveredFailure[] = seen.last?.failures ?? [];
    let stepsAtEnd = seen.last?.completedSteps ?? stepsAtStart;
    let runStatus: string | null = null;
    try {
      const s = await statusClient.status();
      failures = s.failures;
      stepsAtEnd = s.completedSteps;
      runStatus = s.phase;
    } catch {
      // The job has ended; its report says the rest.
    }
    if (job) {
      io.err('chaos: stopping ftrain run');
      const stopped = await job.stop(JOB_STOP_TIMEOUT_MS);
      problems.push(...stopped.notes);
      const report = job.readReport();
      if (report) {
        failures = report.failures;
        stepsAtEnd = report.steps;
        runStatus = report.status;
        if (report.status === 'failed' && runProblem === null) runProblem = `the run failed: ${report.reason}`;
      } else {
        problems.push(`ftrain run wrote no report (${job.reportPath}); figures are from its last Status`);
      }
    }
    problems.push(...(await fleet.stop('SIGTERM', job ? FLEET_STOP_LOCAL_MS : FLEET_STOP_ATTACHED_MS)));
    for (const e of events) {
      if (!e.replacement) continue;
      const r = await e.replacement;
      e.notes.push(...r.notes);
      problems.push(...r.notes);
    }

    const results = await Promise.all(
      events.map(async (e) => {
        const r = e.replacement ? await e.replacement : null;
        const f = e.failureIndex === null ? null : (failures[e.failureIndex] ?? null);
        return { ...result(e, f, r?.replacement ?? null), failure: f };
      }),
    );
    const matched = new Set(results.map((r) => r.failureIndex));
    const otherFailures = failures.filter((_, i) => !matched.has(i));
    const rows = summarizeByKind(results);
    const verdict = chaosVerdict({
      events: results,
      stepsAtStart,
      stepsAtEnd,
      failures,
      maxLostSteps: o.maxLostSteps,
      runProblem,
      interrupted: stop.signal.aborted,
    });
    const notFired = started.kind === 'value' ? schedule.length - consumed : 0;

    io.out('');
    const notFiredWhy = stop.signal.aborted ? 'chaos was interrupted' : runProblem !== null ? 'the run ended first' : 'the duration ended first';
    for (const line of formatTable({ rows, stepsAtStart, stepsAtEnd, notFired, notFiredWhy })) io.out(line);
    if (skipped.length > 0) io.out(`${skipped.length} event(s) skipped: ${skipped.map((s) => `${s.kind} at ${formatClock(s.atMs)} (${s.reason})`).join('; ')}`);
    if (otherFailures.length > 0) {
      io.out(`${otherFailures.length} other failure(s) recovered: ${otherFailures.map((f) => `${f.kind} of ${f.nodeId} (stage ${f.stage}) by ${f.method}, ${f.lostSteps} step(s) lost`).join('; ')}`);
    }
    for (const p of new Set(problems)) io.out(`note: ${p}`);
    io.out(verdict.ok ? `PASS: every event recovered, training progressed, no failure lost more than ${o.maxLostSteps} step(s)` : `FAIL: ${verdict.reasons.join('; ')}`);

    if (o.jsonPath) {
      const out: ChaosResult = {
        schema: CHAOS_SCHEMA,
        mode: o.target.mode,
        coordinator: address,
        seed: o.seed,
        durationSeconds: o.durationMs / 1000,
        ratesPerMinute: Object.fromEntries(o.rates),
        freezeSeconds: o.freezeMs / 1000,
        maxLostSteps: o.maxLostSteps,
        workDir: o.workDir,
        jobPid: job?.pid ?? null,
        reportPath: job?.reportPath ?? null,
        logFile: job?.logFile ?? null,
        elapsedSeconds: elapsedMs / 1000,
        scheduled: started.kind === 'value' ? schedule.length : 0,
        notFired,
        stepsAtStart,
        stepsAtEnd,
        trainingProgressed: stepsAtEnd > stepsAtStart,
        runStatus,
        byKind: rows,
        events: results,
        skipped,
        otherFailures,
        problems: [...new Set(problems)],
        ok: verdict.ok,
        reasons: verdict.reasons,
      };
      mkdirSync(dirname(o.jsonPath), { recursive: true });
      writeFileSync(o.jsonPath, `${JSON.stringify(out, null, 2)}\n`);
      io.out(`figures and events: ${o.jsonPath}`);
    }
    return verdict.ok ? 0 : 1;
  } finally {
    frozen.thawAll();
    if (job?.exit === null) await job.stop(JOB_STOP_TIMEOUT_MS);
    await fleet?.stop(null, 0);
    client?.close();
    if (outputFd !== null) closeSync(outputFd);
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
    process.off('exit', killNow);
  }
}

/** An event's record with its figures, from its state and the failure it matched. */
function result(e: EventState, f: RecoveredFailure | null, replacement: string | null = null): ChaosEventResult {
  return {
    ...e.fired,
    outcome: e.outcome,
    failureIndex: e.failureIndex,
    figures: e.figures ?? (f && e.outcome === EventOutcome.recovered ? eventFigures(e.fired.firedAtMs, f) : null),
    replacement,
    notes: [...e.notes],
  };
}
