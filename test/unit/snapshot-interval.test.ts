// `--snapshot-every auto`: the interval rule (CheckFreq's 2%), the schedule every stage derives
// from the coordinator's announcements, and the protocol as a whole: stages that learn each
// change at different moments still snapshot exactly the same steps. The coordinator's side is
// also scripted in test/scenario/coordinator/snapshot-interval.txt.

import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import type { Action } from '../../coordinator/core/core-events.ts';
import { MAX_AUTO_INTERVAL, SNAPSHOT_OVERHEAD_TARGET, STALL_NOISE_FLOOR_MS, SnapshotIntervals, median, nextInterval, protectInterval, snapshotInterval } from '../../coordinator/core/snapshot-interval.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { SnapshotSchedule, isSnapshotStep, nextSnapshotStep, type SnapshotInterval } from '../../domain/snapshot-schedule.ts';

describe('the interval rule', () => {
  it('snapshots every step while a snapshot costs at most 2% of a step, else every ceil(cost / 2% of a step)', () => {
    expect(snapshotInterval(1, 100)).toBe(1);
    expect(snapshotInterval(2, 100)).toBe(1);
    expect(snapshotInterval(2.01, 100)).toBe(2);
    expect(snapshotInterval(10, 100)).toBe(5);
    // The wide model before the staging buffers: 337 ms against 11.4 s steps.
    expect(snapshotInterval(337, 11_400)).toBe(2);
    expect(snapshotInterval(1e9, 1)).toBe(MAX_AUTO_INTERVAL);
  });

  it('never stretches the interval for a stall under the noise floor, nor without a measurement', () => {
    expect(snapshotInterval(STALL_NOISE_FLOOR_MS - 0.01, 1)).toBe(1);
    expect(snapshotInterval(0.7, 5)).toBe(1);
    expect(snapshotInterval(Number.NaN, 100)).toBe(1);
    expect(snapshotInterval(10, 0)).toBe(1);
    expect(snapshotInterval(STALL_NOISE_FLOOR_MS, 1)).toBeGreaterThan(1);
  });

  it('keeps snapshots within 2% of training with the shortest such interval (below the cap)', () => {
    fc.assert(
      fc.property(fc.double({ min: STALL_NOISE_FLOOR_MS, max: 1e5, noNaN: true }), fc.double({ min: 10, max: 1e6, noNaN: true }), (costMs, stepMs) => {
        const n = snapshotInterval(costMs, stepMs);
        const share = (k: number) => costMs / (k * stepMs);
        expect(share(n)).toBeLessThanOrEqual(SNAPSHOT_OVERHEAD_TARGET * (1 + 1e-12));
        // (Within float rounding: cost / budget can land a hair above a whole number.)
        if (n > 1) expect(share(n - 1)).toBeGreaterThan(SNAPSHOT_OVERHEAD_TARGET * (1 - 1e-12));
      }),
    );
  });

  it('gives each snapshot time to be protected before the next: ceil(protect / step), with the same headroom to shrink', () => {
    expect(protectInterval(null, 100)).toBe(1);
    expect(protectInterval(90, 100)).toBe(1);
    expect(protectInterval(4400, 5500)).toBe(1);
    expect(protectInterval(6000, 5500)).toBe(2);
    expect(protectInterval(12_000, 5500)).toBe(3);
    // The stall alone would keep every step; protection asks for 2.
    expect(nextInterval(1, 0.5, 5500, 6000)).toBe(2);
    // Whichever asks for more wins.
    expect(nextInterval(1, 10, 100, 250)).toBe(5);
    expect(nextInterval(1, 3, 100, 450)).toBe(5);
    // Shrinking waits for 20% headroom on protection too: 4.5 s in 5.5 s steps is not enough.
    expect(nextInterval(2, 0.5, 5500, 4500)).toBe(2);
    expect(nextInterval(2, 0.5, 5500, 4000)).toBe(1);
  });

  it('counts one protection time per protected version', () => {
    const job = compileJobOptions({ nodes: 2, snapshotEvery: 'auto' });
    const intervals = new SnapshotIntervals(job);
    const out: Action[] = [];
    for (let step = 0; step < 4; step++) {
      for (const stage of [0, 1]) {
        intervals.observe(stage, 1000, 1);
        // The same version reported with every step: its 3 s count once.
        intervals.observeProtection(stage, 0, 3000);
        intervals.afterReport(stage, step + 1, false, step, out);
      }
    }
    const changes = out.filter((a) => a.type === 'snapshot-interval');
    expect(changes).toEqual([expect.objectContaining({ every: 3, reason: expect.stringMatching(/^protecting a snapshot takes 3\.00 s/) })]);
  });

  it('grows the interval at once, and shrinks it only with 20% headroom so it does not flap at the boundary', () => {
    expect(nextInterval(1, 2.1, 100)).toBe(2);
    expect(nextInterval(2, 1.9, 100)).toBe(2); // 1.9% fits every step, but not with headroom
    expect(nextInterval(2, 1.5, 100)).toBe(1);
    expect(nextInterval(5, 5, 100)).toBe(4); // 3 would do (5% / 3 < 2%), 4 keeps the headroom
    expect(nextInterval(3, 0.5, 100)).toBe(1); // under the noise floor: every step
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: STALL_NOISE_FLOOR_MS, max: 1e4, noNaN: true }), fc.double({ min: 10, max: 1e6, noNaN: true }), (current, costMs, stepMs) => {
        const n = nextInterval(current, costMs, stepMs);
        const wanted = snapshotInterval(costMs, stepMs);
        // Always within the target, never longer than needed unless already that long.
        expect(costMs / (n * stepMs)).toBeLessThanOrEqual(SNAPSHOT_OVERHEAD_TARGET * (1 + 1e-12));
        expect(n).toBeGreaterThanOrEqual(wanted);
        expect(n).toBeLessThanOrEqual(Math.max(current, wanted));
      }),
    );
  });

  it('takes medians of even and odd windows', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
  });
});

