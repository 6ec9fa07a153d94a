// What of the coordinator's state outlives its process: everything a new leader needs to go on
// from where the old one was, as plain JSON-able records. Leases and command streams are not in
// it (a new leader hears every node anew), nor the memory figures nodes report every few
// seconds. Of a recovery under way only its failures are: a new leader starts it again in a new
// epoch.

import type { ErasureCode } from '../../domain/erasure-protection.ts';
import type { JobOptions } from '../../domain/job-options.ts';
import type { Failure, RunPhase } from '../../domain/run-status.ts';
import type { DurableCommits } from './commit-tracker.ts';
import type { Departure } from './departures.ts';
import type { DurableFailureLog, FailureInfo } from './failure-log.ts';
import type { DurableNode } from './membership.ts';
import type { DurableIntervals } from './snapshot-interval.ts';

/** Bumped when the records change shape: a leader refuses a state it cannot read. */
export const DURABLE_STATE_VERSION = 2;

export interface DurableCoordinatorState {
  readonly version: number;
  readonly job: JobOptions;
  readonly phase: RunPhase;
  readonly epoch: number;
  readonly failure: Failure | null;
  /** The failures whose recovery was under way, if one was: a new leader recovers them again. */
  readonly recovering: readonly FailureInfo[] | null;
  readonly nodes: readonly DurableNode[];
  readonly commits: DurableCommits;
  readonly shards: { readonly code: ErasureCode | null; readonly disabledReason: string | null };
  readonly layouts: readonly (readonly { afterStep: number; slots: readonly number[] }[])[];
  readonly intervals: DurableIntervals;
  readonly failures: DurableFailureLog;
  readonly departures: readonly Departure[];
  readonly progress: { readonly toStep: number | null; readonly checks: { readonly pending: readonly (readonly [string, readonly (string | null)[]])[]; readonly agreed: readonly (readonly [number, number])[] } };
}
