// Why a request was refused, as a typed reason that travels with the refusal (proto
// RefusalReason, in the `ftrain-refusal-bin` trailer): callers switch on the reason, never on the
// text. One error class per condition, for the callers that throw them.

export const RefusalReason = {
  /** A field is missing, malformed or out of range. */
  invalid: 'invalid',
  /** The coordinator does not know this node (never registered, or declared lost): stop, do not rejoin. */
  fenced: 'fenced',
  /** The node id, command stream or announcement already exists. */
  duplicate: 'duplicate',
  /** The run has ended. */
  runEnded: 'run-ended',
  /** The coordinator told this node to stop; the Stop is on its way. */
  stopping: 'stopping',
  /** No training is under way (a recovery began): a Halt follows. */
  notTraining: 'not-training',
  /** The request belongs to another epoch than the run's: a Halt or an Assign follows. */
  staleEpoch: 'stale-epoch',
  /** The node does not hold the stage it names. */
  wrongStage: 'wrong-stage',
  /** The step does not follow the stage's last step. */
  wrongStep: 'wrong-step',
  /** The node is in a state that does not take this request. */
  wrongState: 'wrong-state',
  /** This coordinator does not lead: `leaderAddress` does (or no one yet, when it is ''). */
  notLeader: 'not-leader',
  /** The caller is not a member of the job (join token, certificate name, or a peer the plan does not name): it changed nothing. */
  notMember: 'not-member',
  /** The refusal carried no reason this build knows (an older or newer peer). */
  unknown: 'unknown',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

export interface Refusal {
  readonly reason: RefusalReason;
  /** A sentence for logs and users. */
  readonly message: string;
  /** stale-epoch: the run's epoch and the one the request carried. */
  readonly runEpoch?: number;
  readonly givenEpoch?: number;
  /** not-leader: the leader's address ('' when no one leads) and term. */
  readonly leaderAddress?: string;
  readonly leaderTerm?: number;
}

/** Thrown by a caller whose request was refused; `reason` says why, `message` for people. */
export class RefusedError extends Error {
  override readonly name: string = 'RefusedError';
  readonly reason: RefusalReason;
  constructor(
    readonly refusal: Refusal,
    readonly rpc: string,
    options?: { cause?: unknown },
  ) {
    super(refusal.message, options);
    this.reason = refusal.reason;
  }
}

/** Thrown when a request was refused because it belongs to another epoch than the run's. */
export class StaleEpochError extends RefusedError {
  override readonly name = 'StaleEpochError';
  readonly runEpoch: number;
  readonly givenEpoch: number;
  constructor(refusal: Refusal, rpc: string, options?: { cause?: unknown }) {
    super(refusal, rpc, options);
    this.runEpoch = refusal.runEpoch ?? -1;
    this.givenEpoch = refusal.givenEpoch ?? -1;
  }
}

/** Thrown when the coordinator no longer knows this node: it must stop and not rejoin with its state. */
export class FencedError extends RefusedError {
  override readonly name = 'FencedError';
}

/** Thrown when a node tries to join or report to a run that has ended: there is nothing to do. */
export class RunEndedError extends RefusedError {
  override readonly name = 'RunEndedError';
}

/** The error class for a refusal. */
export function refusedError(refusal: Refusal, rpc: string, cause?: unknown): RefusedError {
  const options = cause === undefined ? undefined : { cause };
  switch (refusal.reason) {
    case RefusalReason.staleEpoch:
      return new StaleEpochError(refusal, rpc, options);
    case RefusalReason.fenced:
      return new FencedError(refusal, rpc, options);
    case RefusalReason.runEnded:
      return new RunEndedError(refusal, rpc, options);
    default:
      return new RefusedError(refusal, rpc, options);
  }
}
