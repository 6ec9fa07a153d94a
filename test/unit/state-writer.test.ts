// The leader's write-ahead: commands go out only once the store holds the state they follow
// from; events are written in groups; a fenced leader sends nothing more; an unreachable store
// holds the commands back, in order, until it answers.

import { describe, expect, it } from 'vitest';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import { stateFromRecords } from '../../coordinator/state-records.ts';
import { StateWriter } from '../../coordinator/state-writer.ts';
import { InProcessState, InProcessStore } from '../../coordinator/store/in-process-store.ts';
import { FencedError, StoreUnavailableError, type StateStore } from '../../coordinator/store/state-store.ts';
import { compileJobOptions } from '../../domain/job-options.ts';

const job = compileJobOptions({ nodes: 2, steps: 4, leaseMs: 1000, heartbeatMs: 100 });

function register(core: CoordinatorCore, nodeId: string): void {
  core.handle({ type: 'register', nodeId, address: `w-${nodeId}:1`, pid: 1, hostname: 'h', snapshots: null, smpAddress: '' }, 0);
}

async function leader(store: StateStore) {
  return store.campaign({ id: 'c1', address: 'c:1' }, 2000);
}

describe('state writer', () => {
  it('runs an event\'s follow-up only once the store holds the state after it, and groups the events of one moment', async () => {
    const store = new InProcessStore();
    const { term } = await leader(store);
    const core = new CoordinatorCore(job);
    const writer = new StateWriter({ store, term, state: () => core.durable(), onFenced: () => expect.fail('not fenced') });
    const seen: string[] = [];
    for (const id of ['n0', 'n1', 'n2']) {
      register(core, id);
      writer.afterEvent(async () => {
        const held = stateFromRecords(await store.read(''));
        seen.push(`${id}:${held.nodes.map((n) => n.nodeId).join(',')}`);
      });
    }
    expect(seen).toEqual([]);
    await writer.drain();
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual(['n0:n0,n1,n2', 'n1:n0,n1,n2', 'n2:n0,n1,n2']);
    expect(writer.writes).toBe(1);
    // Nothing changed: nothing written.
    writer.afterEvent(() => {});
    await writer.drain();
    expect(writer.writes).toBe(1);
    await store.close();
  });

  it('sends nothing more once another coordinator leads', async () => {
    const state = new InProcessState();
    const a = new InProcessStore(state);
    const b = new InProcessStore(state);
    const la = await leader(a);
    const core = new CoordinatorCore(job);
    const fenced: FencedError[] = [];
    const writer = new StateWriter({ store: a, term: la.term, state: () => core.durable(), onFenced: (e) => fenced.push(e) });
    register(core, 'n0');
    await writer.drain();
    await la.resign();
    await b.campaign({ id: 'c2', address: 'c:2' }, 2000);
    let sent = false;
    register(core, 'n1');
    writer.afterEvent(() => (sent = true));
    // A drain ends when the leader is fenced, without its commands.
    await writer.drain();
    expect(sent).toBe(false);
    expect(fenced).toHaveLength(1);
    expect(fenced[0]!.message).toMatch(/coordinator c2 .* leads under term/);
    expect(writer.deposed).toBe(true);
    expect(stateFromRecords(await b.read('')).nodes.map((n) => n.nodeId)).toEqual(['n0']);
    await Promise.all([a.close(), b.close()]);
  });

  it('holds commands back while the store cannot be reached, answering at once, then sends them in order', async () => {
    const inner = new InProcessStore();
    const { term } = await leader(inner);
    let failures = 3;
    const flaky: StateStore = Object.assign(Object.create(inner) as StateStore, {
      write: (t: number, puts: ReadonlyMap<string, string>, deletes?: readonly string[]) => {
        if (failures > 0) {
          failures -= 1;
          return Promise.reject(new StoreUnavailableError('flaky', 'writing the state'));
        }
        return inner.write(t, puts, deletes);
      },
    });
    const core = new CoordinatorCore(job);
    const reach: (string | null)[] = [];
    const writer = new StateWriter({ store: flaky, term, state: () => core.durable(), onFenced: () => expect.fail('not fenced'), onReachable: (e) => reach.push(e ? e.message : null) });
    const sent: string[] = [];
    const answered: string[] = [];
    register(core, 'n0');
    writer.afterEvent(() => sent.push('a'), () => answered.push('a'));
    register(core, 'n1');
    writer.afterEvent(() => sent.push('b'), () => answered.push('b'));
    await new Promise((r) => setTimeout(r, 100));
    // The replies go while the store cannot be reached (training goes on); the commands wait.
    expect(sent).toEqual([]);
    expect(answered).toEqual(['a', 'b']);
    expect(writer.storeUnreachable).not.toBeNull();
    writer.afterEvent(() => sent.push('c'), () => answered.push('c'));
    expect(answered).toEqual(['a', 'b', 'c']);
    // A refusal waits for the store all the same: it may rest on a decision not yet written.
    writer.afterEvent(() => sent.push('d'), () => answered.push('d refused'), undefined, true);
    expect(answered).toEqual(['a', 'b', 'c']);
    await writer.drain();
    expect(sent).toEqual(['a', 'b', 'c', 'd']);
    expect(answered).toEqual(['a', 'b', 'c', 'd refused']);
    expect(reach).toEqual(["the coordinator's store (flaky) cannot be reached: writing the state failed", null]);
    expect(stateFromRecords(await inner.read('')).nodes.map((n) => n.nodeId)).toEqual(['n0', 'n1']);
    await inner.close();
  });
});
