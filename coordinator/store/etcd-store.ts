// The state store in etcd (Debian's etcd-server; the `etcd3` client on grpc-js): several
// coordinators share it, one leads. Leadership is one key, `leader`, created only when absent
// and bound to the leader's lease; its create revision is the term. Every write is a transaction
// that first compares that key's create revision with the writer's term, so a deposed leader's
// write changes nothing. A leader that stops renewing its lease (dead, frozen, cut off from
// etcd) loses the key when the lease runs out; standbys watch it and race to create it again.

import { ExponentialBackoff, handleWhen, noop, retry, type IBackoff } from 'cockatiel';
import { Etcd3, isRecoverableError, type IKeyValue, type Lease, type Namespace, type Watcher } from 'etcd3';
import { CampaignAbortedError, FencedError, StoreUnavailableError, type Candidate, type LeaderInfo, type Leadership, type LeadershipLoss, type StateStore, type StoreChange } from './state-store.ts';

/** The key whose holder leads. */
const LEADER_KEY = 'leader';
/** Every other key lives under this one, so a read of the state never returns the leader key. */
const STATE_PREFIX = 'state/';
/** How long one etcd call may take before the store counts as unreachable. */
export const ETCD_CALL_TIMEOUT_MS = 2000;
/** How long a client waits to connect before a call fails. */
const DIAL_TIMEOUT_MS = 2000;
/** The longest wait between a broken watch's reconnection attempts. */
const WATCH_BACKOFF_MAX_MS = 1000;
/** etcd leases count whole seconds; it refuses less than its own minimum (about 2 s). */
const MIN_LEASE_S = 2;

export interface EtcdStoreOptions {
  /** host:port of each etcd member (without a scheme), as `--store etcd://A,B` gives them. */
  readonly endpoints: readonly string[];
  /** Keys of this job live under `/ftrain/<job>/`. */
  readonly job: string;
}

/** Parses `etcd://HOST:PORT[,HOST:PORT...]`; throws a message that says what is wrong. */
export function parseEtcdUrl(url: string): string[] {
  const m = /^etcd:\/\/(.+)$/.exec(url);
  if (!m) throw new Error(`'${url}' is not an etcd address: expected etcd://HOST:PORT[,HOST:PORT...]`);
  const endpoints = m[1]!.split(',').map((s) => s.trim());
  for (const e of endpoints) {
    if (!/^[^:/\s]+:\d{1,5}$/.test(e)) throw new Error(`'${e}' in ${url} is not HOST:PORT`);
  }
  return endpoints;
}

export class EtcdStore implements StateStore {
  readonly description: string;
  private readonly client: Etcd3;
  private readonly ns: Namespace;
  private readonly closers = new Set<() => void>();
  private readonly leases = new Set<Lease>();
  private closed = false;

