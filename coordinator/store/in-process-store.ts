// The state store inside the coordinator's process: the default for one coordinator, nothing to
// start. Several handles may share one `InProcessState` (the contract test's leader and
// standby); each handle renews its own leases, so closing a handle lets them run out as a dead
// process's would.

import { CampaignAbortedError, FencedError, type Candidate, type LeaderInfo, type Leadership, type LeadershipLoss, type StateStore, type StoreChange } from './state-store.ts';

/** How often a handle renews its lease, as a share of the lease. */
const RENEW_SHARE = 1 / 3;
/** How often the shared state looks for a lease that ran out. */
const EXPIRY_CHECK_MS = 50;

interface LeaderRecord extends LeaderInfo {
  expiresAtMs: number;
  end: (loss: LeadershipLoss) => void;
}

/** The state several in-process handles share: keys, the leader and its lease, watchers. */
export class InProcessState {
  readonly data = new Map<string, string>();
  /** Increases with every change; a new leader's term is the revision that elected it. */
  revision = 0;
  leader: LeaderRecord | null = null;
  readonly leaderWatchers = new Set<(leader: LeaderInfo | null) => void>();
  readonly watchers = new Set<{ prefix: string; onChange: (c: StoreChange) => void }>();
  private readonly waiting = new Set<() => void>();
  private expiryTimer: NodeJS.Timeout | null = null;

  constructor(readonly now: () => number = Date.now) {}

  /** Wakes the campaigns that wait for no one to lead. */
  waitForVacancy(wake: () => void): () => void {
    this.waiting.add(wake);
    return () => this.waiting.delete(wake);
  }

  elect(candidate: Candidate, leaseMs: number, end: (loss: LeadershipLoss) => void): LeaderRecord {
    this.revision += 1;
    this.leader = { ...candidate, term: this.revision, expiresAtMs: this.now() + leaseMs, end };
    this.announce();
    this.watchExpiry();
    return this.leader;
  }

  /** The leader of `term` goes; campaigns waiting for a vacancy wake. */
  unseat(term: number, loss: LeadershipLoss): void {
    const leader = this.leader;
    if (!leader || leader.term !== term) return;
    this.leader = null;
    this.revision += 1;
    leader.end(loss);
    this.announce();
    for (const wake of [...this.waiting]) wake();
  }

  notify(change: StoreChange): void {
    for (const w of [...this.watchers]) if (change.key.startsWith(w.prefix)) w.onChange(change);
  }

  private announce(): void {
    const info = this.leaderInfo();
    for (const w of [...this.leaderWatchers]) w(info);
  }

  leaderInfo(): LeaderInfo | null {
    const l = this.leader;
    return l ? { id: l.id, address: l.address, term: l.term, ...(l.dashboardUrl ? { dashboardUrl: l.dashboardUrl } : {}) } : null;
  }

  private watchExpiry(): void {
    if (this.expiryTimer) return;
    this.expiryTimer = setInterval(() => {
      const l = this.leader;
      if (!l) {
        clearInterval(this.expiryTimer!);
        this.expiryTimer = null;
        return;
      }
      if (this.now() > l.expiresAtMs) this.unseat(l.term, { reason: 'lease-expired', detail: `coordinator ${l.id} did not renew its lease in time` });
    }, EXPIRY_CHECK_MS);
    this.expiryTimer.unref();
  }
}

/** One coordinator's handle on an in-process state (its own by default). */
export class InProcessStore implements StateStore {
  readonly description = 'in-process';
  private readonly closers = new Set<() => void>();
  private closed = false;

  constructor(private readonly state: InProcessState = new InProcessState()) {}

  campaign(candidate: Candidate, leaseMs: number, signal?: AbortSignal): Promise<Leadership> {
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new CampaignAbortedError(candidate.id));
      let stopWaiting = () => {};
      const abort = () => {
        stopWaiting();
        this.closers.delete(abort);
        reject(new CampaignAbortedError(candidate.id));
      };
      if (signal?.aborted) return abort();
      signal?.addEventListener('abort', abort, { once: true });
      this.closers.add(abort);
      const tryLead = () => {
        if (this.state.leader) return;
        stopWaiting();
        this.closers.delete(abort);
        signal?.removeEventListener('abort', abort);
        resolve(this.lead(candidate, leaseMs));
      };
      stopWaiting = this.state.waitForVacancy(tryLead);
      tryLead();
    });
  }

  private lead(candidate: Candidate, leaseMs: number): Leadership {
    let end!: (loss: LeadershipLoss) => void;
    const lost = new Promise<LeadershipLoss>((resolve) => (end = resolve));
    let renew: NodeJS.Timeout | null = null;
    const record = this.state.elect(candidate, leaseMs, (loss) => {
      if (renew) clearInterval(renew);
      this.closers.delete(stopRenewing);
      end(loss);
    });
    // A closed handle stops renewing: the lease runs out as a dead process's would.
    const stopRenewing = () => {
      if (renew) clearInterval(renew);
    };
    renew = setInterval(() => {
      if (this.state.leader === record) record.expiresAtMs = this.state.now() + leaseMs;
    }, Math.max(10, leaseMs * RENEW_SHARE));
    renew.unref();
    this.closers.add(stopRenewing);
    const term = record.term;
    return {
      term,
      lost,
      resign: async () => this.state.unseat(term, { reason: 'resigned', detail: `coordinator ${candidate.id} resigned` }),
    };
  }

  async leader(): Promise<LeaderInfo | null> {
    return this.state.leaderInfo();
  }

  watchLeader(onChange: (leader: LeaderInfo | null) => void): () => void {
    this.state.leaderWatchers.add(onChange);
    queueMicrotask(() => this.state.leaderWatchers.has(onChange) && onChange(this.state.leaderInfo()));
    const stop = () => {
      this.state.leaderWatchers.delete(onChange);
      this.closers.delete(stop);
    };
    this.closers.add(stop);
    return stop;
  }

  async read(prefix: string): Promise<Map<string, string>> {
    return new Map([...this.state.data].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }

  async write(term: number, puts: ReadonlyMap<string, string>, deletes: readonly string[] = []): Promise<void> {
    if (this.state.leader?.term !== term) throw new FencedError(term, this.state.leaderInfo());
    const changes: StoreChange[] = [];
    for (const [key, value] of puts) {
      this.state.data.set(key, value);
      changes.push({ key, value });
    }
    for (const key of deletes) {
      if (this.state.data.delete(key)) changes.push({ key, value: null });
    }
    this.state.revision += 1;
    for (const c of changes) this.state.notify(c);
  }

  watch(prefix: string, onChange: (change: StoreChange) => void): () => void {
    const w = { prefix, onChange };
    this.state.watchers.add(w);
    const stop = () => {
      this.state.watchers.delete(w);
      this.closers.delete(stop);
    };
    this.closers.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of [...this.closers]) c();
    this.closers.clear();
  }
}
