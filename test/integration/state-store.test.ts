// One contract, two stores: the in-process store and etcd (a real local etcd from PATH, as
// scripts/install-test-deps.sh installs it) must behave alike for everything the coordinator
// relies on: one leader at a time with increasing terms, fenced writes, atomic writes, watches,
// and a dead leader's lease running out.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EtcdStore } from '../../coordinator/store/etcd-store.ts';
import { InProcessState, InProcessStore } from '../../coordinator/store/in-process-store.ts';
import { startLocalEtcd, type LocalEtcd } from '../../coordinator/store/local-etcd.ts';
import { FencedError, StoreUnavailableError, type LeaderInfo, type StateStore, type StoreChange } from '../../coordinator/store/state-store.ts';
import { parseEtcdUrl } from '../../coordinator/store/etcd-store.ts';

/** The shortest lease each store honours. */
const LEASE_MS = 2000;

interface StoreKind {
  readonly name: string;
  /** Handles on one fresh store (a new job prefix each time). */
  handles(n: number): StateStore[];
}

let etcd: LocalEtcd;
let jobs = 0;

const kinds: StoreKind[] = [
  {
    name: 'in-process',
    handles: (n) => {
      const state = new InProcessState();
      return Array.from({ length: n }, () => new InProcessStore(state));
    },
  },
  {
    name: 'etcd',
    handles: (n) => {
      const job = `contract-${process.pid}-${jobs++}`;
      return Array.from({ length: n }, () => new EtcdStore({ endpoints: parseEtcdUrl(etcd.url), job }));
    },
  },
];

beforeAll(async () => {
  etcd = await startLocalEtcd();
});

