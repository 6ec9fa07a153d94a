// The one port through which failures are caused on purpose in a worker (`--inject`, tests).
// The worker calls it at fixed points and knows nothing of what it does; the command line wires
// an injector in (chaos/worker-injector.ts) or, by default, nothing.

import type { InjectionKind } from '../domain/inject-spec.ts';
import type { JobOptions } from '../domain/job-options.ts';

/** Where in a step or snapshot a hook is called, with what an injector needs there. */
export interface FaultPoint {
  /** The stage within its replica, and the replica (`--inject STEP:STAGE@REPLICA:KIND`). */
  readonly stage: number;
  readonly replica: number;
  readonly step: number;
  readonly job: JobOptions;
  /**
   * Tells the coordinator a failure of this kind is about to be caused here (the report then
   * names it and times its detection); false when it was announced before, and must not happen
   * again (its step is trained again after a rollback).
   */
  announce(kind: InjectionKind): Promise<boolean>;
  /** Flips the sign of one weight of the stage in memory (silent data corruption); absent where there is no stage. */
  corruptWeights?: () => void;
}

export interface WorkerFaults {
  /** After the first micro-batch's forward of a step (the last stage: before its fused forward and backward). */
  midStep(at: FaultPoint): Promise<void>;
  /** After a step's update, before its report. */
  afterStep(at: FaultPoint): Promise<void>;
  /** Before a snapshot of the state after `step` steps is handed to the writer thread. */
  beforeSnapshot(at: FaultPoint): Promise<void>;
  /**
   * A module the snapshot writer thread of this job loads, and the data it is given: the thread
   * calls its `beforeCommit(header, data)` after a snapshot's bytes are written and before its
   * commit record (see worker/snapshot-writer-thread.ts). Null: none.
   */
  writerThreadHooks(job: JobOptions): WriterThreadHooks | null;
}

export interface WriterThreadHooks {
  /** A TypeScript module, `new URL('./x.ts', import.meta.url)`: run compiled, the thread loads its .js. */
  readonly module: URL;
  readonly data: unknown;
}

/** No failures: the production default. */
export const NO_FAULTS: WorkerFaults = {
  midStep: () => Promise.resolve(),
  afterStep: () => Promise.resolve(),
  beforeSnapshot: () => Promise.resolve(),
  writerThreadHooks: () => null,
};
