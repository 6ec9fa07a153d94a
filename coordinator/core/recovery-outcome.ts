// How a completed recovery is told: for each failure, the method that brought its stage back, where
// the time went (the workers' traces) and the record the run report keeps. Pure: the recovery
// (recovery.ts) hands in what it knows, the failure log keeps the record.

import type { RestoreTrace } from '../../domain/node-reports.ts';
import type { RecoveredFailure, RecoveryMethod, RecoveryPhases } from '../../domain/run-status.ts';
import type { FailureInfo } from './failure-log.ts';
import type { RecoveryDecision } from './recovery-policy.ts';
import type { AwayReplica } from './recovery-state.ts';

/** How the plan brought back the slot of a failure. */
export function recoveryMethod(plan: RecoveryDecision['plan'] | undefined, stage: number): RecoveryMethod {
  if (plan?.tier === 'disk-checkpoint') return 'disk-checkpoint';
  if (plan?.tier === 'checkfree' || plan?.tier === 'checkfree-plus') return plan.tier;
  if (plan?.tier === 'erasure-rebuild' && plan.rebuilt.includes(stage)) return 'erasure-rebuild';
  if ((plan?.tier === 'erasure-rebuild' || plan?.tier === 'replica-copy') && plan.copied.has(stage)) return 'replica-copy';
  return 'local-snapshot';
}

/** The phases of one failure of a recovery now complete, from the workers' traces; null without them. */
export function recoveryPhases(traces: ReadonlyMap<number, RestoreTrace>, assignedAtMs: number | null, f: FailureInfo, now: number): RecoveryPhases | null {
  const own = traces.get(f.stage);
  if (assignedAtMs === null || !own) return null;
  const failedAt = f.failedAtMs ?? f.detectedAtMs;
  const others = [...traces].filter(([stage]) => stage !== f.stage).map(([, t]) => t.restoreMs);
  return {
    detectMs: f.detectedAtMs - failedAt,
    replaceMs: assignedAtMs - f.detectedAtMs,
    readyMs: now - assignedAtMs,
    buildMs: own.buildMs,
    fetchMs: own.rebuildFetchMs,
    decodeMs: own.rebuildDecodeMs,
    commitMs: Math.max(0, own.rebuildMs - own.rebuildFetchMs - own.rebuildDecodeMs),
    restoreMs: own.restoreMs,
    prepareMs: own.prepareMs,
    connectMs: own.connectMs,
    rollbackMs: others.length > 0 ? Math.max(...others) : 0,
    firstStepMs: null,
  };
}

/** What the recovery knew when training resumed from `fromStep` at `now`. */
export interface RecoveryEnd {
  readonly decision: RecoveryDecision | null;
  /** The step under way when the (first) failure happened. */
  readonly completedAtFailure: number;
  readonly traces: ReadonlyMap<number, RestoreTrace>;
  readonly assignedAtMs: number | null;
  readonly away: AwayReplica | null;
  readonly fromStep: number;
  readonly now: number;
  /** The run ended while a replica was out, before it joined (`fromStep`: the steps done). */
  readonly endedOut?: boolean;
}

/**
 * The record of one failure, and when training resumed after it. A slot of a replica the others
 * trained on without (replica-away.ts) resumed when they did; its record says how long until its
 * replica joined, at which step, and how many steps were trained meanwhile.
 */
export function recoveredRecord(end: RecoveryEnd, f: FailureInfo): { record: Omit<RecoveredFailure, 'caughtUpMs'>; failedAtMs: number; resumedAtMs: number } {
  const { away, fromStep, now } = end;
  const fallback = end.decision?.fallback ?? null;
  const trainedOn = away?.resumed && away.slots.includes(f.stage) ? away.resumed : null;
  const phases = trainedOn ? null : recoveryPhases(end.traces, end.assignedAtMs, f, now);
  const resumedAtMs = trainedOn?.atMs ?? now;
  const failedAtMs = f.failedAtMs ?? f.detectedAtMs;
  const record: Omit<RecoveredFailure, 'caughtUpMs'> = {
    step: end.completedAtFailure,
    stage: f.stage,
    nodeId: f.nodeId,
    kind: f.kind,
    method: trainedOn && end.endedOut ? 'replica-out' : recoveryMethod(end.decision?.plan, f.stage),
    detail: fallback ? `${f.detail}; ${fallback}` : f.detail,
    detectMs: f.failedAtMs === null ? null : f.detectedAtMs - f.failedAtMs,
    detectedAtMs: f.detectedAtMs,
    recoverMs: Math.max(0, resumedAtMs - failedAtMs),
    handoverMs: f.handoverMs,
    lostSteps: Math.max(0, end.completedAtFailure - (trainedOn?.step ?? fromStep)),
    restoredStep: trainedOn?.step ?? fromStep,
    ...(phases ? { phases } : {}),
    ...(trainedOn && away
      ? {
          trainedOn: end.endedOut
            ? { replica: away.replica, host: away.host, steps: fromStep - trainedOn.step, rejoinMs: null, joinPauseMs: null, joinedAtStep: null }
            : { replica: away.replica, host: away.host, steps: fromStep - trainedOn.step, rejoinMs: now - failedAtMs, joinPauseMs: now - (away.restoringSinceMs ?? now), joinedAtStep: fromStep },
        }
      : {}),
  };
  return { record, failedAtMs, resumedAtMs };
}