afterAll(async () => {
  await etcd?.stop();
});

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    if (await check()) return Date.now() - t0;
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.each(kinds)('state store contract: $name', (kind) => {
  it('elects the first candidate at once, and a second only when the first resigns, under a larger term', async () => {
    const [a, b] = kind.handles(2) as [StateStore, StateStore];
    try {
      expect(await a.leader()).toBeNull();
      const la = await a.campaign({ id: 'c1', address: '127.0.0.1:1' }, LEASE_MS);
      expect(la.term).toBeGreaterThan(0);
      expect(await b.leader()).toEqual({ id: 'c1', address: '127.0.0.1:1', term: la.term });
      let bLeads = false;
      // A candidate's dashboard URL is published with its leadership.
      const pb = b.campaign({ id: 'c2', address: '127.0.0.1:2', dashboardUrl: 'http://127.0.0.1:8082/' }, LEASE_MS).then((l) => {
        bLeads = true;
        return l;
      });
      await new Promise((r) => setTimeout(r, 300));
      expect(bLeads).toBe(false);
      await la.resign();
      expect((await la.lost).reason).toBe('resigned');
      const lb = await pb;
      expect(lb.term).toBeGreaterThan(la.term);
      expect(await a.leader()).toEqual({ id: 'c2', address: '127.0.0.1:2', term: lb.term, dashboardUrl: 'http://127.0.0.1:8082/' });
      await lb.resign();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('writes atomically under the leading term, and refuses a deposed term\'s write whole', async () => {
    const [a, b] = kind.handles(2) as [StateStore, StateStore];
    try {
      const la = await a.campaign({ id: 'c1', address: 'x:1' }, LEASE_MS);
      await a.write(la.term, new Map([['nodes/n1', '{"a":1}'], ['nodes/n2', '{"a":2}'], ['epoch', '3']]));
      await a.write(la.term, new Map([['nodes/n3', '{"a":3}']]), ['nodes/n2']);
      expect([...(await b.read('nodes/'))]).toEqual([
        ['nodes/n1', '{"a":1}'],
        ['nodes/n3', '{"a":3}'],
      ]);
      expect((await b.read('')).get('epoch')).toBe('3');
      await la.resign();
      const lb = await b.campaign({ id: 'c2', address: 'x:2' }, LEASE_MS);
      // The old term's write, however late, changes nothing: neither its put nor its delete.
      const stale = a.write(la.term, new Map([['nodes/n1', 'stale'], ['epoch', '99']]), ['nodes/n3']);
      await expect(stale).rejects.toBeInstanceOf(FencedError);
      await expect(stale).rejects.toThrow(/term \d+ no longer leads: coordinator c2/);
      expect([...(await a.read(''))]).toEqual([
        ['epoch', '3'],
        ['nodes/n1', '{"a":1}'],
        ['nodes/n3', '{"a":3}'],
      ]);
      await b.write(lb.term, new Map([['epoch', '4']]));
      expect((await a.read('')).get('epoch')).toBe('4');
      await lb.resign();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('reports every change under a prefix after the watch starts, in order, deletes as null', async () => {
    const [a, b] = kind.handles(2) as [StateStore, StateStore];
    try {
      const la = await a.campaign({ id: 'c1', address: 'x:1' }, LEASE_MS);
      await a.write(la.term, new Map([['nodes/before', '1']]));
      const seen: StoreChange[] = [];
      b.watch('nodes/', (c) => seen.push(c));
      // A watch on etcd starts asynchronously: wait until a change of its own arrives.
      await eventually(async () => {
        await a.write(la.term, new Map([['nodes/probe', String(Date.now())]]));
        return seen.length > 0;
      }, 5000);
      seen.length = 0;
      await a.write(la.term, new Map([['nodes/n1', 'a'], ['other/x', 'no']]));
      await a.write(la.term, new Map([['nodes/n1', 'b']]));
      await a.write(la.term, new Map(), ['nodes/n1']);
      // A probe of the wait above may still be on its way.
      const changes = () => seen.filter((c) => c.key !== 'nodes/probe');
      await eventually(() => changes().length >= 3, 5000);
      expect(changes()).toEqual([
        { key: 'nodes/n1', value: 'a' },
        { key: 'nodes/n1', value: 'b' },
        { key: 'nodes/n1', value: null },
      ]);
      await la.resign();
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('hands the leadership on when the leader stops renewing its lease, and tells the watchers', async () => {
    const [a, b, c] = kind.handles(3) as [StateStore, StateStore, StateStore];
    try {
      const leaders: (LeaderInfo | null)[] = [];
      c.watchLeader((l) => leaders.push(l));
      await new Promise((r) => setTimeout(r, 200));
      const la = await a.campaign({ id: 'c1', address: 'x:1' }, LEASE_MS);
      const pb = b.campaign({ id: 'c2', address: 'x:2' }, LEASE_MS);
      await eventually(() => leaders.some((l) => l?.id === 'c1'), 5000);
      // The leader's process goes: its lease is not renewed, and runs out.
      const t0 = Date.now();
      await a.close();
      const lb = await pb;
      const tookMs = Date.now() - t0;
      expect(lb.term).toBeGreaterThan(la.term);
      // etcd counts leases in whole seconds and may grant a little more than asked.
      expect(tookMs).toBeGreaterThan(LEASE_MS / 2);
      expect(tookMs).toBeLessThan(LEASE_MS * 3);
      await eventually(() => leaders.at(-1)?.id === 'c2', 5000);
      await expect(c.write(la.term, new Map([['k', 'v']]))).rejects.toBeInstanceOf(FencedError);
      await lb.resign();
    } finally {
      await Promise.all([a.close(), b.close(), c.close()]);
    }
  });
});

describe('etcd store', () => {
  it('says the store cannot be reached when etcd is down, within the call timeout', async () => {
    const spare = await startLocalEtcd();
    const store = new EtcdStore({ endpoints: parseEtcdUrl(spare.url), job: 'down' });
    try {
      expect((await store.read('')).size).toBe(0);
      await spare.stop();
      const t0 = Date.now();
      const read = store.read('');
      await expect(read).rejects.toBeInstanceOf(StoreUnavailableError);
      await expect(read).rejects.toThrow(/cannot be reached: reading the state failed/);
      expect(Date.now() - t0).toBeLessThan(6000);
    } finally {
      await store.close();
      await spare.stop();
    }
  });

  it('refuses a malformed --store address with a message that says the form', () => {
    expect(() => parseEtcdUrl('http://127.0.0.1:2379')).toThrow(/expected etcd:\/\/HOST:PORT/);
    expect(() => parseEtcdUrl('etcd://127.0.0.1')).toThrow(/'127.0.0.1' in etcd:\/\/127.0.0.1 is not HOST:PORT/);
    expect(parseEtcdUrl('etcd://a:1, b:2')).toEqual(['a:1', 'b:2']);
  });
});
