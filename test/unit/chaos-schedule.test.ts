// The chaos schedule: seeded and reproducible, inside the duration, at the rates asked for, and
// strict about the --rates syntax.

import { describe, expect, it } from 'vitest';
import {
  CHAOS_KINDS,
  DEFAULT_HA_RATES_SPEC,
  DEFAULT_RATES_SPEC,
  HA_KINDS,
  MAX_SCHEDULED_EVENTS,
  chaosSchedule,
  expectedEvents,
  formatRates,
  parseRates,
} from '../../chaos/chaos-schedule.ts';

const MINUTE = 60_000;

describe('parseRates', () => {
  it('reads KIND=PER_MINUTE, with unnamed kinds at 0', () => {
    const r = parseRates('worker-kill=2, freeze=0.5');
    expect(Object.fromEntries(r)).toEqual({ 'worker-kill': 2, 'smp-kill': 0, 'node-kill': 0, freeze: 0.5, preempt: 0, 'coordinator-kill': 0, 'coordinator-freeze': 0, 'etcd-kill': 0 });
    expect(formatRates(r)).toBe('worker-kill=2,freeze=0.5');
  });

  it('refuses what it cannot read, naming --rates and what is wrong', () => {
    expect(() => parseRates('worker-kill')).toThrow(/--rates: each item must be KIND=EVENTS_PER_MINUTE, got "worker-kill"/);
    expect(() => parseRates('reboot=1')).toThrow(/--rates: "reboot" is not a kind; kinds are worker-kill, smp-kill, node-kill, freeze, preempt, coordinator-kill, coordinator-freeze, etcd-kill/);
    expect(() => parseRates('freeze=1,freeze=2')).toThrow(/freeze is given twice/);
    expect(() => parseRates('freeze=-1')).toThrow(/the rate of freeze must be events per minute from 0 to 60, got "-1"/);
    expect(() => parseRates('freeze=lots')).toThrow(/got "lots"/);
    expect(() => parseRates('freeze=')).toThrow(/got ""/);
    expect(() => parseRates('freeze=0')).toThrow(/every rate is 0/);
  });

  it('has defaults that give a dozen or so events in the default 180 s, of every node kind; with --ha every kind', () => {
    const r = parseRates(DEFAULT_RATES_SPEC);
    expect(expectedEvents(r, 180_000)).toBe(12);
    for (const k of CHAOS_KINDS.filter((k) => !HA_KINDS.has(k))) expect(r.get(k), k).toBeGreaterThan(0);
    const ha = parseRates(DEFAULT_HA_RATES_SPEC);
    expect(expectedEvents(ha, 180_000)).toBe(18);
    for (const k of CHAOS_KINDS) expect(ha.get(k), k).toBeGreaterThan(0);
  });
});

describe('chaosSchedule', () => {
  const rates = parseRates(DEFAULT_RATES_SPEC);

  it('is a pure function of seed, duration and rates', () => {
    expect(chaosSchedule(3, 180_000, rates)).toEqual(chaosSchedule(3, 180_000, rates));
    expect(chaosSchedule(3, 180_000, rates)).not.toEqual(chaosSchedule(4, 180_000, rates));
  });

  it('keeps every event inside the duration, in time order', () => {
    for (let seed = 0; seed < 50; seed++) {
      const s = chaosSchedule(seed, 30_000, rates);
      for (const [i, e] of s.entries()) {
        expect(e.atMs).toBeGreaterThanOrEqual(0);
        expect(e.atMs).toBeLessThan(30_000);
        if (i > 0) expect(e.atMs).toBeGreaterThanOrEqual(s[i - 1]!.atMs);
      }
    }
  });

  it('a longer duration only adds events at the end', () => {
    const short = chaosSchedule(7, 60_000, rates);
    const long = chaosSchedule(7, 120_000, rates);
    expect(long.slice(0, short.length)).toEqual(short);
  });

  it("changing one kind's rate moves no other kind's events", () => {
    const a = chaosSchedule(5, 300_000, parseRates('worker-kill=1,freeze=1'));
    const b = chaosSchedule(5, 300_000, parseRates('worker-kill=1,freeze=3'));
    expect(a.filter((e) => e.kind === 'worker-kill')).toEqual(b.filter((e) => e.kind === 'worker-kill'));
    expect(b.filter((e) => e.kind === 'freeze').length).toBeGreaterThan(a.filter((e) => e.kind === 'freeze').length);
  });

  it('fires each kind at its rate, on average over seeds (within 10%)', () => {
    const r = new Map([...parseRates('worker-kill=2,smp-kill=0.5,node-kill=1,freeze=1,preempt=1,coordinator-kill=1,etcd-kill=0.5')].filter(([, rate]) => rate > 0));
    const seeds = 400;
    const counts = new Map<string, number>();
    for (let seed = 0; seed < seeds; seed++) for (const e of chaosSchedule(seed, 10 * MINUTE, r)) counts.set(e.kind, (counts.get(e.kind) ?? 0) + 1);
    for (const [kind, perMinute] of r) {
      const mean = (counts.get(kind) ?? 0) / seeds;
      expect(mean, kind).toBeGreaterThan(perMinute * 10 * 0.9);
      expect(mean, kind).toBeLessThan(perMinute * 10 * 1.1);
    }
  });

  it('never schedules a kind whose rate is 0, and never more than the cap', () => {
    const s = chaosSchedule(1, 60 * MINUTE, parseRates('worker-kill=60,node-kill=60'));
    expect(s).toHaveLength(MAX_SCHEDULED_EVENTS);
    expect(new Set(s.map((e) => e.kind))).toEqual(new Set(['worker-kill', 'node-kill']));
  });

  it('gives the integration test its four kinds, well apart, at seed 1204', () => {
    // test/integration/chaos.test.ts relies on this schedule.
    const s = chaosSchedule(1204, 60_000, parseRates('worker-kill=1,node-kill=1,freeze=1,preempt=1'));
    expect(s.map((e) => e.kind)).toEqual(['preempt', 'freeze', 'node-kill', 'worker-kill']);
    expect(s.map((e) => Math.round(e.atMs / 1000))).toEqual([7, 16, 26, 34]);
  });
});
