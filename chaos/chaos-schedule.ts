// When `ftrain chaos` strikes and with what: a pure function of (seed, duration, rates). Each
// kind is a Poisson process of its own rate, drawn from a generator seeded by (seed, kind), so
// the same flags give the same schedule, and changing one kind's rate moves no other kind's
// events. The runner fires the events in order, one at a time, each no earlier than scheduled.

import { OptionError } from '../domain/errors.ts';
import { Prng, hashString, mixSeed } from '../domain/prng.ts';

export const ChaosKind = {
  /** SIGKILL to the worker: its node agent restarts it beside its snapshot manager. */
  workerKill: 'worker-kill',
  /** SIGKILL to the snapshot manager: the node has lost its snapshots and ends. */
  smpKill: 'smp-kill',
  /** SIGKILL to the node agent, the worker and the snapshot manager: the machine is gone. */
  nodeKill: 'node-kill',
  /** SIGSTOP to the agent, the worker and the snapshot manager, SIGCONT later: a hung machine. */
  freeze: 'freeze',
  /** SIGTERM to the node agent: a spot preemption notice. */
  preempt: 'preempt',
  /** SIGKILL to the leading coordinator (`--ha`): a standby takes over; the launcher starts it again. */
  coordinatorKill: 'coordinator-kill',
  /** SIGSTOP to the leading coordinator, SIGCONT after --freeze-seconds (`--ha`): it wakes deposed. */
  coordinatorFreeze: 'coordinator-freeze',
  /** SIGKILL to one of the 3 etcd members (`--ha`): the others go on; the launcher starts it again. */
  etcdKill: 'etcd-kill',
} as const;
export type ChaosKind = (typeof ChaosKind)[keyof typeof ChaosKind];

/** Every kind, in the order tables list them. */
export const CHAOS_KINDS: readonly ChaosKind[] = Object.values(ChaosKind);

/** Kinds after which the node is gone for good and a replacement is started. */
export const NODE_ENDING_KINDS: ReadonlySet<ChaosKind> = new Set([ChaosKind.smpKill, ChaosKind.nodeKill, ChaosKind.freeze, ChaosKind.preempt]);

/** Kinds that hit the coordinators or their store, not a node: only with `--ha`. */
export const HA_KINDS: ReadonlySet<ChaosKind> = new Set([ChaosKind.coordinatorKill, ChaosKind.coordinatorFreeze, ChaosKind.etcdKill]);

/** Events per minute of each kind. */
export type ChaosRates = ReadonlyMap<ChaosKind, number>;

/** 4 events a minute: about 12 in the default 180 s, every kind among them. */
export const DEFAULT_RATES_SPEC = 'worker-kill=1,smp-kill=0.5,node-kill=1,freeze=0.5,preempt=1';
/** With `--ha`: the same, and a coordinator or etcd event about every 30 s. */
export const DEFAULT_HA_RATES_SPEC = `${DEFAULT_RATES_SPEC},coordinator-kill=1,coordinator-freeze=0.5,etcd-kill=0.5`;

/** The highest rate one kind may have: one event a second is already more than a run can recover from. */
export const MAX_RATE_PER_MINUTE = 60;

/** A cap on schedule length whatever the flags: every loop over it stays bounded. */
export const MAX_SCHEDULED_EVENTS = 1000;

export interface ScheduledEvent {
  /** From the start of chaos (training under way). */
  readonly atMs: number;
  readonly kind: ChaosKind;
}

/**
 * Parses `KIND=PER_MINUTE,...` (e.g. `worker-kill=2,freeze=0.5`). Kinds not named have rate 0;
 * a kind named twice, an unknown kind, a rate that is not a number from 0 to 60, or all rates 0
 * is an OptionError naming `--rates`.
 */
export function parseRates(spec: string, field = '--rates'): ChaosRates {
  const rates = new Map<ChaosKind, number>(CHAOS_KINDS.map((k) => [k, 0]));
  const seen = new Set<string>();
  const items = spec.split(',').map((s) => s.trim());
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new OptionError(field, `each item must be KIND=EVENTS_PER_MINUTE, got "${item}"`);
    const kind = item.slice(0, eq).trim();
    const text = item.slice(eq + 1).trim();
    if (!(CHAOS_KINDS as readonly string[]).includes(kind)) throw new OptionError(field, `"${kind}" is not a kind; kinds are ${CHAOS_KINDS.join(', ')}`);
    if (seen.has(kind)) throw new OptionError(field, `${kind} is given twice`);
    seen.add(kind);
    const rate = Number(text);
    if (text === '' || !Number.isFinite(rate) || rate < 0 || rate > MAX_RATE_PER_MINUTE) {
      throw new OptionError(field, `the rate of ${kind} must be events per minute from 0 to ${MAX_RATE_PER_MINUTE}, got "${text}"`);
    }
    rates.set(kind as ChaosKind, rate);
  }
  if ([...rates.values()].every((r) => r === 0)) throw new OptionError(field, 'every rate is 0: nothing would happen');
  return rates;
}

/** `KIND=RATE,...` of the kinds with a rate above 0, in table order. */
export function formatRates(rates: ChaosRates): string {
  return CHAOS_KINDS.filter((k) => (rates.get(k) ?? 0) > 0)
    .map((k) => `${k}=${rates.get(k)}`)
    .join(',');
}

/** Expected events in `durationMs` at these rates. */
export function expectedEvents(rates: ChaosRates, durationMs: number): number {
  let perMinute = 0;
  for (const r of rates.values()) perMinute += r;
  return (perMinute * durationMs) / 60_000;
}

/**
 * The events of a chaos run, sorted by time, all before `durationMs`, at most
 * MAX_SCHEDULED_EVENTS. Inter-arrival times of each kind are exponential with mean 60 s / rate.
 * Ties (rare) keep table order, so the result is a pure function of its inputs.
 */
export function chaosSchedule(seed: number, durationMs: number, rates: ChaosRates): ScheduledEvent[] {
  const events: ScheduledEvent[] = [];
  for (const kind of CHAOS_KINDS) {
    const perMinute = rates.get(kind) ?? 0;
    if (perMinute <= 0) continue;
    const meanGapMs = 60_000 / perMinute;
    const prng = new Prng(mixSeed(seed, hashString(kind)));
    let t = 0;
    for (let i = 0; i < MAX_SCHEDULED_EVENTS; i++) {
      t += -Math.log(1 - prng.next()) * meanGapMs;
      if (t >= durationMs) break;
      events.push({ atMs: Math.round(t), kind });
    }
  }
  events.sort((a, b) => a.atMs - b.atMs || CHAOS_KINDS.indexOf(a.kind) - CHAOS_KINDS.indexOf(b.kind));
  return events.slice(0, MAX_SCHEDULED_EVENTS);
}
