// The leader's write-ahead of its decisions: after each event the core's durable state goes to
// the store, and the reply and the commands the event produced go out only once the store holds
// the state they follow from. Writes are grouped: the events that arrive while one write is on its
// way go in the next, as the records that changed (state-records.ts). A write refused because
// another coordinator leads (`FencedError`) ends this leader: its held commands never go out, its
// held replies become NOT_LEADER. A store that cannot be reached holds the commands back (no new
// decision goes out) but lets the replies go (training goes on: nodes need no command while
// nothing fails; a new leader catches a slot up from the first report it gets), and is tried
// again until it answers.

import { recordChanges, stateRecords } from './state-records.ts';
import type { DurableCoordinatorState } from './core/durable-state.ts';
import { FencedError, StoreUnavailableError, type StateStore } from './store/state-store.ts';

/** How long a leader waits before trying an unreachable store again. */
export const STORE_RETRY_MS = 250;

export interface StateWriterOptions {
  readonly store: StateStore;
  /** The term this leader was elected under: every write is fenced by it. */
  readonly term: number;
  /** The core's durable state now. */
  readonly state: () => DurableCoordinatorState;
  /** Another coordinator leads: this one must stop deciding. Called once. */
  readonly onFenced: (err: FencedError) => void;
  /** The store could not be reached (`err`), or answers again (null). Called on each change. */
  readonly onReachable?: (err: StoreUnavailableError | null) => void;
}

/** An event's follow-up: `act` (its commands), `answer` (its reply), `refuse` (a fenced leader's reply). */
interface Waiter {
  readonly act: () => void;
  answer?: (() => void) | undefined;
  readonly refuse?: (() => void) | undefined;
  /** The answer waits for the store even while it cannot be reached (see afterEvent). */
  readonly answerWaits: boolean;
}

export class StateWriter {
  /** The records as the store holds them, after the last write that succeeded. */
  private written = new Map<string, string>();
  /** The state those records were made from (null until known). */
  private writtenState: DurableCoordinatorState | null = null;
  /** What waits for the state after its event to be in the store, in event order (see afterEvent). */
  private waiting: Waiter[] = [];
  /** `drain()` calls waiting: they end when this leader is fenced too. */
  private readonly drainers = new Set<() => void>();
  private writing = false;
  private scheduled = false;
  private fenced = false;
  private unreachable: StoreUnavailableError | null = null;
  /** Writes that succeeded, and records written (for tests and the bench). */
  writes = 0;
  recordsWritten = 0;

  constructor(private readonly options: StateWriterOptions) {}

  /** Starts from what the store holds, `state` read from it (a new leader's first write writes only what differs). */
  startFrom(records: ReadonlyMap<string, string>, state: DurableCoordinatorState | null): void {
    this.written = new Map(records);
    this.writtenState = state;
  }

  /** The state the store holds as this leader last wrote (or read) it; null until known. */
  get held(): DurableCoordinatorState | null {
    return this.writtenState;
  }

  /** Whether this leader was fenced: nothing it decides goes out any more. */
  get deposed(): boolean {
    return this.fenced;
  }

  /** The store could not be reached at the last try, and has not answered since. */
  get storeUnreachable(): StoreUnavailableError | null {
    return this.unreachable;
  }

  /**
   * After an event: `act` (its commands) runs once the state after it is in the store; `answer`
   * (its reply) then too, or as soon as the store is found unreachable, whichever is first,
   * unless `answerWaits` (a refusal: it may rest on a decision the store does not hold yet, such
   * as a recovery begun while it cannot be reached, and another leader may hold the run);
   * `refuse` instead of `answer` if this leader is fenced first (at once when it already was).
   */
  afterEvent(act: () => void, answer?: () => void, refuse?: () => void, answerWaits = false): void {
    if (this.fenced) {
      refuse?.();
      return;
    }
    if (this.unreachable && answer && !answerWaits) {
      answer();
      answer = undefined;
    }
    this.waiting.push({ act, answer, refuse, answerWaits });
    this.schedule(0);
  }

  /** Resolves once the state as it is now is in the store (at once if this leader was fenced). */
  async drain(): Promise<void> {
    if (this.fenced) return;
    await new Promise<void>((resolve) => {
      this.drainers.add(resolve);
      this.afterEvent(() => {
        this.drainers.delete(resolve);
        resolve();
      });
    });
  }

  private schedule(delayMs: number): void {
    if (this.scheduled || this.writing || this.fenced) return;
    this.scheduled = true;
    const run = () => {
      this.scheduled = false;
      void this.write();
    };
    if (delayMs > 0) setTimeout(run, delayMs).unref();
    else setImmediate(run);
  }

  private async write(): Promise<void> {
    if (this.writing || this.fenced || this.waiting.length === 0) return;
    this.writing = true;
    // The state now includes every event whose follow-up waits: one write covers them all.
    const batch = this.waiting;
    this.waiting = [];
    const state = this.options.state();
    const records = stateRecords(state);
    const { puts, deletes } = recordChanges(this.written, records);
    let retry = false;
    try {
      if (puts.size > 0 || deletes.length > 0) {
        await this.options.store.write(this.options.term, puts, deletes);
        this.writes += 1;
        this.recordsWritten += puts.size + deletes.length;
      }
      this.written = records;
      this.writtenState = state;
      if (this.unreachable) {
        this.unreachable = null;
        this.options.onReachable?.(null);
      }
      for (const w of batch) {
        w.act();
        w.answer?.();
      }
    } catch (err) {
      if (err instanceof FencedError) {
        this.fenced = true;
        this.options.onFenced(err);
        for (const w of [...batch, ...this.waiting]) if (w.answer) w.refuse?.();
        this.waiting = [];
        for (const resolve of this.drainers) resolve();
        this.drainers.clear();
      } else {
        // Unreachable (or a write etcd refused for another reason): nothing of it was written,
        // so the batch waits, in order, before what came since, and the write is tried again.
        const why = err instanceof StoreUnavailableError ? err : new StoreUnavailableError(this.options.store.description, 'writing the state', { cause: err });
        if (!this.unreachable) this.options.onReachable?.(why);
        this.unreachable = why;
        // The replies go now (refusals excepted); the commands wait for the store.
        for (const w of [...batch, ...this.waiting]) {
          if (w.answerWaits) continue;
          w.answer?.();
          w.answer = undefined;
        }
        this.waiting = [...batch, ...this.waiting];
        retry = true;
      }
    } finally {
      this.writing = false;
    }
    if (!this.fenced && this.waiting.length > 0) this.schedule(retry ? STORE_RETRY_MS : 0);
  }
}
