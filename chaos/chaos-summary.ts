// What a chaos run found: each event matched to the failure the coordinator recovered, the
// figures by kind, the verdict (and why), and their text forms. Pure: the runner hands in the
// events and the coordinator's failures; nothing here reads a clock.

import type { RecoveredFailure } from '../domain/run-status.ts';
import { percentile } from '../observability/run-report.ts';
import { CHAOS_KINDS, type ChaosKind } from './chaos-schedule.ts';
import type { SignalStep } from './chaos-target.ts';

/**
 * How far before an event a failure's detection may lie and still be that event's: the
 * coordinator stamps detection with its own clock, and another machine's clock may be a little
 * behind this one.
 */
export const CLOCK_SLACK_MS = 250;

export const EventOutcome = {
  /** The coordinator recovered the node's failure and training resumed. */
  recovered: 'recovered',
  /** No recovery of the node's failure within the wait, or the run failed meanwhile. */
  notRecovered: 'not-recovered',
} as const;
export type EventOutcome = (typeof EventOutcome)[keyof typeof EventOutcome];

/** An event as fired: what, when, on which node, with which signals. */
export interface FiredEvent {
  readonly index: number;
  readonly kind: ChaosKind;
  /** When the schedule wanted it, from the start of chaos. */
  readonly scheduledAtMs: number;
  /** When it was fired, from the start of chaos. */
  readonly atMs: number;
  /** When it was fired, ms since the epoch (this machine's clock). */
  readonly firedAtMs: number;
  readonly nodeId: string;
  readonly stage: number | null;
  readonly signals: readonly SignalStep[];
}

/** Figures of an event whose failure the coordinator recovered. */
export interface EventFigures {
  /**
   * From the event to the coordinator's detection (for a preemption: to the stage's move; for a
   * coordinator event: until another coordinator led); null when there is nothing to detect (an
   * etcd member lost).
   */
  readonly detectionMs: number | null;
  /** From the event until training resumed. */
  readonly recoveryMs: number;
  /** Preemption: from the notice until the stage could move; null for other kinds. */
  readonly handoverMs: number | null;
  readonly lostSteps: number;
  readonly method: string;
  /** The coordinator's kind for the failure (worker-crash, preempt, ...). */
  readonly failureKind: string;
}

export interface ChaosEventResult extends FiredEvent {
  readonly outcome: EventOutcome;
  /** Index of the matched failure in the coordinator's list, or null. */
  readonly failureIndex: number | null;
  readonly figures: EventFigures | null;
  /** The node started in place of the target, if any. */
  readonly replacement: string | null;
  /** Anything odd seen around this event (a node that did not go, a replacement that did not join). */
  readonly notes: readonly string[];
}

/**
 * The coordinator's failure that an event caused: the earliest one on the event's node
 * detected at or after the event (less CLOCK_SLACK_MS) and not already `taken` by another event.
 */
export function matchFailure(event: Pick<FiredEvent, 'nodeId' | 'firedAtMs'>, failures: readonly RecoveredFailure[], taken: ReadonlySet<number>): number | null {
  let best: number | null = null;
  for (const [i, f] of failures.entries()) {
    if (taken.has(i) || f.nodeId !== event.nodeId || f.detectedAtMs < event.firedAtMs - CLOCK_SLACK_MS) continue;
    if (best === null || f.detectedAtMs < failures[best]!.detectedAtMs) best = i;
  }
  return best;
}

/** Matches every event in order; each failure goes to one event at most. */
export function matchAll(events: readonly Pick<FiredEvent, 'nodeId' | 'firedAtMs'>[], failures: readonly RecoveredFailure[]): (number | null)[] {
  const taken = new Set<number>();
  return events.map((e) => {
    const i = matchFailure(e, failures, taken);
    if (i !== null) taken.add(i);
    return i;
  });
}

/**
 * An event's figures from its failure. Detection: the coordinator's detection time less the
 * event time. Recovery: until training resumed, which the coordinator puts at recoverMs after
 * the failure time it knows (detectedAtMs - detectMs: a preemption's move) or, when it knows
 * none (detectMs null: a crash it did not cause), after the detection.
 */
