// The worker's protocol options, compiled once into a complete object: every timeout and retry
// delay is here, with its unit in its name, instead of module constants.

import { Backoff, type BackoffOptions } from '../../domain/backoff.ts';
import { OptionError } from '../../domain/errors.ts';

export interface WorkerOptions {
  /** How long a node keeps trying to reach the coordinator before giving up. */
  readonly registerTimeoutMs: number;
  /** Delays between registration attempts while the coordinator cannot be reached. */
  readonly registerBackoff: BackoffOptions;
  /** How long a worker whose report was refused because a recovery began waits for the Halt. */
  readonly haltGraceMs: number;
  /** How long a worker that reported a fault waits for the coordinator's Stop before it exits anyway. */
  readonly faultExitGraceMs: number;
  /** How long a worker waits for its snapshot manager to say where it listens. */
  readonly smpInfoTimeoutMs: number;
  /** How long a rebuild from erasure shards may take. */
  readonly rebuildTimeoutMs: number;
  /** How long a node waits for its pipeline neighbours to accept connections. */
  readonly peerConnectTimeoutMs: number;
  /** How often the adapter gives the core the time (its deadlines are checked then). */
  readonly tickMs: number;
}

export const DEFAULT_WORKER_OPTIONS: WorkerOptions = {
  registerTimeoutMs: 60_000,
  registerBackoff: { initialMs: 500, maxMs: 2000, factor: 1.5 },
  haltGraceMs: 10_000,
  faultExitGraceMs: 3000,
  smpInfoTimeoutMs: 30_000,
  rebuildTimeoutMs: 120_000,
  peerConnectTimeoutMs: 30_000,
  tickMs: 200,
};

/** Fills in the defaults and checks every duration; an OptionError names the bad field. */
export function compileWorkerOptions(raw: Partial<WorkerOptions> = {}): WorkerOptions {
  const o: WorkerOptions = { ...DEFAULT_WORKER_OPTIONS, ...raw, registerBackoff: { ...DEFAULT_WORKER_OPTIONS.registerBackoff, ...raw.registerBackoff } };
  for (const field of ['registerTimeoutMs', 'haltGraceMs', 'faultExitGraceMs', 'smpInfoTimeoutMs', 'rebuildTimeoutMs', 'peerConnectTimeoutMs', 'tickMs'] as const) {
    const v = o[field];
    if (!Number.isFinite(v) || v <= 0) throw new OptionError(field, `must be a positive number of milliseconds, got ${v}`);
  }
  try {
    new Backoff(o.registerBackoff); // its constructor owns the bounds
  } catch (err) {
    throw new OptionError('registerBackoff', (err as Error).message);
  }
  return o;
}