/** The steps in [from, to] a schedule snapshots, worked out segment by segment (the naive version). */
function naiveSteps(intervals: readonly SnapshotInterval[], from: number, to: number): number[] {
  const steps: number[] = [];
  intervals.forEach((i, k) => {
    const end = Math.min(to, (intervals[k + 1]?.fromStep ?? to + 1) - 1);
    for (let s = i.fromStep; s <= end; s += i.every) if (s >= from) steps.push(s);
  });
  return steps;
}

/** Random announcement histories as the coordinator makes them: each change from a later step than the last. */
const history = fc
  .record({
    start: fc.integer({ min: 0, max: 20 }),
    changes: fc.array(fc.record({ gap: fc.integer({ min: 1, max: 12 }), every: fc.integer({ min: 1, max: 9 }) }), { maxLength: 8 }),
  })
  .map(({ start, changes }) => {
    const intervals: SnapshotInterval[] = [{ fromStep: start, every: 1 }];
    for (const c of changes) intervals.push({ fromStep: intervals.at(-1)!.fromStep + c.gap, every: c.every });
    return { start, intervals };
  });

describe('the snapshot schedule', () => {
  it('is the multiples of N for a fixed --snapshot-every N, whatever step training starts from', () => {
    for (const every of [1, 2, 3, 7]) {
      const s = new SnapshotSchedule(every, 5);
      for (let step = 6; step < 40; step++) expect(s.isDue(step)).toBe(step % every === 0);
    }
    const off = new SnapshotSchedule(0, 0);
    expect([1, 2, 3].some((step) => off.isDue(step))).toBe(false);
  });

  it('agrees with the naive segment-by-segment expansion, and finds the next snapshot step', () => {
    fc.assert(
      fc.property(history, ({ start, intervals }) => {
        const to = intervals.at(-1)!.fromStep + 30;
        const wanted = naiveSteps(intervals, start + 1, to);
        const got = [];
        for (let s = start + 1; s <= to; s++) if (isSnapshotStep(s, intervals)) got.push(s);
        expect(got).toEqual(wanted);
        for (let s = start + 1; s <= to - 10; s++) expect(nextSnapshotStep(s, intervals)).toBe(wanted.find((w) => w >= s));
      }),
    );
  });

  it('gives two stages that learn each change at different steps before it begins the same snapshot steps', () => {
    // Each change k is learned by each stage at some step in [announced, fromStep - 1] (the reply
    // to its report of that step), in order, with the newest change repeated in every reply.
    const learning = history.chain(({ start, intervals }) => {
      const learnAt = (k: number) => fc.integer({ min: Math.max(start, (intervals[k - 1]?.fromStep ?? start) - 1), max: intervals[k]!.fromStep - 1 });
      const stage = fc.tuple(...intervals.map((_, k) => (k === 0 ? fc.constant(start) : learnAt(k))));
      return fc.record({ start: fc.constant(start), intervals: fc.constant(intervals), a: stage, b: stage });
    });
    fc.assert(
      fc.property(learning, ({ start, intervals, a, b }) => {
        const to = intervals.at(-1)!.fromStep + 25;
        const run = (learnAt: number[]) => {
          const s = new SnapshotSchedule('auto', start);
          const due: number[] = [];
          let known = 0;
          for (let step = start; step < to; step++) {
            // The reply to the report of `step`: every change learned by then, then the newest again.
            for (let k = 1; k < intervals.length; k++) {
              if (k > known && Math.max(...learnAt.slice(1, k + 1)) <= step) {
                expect(s.learn(intervals[k]!)).toBeNull();
                known = k;
              }
            }
            expect(s.learn(intervals[known]!)).toBeNull();
            if (s.isDue(step + 1)) due.push(step + 1);
          }
          return due;
        };
        const dueA = run(a);
        expect(run(b)).toEqual(dueA);
        expect(dueA).toEqual(naiveSteps(intervals, start + 1, to));
      }),
    );
  });

  it('refuses a change from a step it has already decided, and an older one', () => {
    const s = new SnapshotSchedule('auto', 0);
    for (let step = 1; step <= 5; step++) s.isDue(step);
    expect(s.learn({ fromStep: 5, every: 3 })).toMatch(/came too late: this stage already decided the snapshot of step 5/);
    expect(s.learn({ fromStep: 6, every: 3 })).toBeNull();
    expect(s.learn({ fromStep: 6, every: 3 })).toBeNull();
    expect(s.learn({ fromStep: 4, every: 2 })).toMatch(/older than the interval in force/);
    expect(s.learn({ fromStep: 9, every: 0 })).toMatch(/not one/);
  });
});

