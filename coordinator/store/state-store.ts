// Where the coordinator's state lives, and who may change it: a small key-value store with one
// leader at a time. Two implementations pass one contract test (test/integration/state-store
// .test.ts): in-process (one coordinator, nothing to start) and etcd (a leader and standbys).
//
// Contract:
// - Keys are paths under the job's prefix ("nodes/n1"); values are strings (JSON records).
// - `campaign` resolves once this candidate leads. Its `term` is larger than every earlier
//   leader's of the same store, and every write names the term it was decided under: a write
//   whose term no longer leads changes nothing and rejects with `FencedError`. A deposed leader
//   can therefore never change the state, however late its writes arrive.
// - Leadership ends when the leader resigns, when its lease runs out (the process died, froze,
//   or lost the store for longer than the lease), or when the store says another leads; `lost`
//   resolves then, once, with the reason.
// - `write` is atomic: every put and delete of one call, or none.
// - Watches report every change after they start, in the store's order; a watch does not report
//   the state it started from (read it first).
// - A store that cannot be reached rejects with `StoreUnavailableError`; nothing is half-written.

/** A coordinator that stands for leader: its id, the address nodes reach it at, and where its dashboard is. */
export interface Candidate {
  readonly id: string;
  readonly address: string;
  /** The URL of its dashboard page, published with the leadership so a standby's page links to it; absent: none. */
  readonly dashboardUrl?: string;
}

/** The coordinator that leads, and its term. */
export interface LeaderInfo extends Candidate {
  readonly term: number;
}

/** Why a leadership ended. */
export interface LeadershipLoss {
  readonly reason: 'resigned' | 'lease-expired' | 'deposed' | 'store-closed';
  readonly detail: string;
}

/** This coordinator leads, under `term`, until `lost` resolves. */
export interface Leadership {
  readonly term: number;
  readonly lost: Promise<LeadershipLoss>;
  /** Gives the leadership up now: a standby may take it at once. */
  resign(): Promise<void>;
}

/** One change a watch reports: `value` null is a delete. */
export interface StoreChange {
  readonly key: string;
  readonly value: string | null;
}

export interface StateStore {
  /** What the store is, for messages: "in-process", "etcd://127.0.0.1:2379". */
  readonly description: string;
  /**
   * Resolves when `candidate` leads (at once when no one does), with a lease of `leaseMs`: a
   * leader that stops renewing it (dead, frozen, cut off) loses the leadership that long after.
   * Rejects with `CampaignAbortedError` when `signal` aborts first.
   */
  campaign(candidate: Candidate, leaseMs: number, signal?: AbortSignal): Promise<Leadership>;
  /** The leader now, or null when no one leads. */
  leader(): Promise<LeaderInfo | null>;
  /** Calls `onChange` with the leader now, then whenever it changes (null: no one leads); returns the unsubscribe. */
  watchLeader(onChange: (leader: LeaderInfo | null) => void): () => void;
  /** Every key under `prefix` ('' for all) with its value. */
  read(prefix: string): Promise<Map<string, string>>;
  /** Puts and deletes, atomically, if `term` still leads; else `FencedError` and nothing changes. */
  write(term: number, puts: ReadonlyMap<string, string>, deletes?: readonly string[]): Promise<void>;
  /** Calls `onChange` for every change under `prefix` from now on; returns the unsubscribe. */
  watch(prefix: string, onChange: (change: StoreChange) => void): () => void;
  /** Ends campaigns, leaderships (without resigning: the lease runs out) and watches. */
  close(): Promise<void>;
}

/** Thrown when a write's term no longer leads: a deposed leader's write, refused whole. */
export class FencedError extends Error {
  constructor(
    readonly term: number,
    readonly leader: LeaderInfo | null,
  ) {
    super(`term ${term} no longer leads${leader ? `: coordinator ${leader.id} (${leader.address}) leads under term ${leader.term}` : ''}; nothing was written`);
    this.name = 'FencedError';
  }
}

/** Thrown when the store cannot be reached; `cause` is the client's error. */
export class StoreUnavailableError extends Error {
  constructor(
    readonly store: string,
    readonly operation: string,
    options?: { cause?: unknown },
  ) {
    super(`the coordinator's store (${store}) cannot be reached: ${operation} failed${options?.cause instanceof Error ? `: ${options.cause.message}` : ''}`, options);
    this.name = 'StoreUnavailableError';
  }
}

/** Thrown when a campaign's signal aborted before it led. */
export class CampaignAbortedError extends Error {
  constructor(readonly candidate: string) {
    super(`coordinator ${candidate} stopped standing for leader`);
    this.name = 'CampaignAbortedError';
  }
}
