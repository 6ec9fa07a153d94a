// The failures of a run: those announced before they happen (injected on purpose, or a
// preemption notice), which give a failure its kind and the time it happened, and those the run
// survived, with how long each took to recover and to catch up.

import type { InjectionKind } from '../../domain/inject-spec.ts';
import type { RecoveredFailure } from '../../domain/run-status.ts';

/** What is known of a stage's failure before the coordinator detects it. */
export interface AnnouncedFailure {
  readonly step: number;
  readonly kind: string;
  readonly atMs: number;
  /** A planned departure: from the notice until the stage could move. */
  readonly handoverMs?: number;
}

/** The failure log as the coordinator's store keeps it. */
export interface DurableFailureLog {
  readonly announced: readonly (readonly [number, AnnouncedFailure])[];
  readonly injections: readonly string[];
  readonly recovered: readonly RecoveredEntry[];
}

interface RecoveredEntry {
  readonly failure: RecoveredFailure;
  readonly failedAtMs: number;
  caughtUpMs: number | null;
  /** When training resumed after it; the first step completed after that gives firstStepMs. */
  readonly resumedAtMs: number;
  firstStepMs: number | null;
}

/** A failure being recovered: what failed, how, and when. */
export interface FailureInfo {
  readonly stage: number;
  readonly nodeId: string;
  readonly kind: string;
  readonly detail: string;
  readonly failedAtMs: number | null;
  readonly detectedAtMs: number;
  readonly handoverMs: number | null;
}

/** Samples of recovered failures kept (the report lists them all up to this). */
const MAX_RECOVERED = 100_000;

export class FailureLog {
  /** Announced failures by stage, until the coordinator learns of the failure. */
  private readonly announced = new Map<number, AnnouncedFailure>();
  /** Injections announced so far, as "step:stage:kind": each is announced once. */
  private readonly injections = new Set<string>();
  private readonly recovered: RecoveredEntry[] = [];

  durable(): DurableFailureLog {
    return { announced: [...this.announced], injections: [...this.injections], recovered: this.recovered.map((e) => ({ ...e })) };
  }

  restore(d: DurableFailureLog): void {
    this.announced.clear();
    for (const [stage, a] of d.announced) this.announced.set(stage, a);
    this.injections.clear();
    for (const i of d.injections) this.injections.add(i);
    this.recovered.splice(0, this.recovered.length, ...d.recovered.map((e) => ({ ...e })));
  }

  /** Records an injection about to happen; false if it was announced before (its step is trained again). */
  announceInjection(stage: number, step: number, kind: InjectionKind, atMs: number): boolean {
    const key = `${step}:${stage}:${kind}`;
    if (this.injections.has(key)) return false;
    this.injections.add(key);
    this.announced.set(stage, { step, kind, atMs });
    return true;
  }

  /** A failure known before its detection (a preemption about to move a stage). */
  announce(stage: number, failure: AnnouncedFailure): void {
    this.announced.set(stage, failure);
  }

  /** What was announced of a stage's failure, once: the detection takes it. */
  take(stage: number): AnnouncedFailure | null {
    const a = this.announced.get(stage) ?? null;
    this.announced.delete(stage);
    return a;
  }

  /**
   * A failure the run survived; its caught-up time follows when its step completes again, unless
   * that happened before (`caughtUpAtMs`: the others trained on while its replica was out).
   */
  recover(failure: Omit<RecoveredFailure, 'caughtUpMs'>, failedAtMs: number, resumedAtMs: number = failedAtMs + failure.recoverMs, caughtUpAtMs?: number): RecoveredFailure {
    const caughtUpMs = caughtUpAtMs === undefined ? null : caughtUpAtMs - failedAtMs;
    const entry: RecoveredEntry = { failure: { ...failure, caughtUpMs }, failedAtMs, caughtUpMs, resumedAtMs, firstStepMs: null };
    if (this.recovered.length < MAX_RECOVERED) this.recovered.push(entry);
    return entry.failure;
  }

  /** Step `step` completed at `now`: failures under way during that step have caught up. */
  stepCompleted(step: number, now: number): void {
    for (const e of this.recovered) {
      if (e.caughtUpMs === null && e.failure.step === step) e.caughtUpMs = now - e.failedAtMs;
      if (e.firstStepMs === null) e.firstStepMs = now - e.resumedAtMs;
    }
  }

  /** The failures survived so far, with their caught-up times (a copy). */
  list(): RecoveredFailure[] {
    return this.recovered.map((e) => ({
      ...e.failure,
      caughtUpMs: e.caughtUpMs,
      ...(e.failure.phases ? { phases: { ...e.failure.phases, firstStepMs: e.firstStepMs } } : {}),
    }));
  }
}
