// The failure model of the churn experiment, after CheckFree's: every stage fails independently
// in every step, with a per-step probability derived from an hourly failure rate and the step
// time. A stage's node that fails at hourly rate r (the chance it is lost within an hour) fails
// within one step of t seconds with
//
//     p = 1 - (1 - r) ^ (t / H)
//
// where H is the length of an hour in seconds. H = 3600 is real time; an experiment that cannot
// run for hours compresses the clock (H = 60: a minute of training stands for an hour of
// exposure), which keeps the number of failures per step of the real rate per hour of training
// while the run lasts minutes.

import { OptionError } from '../domain/errors.ts';
import type { Injection } from '../domain/inject-spec.ts';
import { Prng } from '../domain/prng.ts';

export function perStepFailureProbability(hourlyRate: number, stepSeconds: number, hourSeconds: number): number {
  if (!(hourlyRate >= 0 && hourlyRate < 1)) throw new OptionError('--rates', `an hourly failure rate must be in [0, 1), got ${hourlyRate}`);
  if (!(stepSeconds > 0) || !(hourSeconds > 0)) throw new RangeError(`step and hour lengths must be positive, got ${stepSeconds} and ${hourSeconds}`);
  return 1 - Math.pow(1 - hourlyRate, stepSeconds / hourSeconds);
}

export interface ScheduleOptions {
  readonly stages: number;
  readonly steps: number;
  /** Per stage and step. */
  readonly probability: number;
  readonly seed: number;
  /** No failure before this step (the first steps warm up; node-kill needs step >= 1). */
  readonly firstStep?: number;
  /** Leave the last steps free, so that the run can finish recovering. */
  readonly quietSteps?: number;
}

/**
 * Which stage's node dies in which step, drawn once per (seed, rate) so that every strategy
 * faces the same failures. A stage fails at most once per step.
 */
export function failureSchedule(o: ScheduleOptions): Injection[] {
  const rng = new Prng(o.seed);
  const out: Injection[] = [];
  const first = Math.max(1, o.firstStep ?? 2);
  const end = o.steps - (o.quietSteps ?? 3);
  for (let step = first; step < end; step++) {
    for (let stage = 0; stage < o.stages; stage++) {
      if (rng.next() < o.probability) out.push({ step, stage, replica: 0, kind: 'node-kill' });
    }
  }
  return out;
}

/** The `--inject` text of a schedule. */
export function injectSpec(schedule: readonly Injection[]): string {
  return schedule.map((i) => `${i.step}:${i.stage}${i.replica > 0 ? `@${i.replica}` : ''}:${i.kind}`).join(',');
}