/**
 * The whole protocol, with the real coordinator core: stages finish steps in any order a
 * pipeline allows (a stage finishes step t only once every stage has started it, i.e. had the
 * reply to its report of t - 1), replies arrive late, the stall changes at random so the interval
 * keeps changing; every stage must decide exactly the same snapshot steps.
 */
describe('auto interval across stages', () => {
  it('makes every stage snapshot the same steps, however the reports and replies interleave', () => {
    const stageCount = fc.integer({ min: 2, max: 5 });
    const plan = stageCount.chain((stages) =>
      fc.record({
        stages: fc.constant(stages),
        // Which stage moves next, and whether it delivers its reply or reports its next step.
        moves: fc.array(fc.tuple(fc.nat({ max: stages - 1 }), fc.boolean()), { minLength: 400, maxLength: 700 }),
        stalls: fc.array(fc.constantFrom(0.4, 1.5, 5, 12, 40), { minLength: 30, maxLength: 30 }),
      }),
    );
    let changes = 0;
    fc.assert(
      fc.property(plan, ({ stages, moves, stalls }) => {
        const job = compileJobOptions({ nodes: stages, steps: 10_000, leaseMs: 1000, heartbeatMs: 100 });
        const core = new CoordinatorCore(job);
        for (let s = 0; s < stages; s++) {
          core.handle({ type: 'register', nodeId: `n${s}`, address: `a:${s}`, pid: s + 1, hostname: 'h' }, 0);
          core.handle({ type: 'commands-opened', nodeId: `n${s}` }, 0);
        }
        for (let s = 0; s < stages; s++) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
        const schedules = Array.from({ length: stages }, () => new SnapshotSchedule(job.snapshotEvery, 0));
        const due: number[][] = Array.from({ length: stages }, () => []);
        /** Steps each stage has started (received the reply for the step before): its next step to report. */
        const started = Array.from({ length: stages }, () => 0);
        const pending: (SnapshotInterval | null | undefined)[] = Array.from({ length: stages }, () => undefined);
        let now = 0;
        for (const [stage, deliver] of moves) {
          now += 10;
          const step = started[stage]!;
          if (pending[stage] !== undefined) {
            if (!deliver) continue;
            // The reply to its report of `step` arrives: learn, decide the snapshot of step + 1, start it.
            const interval = pending[stage]!;
            if (interval) expect(schedules[stage]!.learn(interval)).toBeNull();
            if (schedules[stage]!.isDue(step + 1)) due[stage]!.push(step + 1);
            pending[stage] = undefined;
            started[stage] = step + 1;
            continue;
          }
          if (deliver) continue;
          // Finishing `step` needs every stage to have started it.
          if (started.some((st) => st < step)) continue;
          const snapshotStep = due[stage]!.filter((d) => d <= step).at(-1) ?? -1;
          const { reply, actions } = core.handle(
            {
              type: 'step',
              report: { nodeId: `n${stage}`, stage, step, loss: 1, gradNorm: 1, computeMs: 90, waitMs: 10, stepMs: 100, tokens: 1, epoch: 0, snapshotStep, snapshotStallMs: stalls[step % stalls.length]! },
            },
            now,
          );
          expect(reply.ok).toBe(true);
          changes += actions.filter((a: Action) => a.type === 'snapshot-interval').length;
          pending[stage] = reply.ok ? reply.snapshotInterval : null;
        }
        const shortest = Math.min(...started);
        const agreed = due.map((d) => d.filter((s) => s <= shortest));
        for (const d of agreed) expect(d).toEqual(agreed[0]);
      }),
      { numRuns: 60 },
    );
    // The runs above did change the interval (or the check would prove little).
    expect(changes).toBeGreaterThan(20);
  });

  it('holds the interval still while a departure waits for its snapshot step, and starts each segment at every step', () => {
    const job = compileJobOptions({ nodes: 2, steps: 100 });
    const run = (hold: boolean) => {
      const part = new SnapshotIntervals(job);
      const out: Action[] = [];
      for (let step = 0; step < 6; step++) {
        for (const stage of [0, 1]) {
          part.observe(stage, 100, step < 3 ? 0.5 : 10);
          part.afterReport(stage, step + 1, hold && step >= 3, step, out);
        }
      }
      return { part, out };
    };
    const free = run(false);
    expect(free.out).toEqual([expect.objectContaining({ type: 'snapshot-interval', every: 5, fromStep: 7 })]);
    expect(free.part.status()).toEqual({ mode: 'auto', every: 5, fromStep: 7 });
    expect(free.part.announced).toEqual({ fromStep: 7, every: 5 });
    expect(free.part.nextSnapshotStep(8)).toBe(12);
    const held = run(true);
    expect(held.out).toEqual([]);
    expect(held.part.status()).toMatchObject({ every: 1 });
    // A new segment (after a recovery) snapshots every step again, and says so.
    const out: Action[] = [];
    free.part.start(9, 50, out);
    expect(out).toEqual([expect.objectContaining({ type: 'snapshot-interval', every: 1, fromStep: 9, costMs: null })]);
    expect(free.part.announced).toEqual({ fromStep: 9, every: 1 });
    // A fixed interval is never announced: every stage knows it from the job.
    const fixed = new SnapshotIntervals(compileJobOptions({ nodes: 2, snapshotEvery: '4' }));
    expect(fixed.announced).toBeNull();
    expect(fixed.status()).toEqual({ mode: 'fixed', every: 4, fromStep: 0 });
  });

  it('holds the interval still while the leader cannot reach its store, and withdraws a change the store does not hold', () => {
    const job = compileJobOptions({ nodes: 2, steps: 100, leaseMs: 1000, heartbeatMs: 100 });
    const core = new CoordinatorCore(job);
    for (const s of [0, 1]) {
      core.handle({ type: 'register', nodeId: `n${s}`, address: `a:${s}`, pid: s + 1, hostname: 'h' }, 0);
      core.handle({ type: 'commands-opened', nodeId: `n${s}` }, 0);
    }
    for (const s of [0, 1]) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
    /** Both stages report `step` (a snapshot of it, stalling `stallMs`); the interval announced after, and the changes. */
    const step = (n: number, stallMs: number) => {
      const changes: Action[] = [];
      let announced: SnapshotInterval | null = null;
      for (const stage of [0, 1]) {
        const { reply, actions } = core.handle({ type: 'step', report: { nodeId: `n${stage}`, stage, step: n, loss: 1, gradNorm: 1, computeMs: 90, waitMs: 10, stepMs: 100, tokens: 1, epoch: 0, snapshotStep: n, snapshotStallMs: stallMs } }, n * 100);
        expect(reply.ok).toBe(true);
        if (reply.ok) announced = reply.snapshotInterval;
        changes.push(...actions.filter((a) => a.type === 'snapshot-interval'));
      }
      return { announced, changes };
    };
    for (let n = 0; n < 3; n++) expect(step(n, 0.5).changes).toEqual([]);
    // Slow snapshots until the interval would grow: the state written just before that step is what the store holds.
    let n = 3;
    let written = core.durable();
    let decided = step(n, 10);
    while (decided.changes.length === 0 && n < 10) {
      written = core.durable();
      decided = step(++n, 10);
    }
    expect(decided.changes).toEqual([expect.objectContaining({ every: 5, fromStep: n + 2 })]);
    // Its replies wait for the write, which finds the store unreachable: the change is withdrawn.
    core.storeReachable(false, written);
    expect(core.announcedInterval).toEqual({ fromStep: 0, every: 1 });
    // However long it lasts, nothing changes: a new leader would restore what the store holds.
    const down = n;
    for (n = down + 1; n < down + 8; n++) expect(step(n, 10)).toEqual({ announced: { fromStep: 0, every: 1 }, changes: [] });
    expect(core.durable().intervals.intervals).toEqual(written.intervals.intervals);
    // The store answers again: the change is decided anew, from a step no stage has decided yet.
    core.storeReachable(true, null);
    expect(step(n, 10).changes).toEqual([expect.objectContaining({ every: 5, fromStep: n + 2 })]);
  });
});