export function eventFigures(firedAtMs: number, f: RecoveredFailure): EventFigures {
  const detectionMs = f.detectedAtMs - firedAtMs;
  return {
    detectionMs,
    recoveryMs: detectionMs - (f.detectMs ?? 0) + f.recoverMs,
    handoverMs: f.handoverMs ?? null,
    lostSteps: f.lostSteps,
    method: f.method,
    failureKind: f.kind,
  };
}

export interface Spread {
  readonly p50: number | null;
  readonly p99: number | null;
  readonly max: number | null;
}

export interface KindSummary {
  /** A kind, or 'all'. */
  readonly kind: ChaosKind | 'all';
  readonly events: number;
  readonly recovered: number;
  readonly detectionMs: Spread;
  readonly recoveryMs: Spread;
  /** Preemptions only (null elsewhere): notice to move. */
  readonly handoverMs: Spread | null;
  readonly lostStepsTotal: number;
  readonly lostStepsMax: number;
  /** Recovery method -> count. */
  readonly methods: Readonly<Record<string, number>>;
}

function spread(values: readonly number[]): Spread {
  return { p50: percentile(values, 50), p99: percentile(values, 99), max: values.length ? Math.max(...values) : null };
}

function summarizeEvents(kind: ChaosKind | 'all', events: readonly ChaosEventResult[]): KindSummary {
  const figs = events.map((e) => e.figures).filter((f): f is EventFigures => f !== null);
  const handovers = figs.map((f) => f.handoverMs).filter((h): h is number => h !== null);
  const methods: Record<string, number> = {};
  for (const f of figs) methods[f.method] = (methods[f.method] ?? 0) + 1;
  return {
    kind,
    events: events.length,
    recovered: events.filter((e) => e.outcome === EventOutcome.recovered).length,
    detectionMs: spread(figs.map((f) => f.detectionMs).filter((d): d is number => d !== null)),
    recoveryMs: spread(figs.map((f) => f.recoveryMs)),
    handoverMs: kind === 'preempt' || (kind === 'all' && handovers.length > 0) ? spread(handovers) : null,
    lostStepsTotal: figs.reduce((n, f) => n + f.lostSteps, 0),
    lostStepsMax: figs.reduce((n, f) => Math.max(n, f.lostSteps), 0),
    methods,
  };
}

/** One row per kind that had events (table order), then 'all'. */
export function summarizeByKind(events: readonly ChaosEventResult[]): KindSummary[] {
  const rows = CHAOS_KINDS.map((k) => events.filter((e) => e.kind === k))
    .filter((es) => es.length > 0)
    .map((es) => summarizeEvents(es[0]!.kind, es));
  return [...rows, summarizeEvents('all', events)];
}

export interface VerdictInput {
  readonly events: readonly ChaosEventResult[];
  readonly stepsAtStart: number;
  readonly stepsAtEnd: number;
  /** Every failure the coordinator recovered during the run, caused by chaos or not. */
  readonly failures: readonly RecoveredFailure[];
  readonly maxLostSteps: number;
  /** Why the run itself failed or ended early, or null. */
  readonly runProblem: string | null;
  readonly interrupted: boolean;
}

export interface Verdict {
  readonly ok: boolean;
  /** Sentences, one per reason to fail; empty when ok. */
  readonly reasons: readonly string[];
}