  constructor(options: EtcdStoreOptions) {
    this.description = `etcd://${options.endpoints.join(',')}`;
    this.client = new Etcd3({
      hosts: options.endpoints.map((e) => `http://${e}`),
      dialTimeout: DIAL_TIMEOUT_MS,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + ETCD_CALL_TIMEOUT_MS }),
      faultHandling: {
        // Each call fails over to the next member once; the caller decides what a failure means.
        global: retry(handleWhen(isRecoverableError), { maxAttempts: Math.max(1, options.endpoints.length - 1) }),
        host: () => noop,
        // etcd3 takes the factory, typed as a backoff: it calls `next()` on it for each watch.
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: WATCH_BACKOFF_MAX_MS }) as unknown as IBackoff<unknown>,
      },
    });
    this.ns = this.client.namespace(`/ftrain/${options.job}/`);
  }

  async campaign(candidate: Candidate, leaseMs: number, signal?: AbortSignal): Promise<Leadership> {
    const abortError = () => new CampaignAbortedError(candidate.id);
    for (;;) {
      if (signal?.aborted || this.closed) throw abortError();
      const lease = this.ns.lease(Math.max(MIN_LEASE_S, Math.ceil(leaseMs / 1000)), { autoKeepAlive: true });
      this.leases.add(lease);
      let leaseId: string;
      let created: Awaited<ReturnType<ReturnType<Namespace['if']>['commit']>>;
      try {
        leaseId = await lease.grant();
        created = await this.ns
          .if(LEADER_KEY, 'Create', '==', 0)
          .then(lease.put(LEADER_KEY).value(JSON.stringify(candidate)))
          .commit();
      } catch (err) {
        this.leases.delete(lease);
        lease.release();
        if (!isRecoverableError(err as Error)) throw err;
        // etcd is unreachable: try again after a moment, like a standby waiting for a vacancy.
        await sleep(Math.min(leaseMs, 500), signal);
        continue;
      }
      if (created.succeeded) return this.lead(candidate, lease, leaseId, Number(created.header.revision));
      this.leases.delete(lease);
      await lease.revoke().catch(() => {});
      await this.vacancy(signal);
    }
  }

  /** Resolves when no one leads (the leader key is gone), or on abort. */
  private async vacancy(signal?: AbortSignal): Promise<void> {
    const watcher = await this.ns.watch().key(LEADER_KEY).create();
    let close = () => {};
    try {
      await new Promise<void>((resolve, reject) => {
        const check = () =>
          this.ns
            .get(LEADER_KEY)
            .exec()
            .then((r) => {
              if (r.kvs.length === 0) resolve();
            })
            .catch(() => {});
        watcher.on('delete', () => resolve());
        // A watch that reconnects may have missed the delete: look again.
        watcher.on('connected', check);
        signal?.addEventListener('abort', () => reject(new CampaignAbortedError('')), { once: true });
        close = () => reject(new CampaignAbortedError(''));
        this.closers.add(close);
        // The key may have gone between the failed create and the watch.
        void check();
      });
    } finally {
      this.closers.delete(close);
      await watcher.cancel().catch(() => {});
    }
  }

  private lead(candidate: Candidate, lease: Lease, leaseId: string, term: number): Leadership {
    let end!: (loss: LeadershipLoss) => void;
    let ended = false;
    let resigning = false;
    const lost = new Promise<LeadershipLoss>((resolve) => (end = resolve));
    let watcher: Watcher | null = null;
    const finish = (loss: LeadershipLoss) => {
      if (ended) return;
      ended = true;
      void watcher?.cancel().catch(() => {});
      this.closers.delete(onClose);
      end(loss);
    };
    lease.on('lost', (err) => finish({ reason: 'lease-expired', detail: `the lease ${leaseId} ran out: ${err.message}` }));
    // The key deleted or created anew under another lease: someone else leads now.
    void this.ns
      .watch()
      .key(LEADER_KEY)
      .create()
      .then((w) => {
        watcher = w;
        if (ended) void w.cancel().catch(() => {});
        w.on('delete', () => finish(resigning ? { reason: 'resigned', detail: `coordinator ${candidate.id} resigned` } : { reason: 'deposed', detail: 'the leader key is gone' }));
        w.on('put', (kv: IKeyValue) => {
          if (Number(kv.create_revision) !== term) finish({ reason: 'deposed', detail: `term ${Number(kv.create_revision)} leads now` });
        });
      })
      .catch(() => {});
    // Closing the store ends the leadership without resigning: the lease runs out.
    const onClose = () => {
      lease.release();
      finish({ reason: 'store-closed', detail: 'this coordinator closed its store' });
    };
    this.closers.add(onClose);
    return {
      term,
      lost,
      resign: async () => {
        // The watch sees the key go before the delete returns: that is this resignation.
        resigning = true;
        await this.ns
          .if(LEADER_KEY, 'Create', '==', term)
          .then(this.ns.delete().key(LEADER_KEY))
          .commit()
          .catch(() => {});
        await lease.revoke().catch(() => {});
        this.leases.delete(lease);
        finish({ reason: 'resigned', detail: `coordinator ${candidate.id} resigned` });
      },
    };
  }

  async leader(): Promise<LeaderInfo | null> {
    const r = await this.call('reading the leader', () => this.ns.get(LEADER_KEY).exec());
    const kv = r.kvs[0];
    return kv ? leaderOf(kv) : null;
  }

  watchLeader(onChange: (leader: LeaderInfo | null) => void): () => void {
    let stopped = false;
    const refresh = () =>
      this.leader().then(
        (l) => !stopped && onChange(l),
        () => {},
      );
    const stop = this.watching(this.ns.watch().key(LEADER_KEY), (w) => {
      w.on('put', (kv: IKeyValue) => !stopped && onChange(leaderOf(kv)));
      w.on('delete', () => !stopped && onChange(null));
      w.on('connected', () => void refresh());
      // The leader as it is now: the watch reports changes only.
      void refresh();
    });
    return () => {
      stopped = true;
      stop();
    };
  }

  async read(prefix: string): Promise<Map<string, string>> {
    const all = await this.call('reading the state', () => this.ns.getAll().prefix(STATE_PREFIX + prefix).sort('Key', 'Ascend').strings());
    return new Map(Object.entries(all).map(([k, v]) => [k.slice(STATE_PREFIX.length), v]));
  }

  async write(term: number, puts: ReadonlyMap<string, string>, deletes: readonly string[] = []): Promise<void> {
    const ops = [...[...puts].map(([k, v]) => this.ns.put(STATE_PREFIX + k).value(v)), ...deletes.map((k) => this.ns.delete().key(STATE_PREFIX + k))];
    const r = await this.call('writing the state', () =>
      this.ns
        .if(LEADER_KEY, 'Create', '==', term)
        .then(...ops)
        .commit(),
    );
    if (!r.succeeded) throw new FencedError(term, await this.leader().catch(() => null));
  }

  watch(prefix: string, onChange: (change: StoreChange) => void): () => void {
    let stopped = false;
    // The namespace takes `/ftrain/<job>/` off the keys a watch reports.
    const key = (kv: IKeyValue) => kv.key.toString().slice(STATE_PREFIX.length);
    const stop = this.watching(this.ns.watch().prefix(STATE_PREFIX + prefix), (w) => {
      w.on('put', (kv: IKeyValue) => !stopped && onChange({ key: key(kv), value: kv.value.toString() }));
      w.on('delete', (kv: IKeyValue) => !stopped && onChange({ key: key(kv), value: null }));
    });
    return () => {
      stopped = true;
      stop();
    };
  }

  /** Starts a watch (`attach` sets its handlers once it runs); returns the stop, which closing the store calls too. */
  private watching(builder: ReturnType<Namespace['watch']>, attach: (w: Watcher) => void): () => void {
    let stopped = false;
    let watcher: Watcher | null = null;
    void builder
      .create()
      .then((w) => {
        watcher = w;
        if (stopped) return void w.cancel().catch(() => {});
        attach(w);
      })
      .catch(() => {});
    const stop = () => {
      stopped = true;
      void watcher?.cancel().catch(() => {});
      this.closers.delete(stop);
    };
    this.closers.add(stop);
    return stop;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const c of [...this.closers]) c();
    for (const l of this.leases) l.release();
    this.client.close();
  }

  /** Runs one etcd call; a failure to reach etcd becomes `StoreUnavailableError`. */
  private async call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (isRecoverableError(err as Error) || /deadline|unavailable|ECONNREFUSED/i.test((err as Error).message)) throw new StoreUnavailableError(this.description, operation, { cause: err });
      throw err;
    }
  }
}

function leaderOf(kv: IKeyValue): LeaderInfo {
  const c = JSON.parse(kv.value.toString()) as Candidate;
  return { id: c.id, address: c.address, term: Number(kv.create_revision), ...(typeof c.dashboardUrl === 'string' ? { dashboardUrl: c.dashboardUrl } : {}) };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });
}