/** ok only if events were fired and all recovered, training progressed and no failure lost more than maxLostSteps steps. */
export function chaosVerdict(v: VerdictInput): Verdict {
  const reasons: string[] = [];
  if (v.interrupted) reasons.push('interrupted before the end of the run');
  if (v.runProblem !== null) reasons.push(v.runProblem);
  if (v.events.length === 0) reasons.push('no event was fired: raise --duration or --rates');
  const failed = v.events.filter((e) => e.outcome !== EventOutcome.recovered);
  if (failed.length > 0) {
    reasons.push(`${failed.length} of ${v.events.length} events were not recovered: ${failed.map((e) => `${e.kind} ${e.nodeId} at ${formatClock(e.atMs)}`).join(', ')}`);
  }
  if (v.stepsAtEnd <= v.stepsAtStart) reasons.push(`training did not progress: ${v.stepsAtStart} steps done at the start, ${v.stepsAtEnd} at the end`);
  const lossy = v.failures.filter((f) => f.lostSteps > v.maxLostSteps);
  if (lossy.length > 0) {
    reasons.push(
      `${lossy.length === 1 ? 'a failure' : `${lossy.length} failures`} lost more than --max-lost-steps ${v.maxLostSteps} step(s): ${lossy
        .map((f) => `stage ${f.stage} on ${f.nodeId} (${f.kind}, step ${f.step}) lost ${f.lostSteps}`)
        .join(', ')}`,
    );
  }
  return { ok: reasons.length === 0, reasons };
}

/** mm:ss from the start of chaos. */
export function formatClock(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

function seconds(ms: number | null, digits = 2): string {
  return ms === null ? '-' : (ms / 1000).toFixed(digits);
}

function spreadText(s: Spread): string {
  return s.p50 === null ? '-' : `${seconds(s.p50)} / ${seconds(s.p99)} / ${seconds(s.max)}`;
}

/** The line printed when an event is over. */
export function progressLine(e: ChaosEventResult, waitedMs: number): string {
  const head = `chaos ${formatClock(e.atMs)} ${e.kind} ${e.nodeId}${e.stage === null ? '' : ` (stage ${e.stage})`}`;
  const f = e.figures;
  if (e.outcome !== EventOutcome.recovered || f === null) {
    return `${head}: NOT RECOVERED after ${seconds(waitedMs, 0)} s${e.notes.length ? ` (${e.notes.join('; ')})` : ''}`;
  }
  const handover = f.handoverMs === null ? '' : `, handed over in ${seconds(f.handoverMs, 1)} s`;
  const notes = e.notes.length ? `; ${e.notes.join('; ')}` : '';
  const detected = f.detectionMs === null ? 'nothing to detect' : `detected in ${seconds(f.detectionMs, 1)} s`;
  return `${head}: ${detected}${handover}, recovered by ${f.method} in ${seconds(f.recoveryMs, 1)} s, ${f.lostSteps} step${f.lostSteps === 1 ? '' : 's'} lost${notes}`;
}

function pad(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
}

export interface TableInput {
  readonly rows: readonly KindSummary[];
  readonly stepsAtStart: number;
  readonly stepsAtEnd: number;
  readonly notFired: number;
  /** Why they were not fired: the duration ended first, chaos was interrupted, the run ended. */
  readonly notFiredWhy: string;
}

/** The table by kind and the lines under it. */
export function formatTable(t: TableInput): string[] {
  const header = ['kind', 'events', 'recovered', 'detection p50/p99/max s', 'recovery p50/p99/max s', 'steps lost total/max'];
  const body = t.rows.map((r) => [r.kind, String(r.events), String(r.recovered), spreadText(r.detectionMs), spreadText(r.recoveryMs), `${r.lostStepsTotal} / ${r.lostStepsMax}`]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const lines = [pad(header, widths), ...body.map((b) => pad(b, widths))];
  const all = t.rows[t.rows.length - 1];
  const preempt = t.rows.find((r) => r.kind === 'preempt');
  if (preempt?.handoverMs && preempt.handoverMs.p50 !== null) {
    lines.push(`preempt handover (notice until the stage moved): p50 ${seconds(preempt.handoverMs.p50)} s, max ${seconds(preempt.handoverMs.max)} s; its detection counts until the move`);
  }
  const methods = Object.entries(all?.methods ?? {});
  lines.push(`recovery methods: ${methods.length ? methods.map(([m, n]) => `${m} ${n}`).join(', ') : 'none'}`);
  lines.push(`steps trained: ${t.stepsAtStart} at the start, ${t.stepsAtEnd} at the end (${t.stepsAtEnd > t.stepsAtStart ? 'training progressed' : 'NO PROGRESS'})`);
  if (t.notFired > 0) lines.push(`${t.notFired} scheduled event(s) not fired: ${t.notFiredWhy}`);
  return lines;
}
