// The coordinator's HTTP side with a store: the dashboard is the leader's. A real DashboardServer
// on a loopback port, fed role changes as the coordinator emits them: a standby's / names the
// leader and links to its dashboard, /api/state and /leader answer 503, an open dashboard is told
// to reload when its coordinator stops leading, the role gauges follow; and the page's HTML
// escapes what the store says.

import { EventEmitter } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import type { Action } from '../../coordinator/core/core-events.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorRoleView } from '../../observability/coordinator-role.ts';
import { DashboardServer } from '../../observability/dashboard-server.ts';
import { leaderProbe, standbyPageHtml, standbySentence } from '../../observability/standby-page.ts';

const job = compileJobOptions({ nodes: 2, steps: 4 });
const LEADER = { id: 'c1', address: '10.0.0.5:7070', term: 7, dashboardUrl: 'http://10.0.0.5:8080/' };

class FakeCoordinator extends EventEmitter<{ action: [Action] }> {
  readonly core = new CoordinatorCore(job);
  readonly job = job;
  status() {
    return this.core.status();
  }
}

let server: DashboardServer | null = null;
afterEach(async () => {
  await server?.close();
  server = null;
});

async function serve(role: CoordinatorRoleView): Promise<string> {
  server = new DashboardServer({ coordinator: new FakeCoordinator(), host: '127.0.0.1', port: 0, fallbackToFreePort: false, logger: createLogger({ name: 'test', level: 'silent' }), role });
  await server.start();
  return server.url;
}

async function get(url: string): Promise<{ status: number; text: string; type: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text(), type: res.headers.get('content-type') ?? '' };
}

function gauge(metrics: string, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(metrics);
  if (!m) throw new Error(`no ${name} in /metrics`);
  return Number(m[1]);
}

describe('a standby coordinator\'s HTTP side', () => {
  it('serves a page naming the leader with a link to its dashboard, and 503 on /api/state and /leader; /healthz stays 200', async () => {
    const role = new CoordinatorRoleView('c2');
    role.role({ leading: false, leader: LEADER });
    const base = await serve(role);

    const page = await get(base);
    expect(page.status).toBe(200);
    expect(page.type).toMatch(/^text\/html/);
    expect(page.text).toContain('<p id="standby-sentence">This coordinator (c2) is a standby; the leader is c1 at 10.0.0.5:7070 (term 7).</p>');
    expect(page.text).toContain('<a id="leader-link" href="http://10.0.0.5:8080/">');
    expect(page.text).toContain('data-leader-id="c1" data-leader-term="7"');
    expect(page.text).not.toContain('chart-loss-step');

    const state = await get(`${base}api/state`);
    expect(state.status).toBe(503);
    expect(JSON.parse(state.text)).toEqual({ role: 'standby', id: 'c2', leader: LEADER });

    const leader = await get(`${base}leader`);
    expect(leader.status).toBe(503);
    expect(leader.text).toBe('this coordinator (c2) is a standby; the leader is c1 at 10.0.0.5:7070 (term 7)\n');
    expect((await get(`${base}healthz`)).status).toBe(200);
    expect((await get(`${base}standby.js`)).status).toBe(200);

    const metrics = (await get(`${base}metrics`)).text;
    expect(gauge(metrics, 'ftrain_coordinator_leader')).toBe(0);
    expect(gauge(metrics, 'ftrain_coordinator_term')).toBe(0);
  });

  it('serves the dashboard once it leads, with its term and the store banner\'s reason in the status; and sends open pages to the standby page when it stops leading', async () => {
    const role = new CoordinatorRoleView('c2');
    const base = await serve(role);
    // Standing for leader, no one leads yet.
    expect(JSON.parse((await get(`${base}api/state`)).text)).toEqual({ role: 'standby', id: 'c2', leader: null });
    expect((await get(base)).text).toContain('This coordinator (c2) is a standby; no coordinator leads right now.');

    role.role({ leading: true, term: 9, tookOver: true });
    expect((await get(base)).text).toContain('id="chart-loss-step"');
    expect(await get(`${base}leader`)).toMatchObject({ status: 200, text: 'leader: coordinator c2, term 9\n' });
    let state = JSON.parse((await get(`${base}api/state`)).text) as { status: { coordinator: unknown } };
    expect(state.status.coordinator).toEqual({ id: 'c2', term: 9, storeUnreachable: null });

    role.store('the store (etcd://e:2379) cannot be reached');
    state = JSON.parse((await get(`${base}api/state`)).text) as { status: { coordinator: unknown } };
    expect(state.status.coordinator).toEqual({ id: 'c2', term: 9, storeUnreachable: 'the store (etcd://e:2379) cannot be reached' });
    let metrics = (await get(`${base}metrics`)).text;
    expect([gauge(metrics, 'ftrain_coordinator_leader'), gauge(metrics, 'ftrain_coordinator_term'), gauge(metrics, 'ftrain_coordinator_store_unreachable')]).toEqual([1, 9, 1]);
    role.store(null);
    metrics = (await get(`${base}metrics`)).text;
    expect(gauge(metrics, 'ftrain_coordinator_store_unreachable')).toBe(0);

    // An open dashboard's stream: the whole state first; then, deposed, a standby event and the end.
    const events = await fetch(`${base}api/events`);
    const reader = events.body!.getReader();
    let text = '';
    const readUntil = async (pattern: RegExp) => {
      while (!pattern.test(text)) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
    };
    await readUntil(/event: state\n/);
    role.role({ leading: false, leader: { ...LEADER, term: 10 } });
    await readUntil(/event: standby\n[^]*\n\n/);
    expect(text).toMatch(/event: standby\ndata: \{"role":"standby","id":"c2","leader":\{"id":"c1"/);
    expect((await reader.read()).done).toBe(true);
    expect((await get(`${base}leader`)).status).toBe(503);
  });

  it('answers /leader 200 without a store (the only coordinator), and has no coordinator in the status', async () => {
    server = new DashboardServer({ coordinator: new FakeCoordinator(), host: '127.0.0.1', port: 0, fallbackToFreePort: false, logger: createLogger({ name: 'test', level: 'silent' }) });
    await server.start();
    expect((await get(`${server.url}leader`)).status).toBe(200);
    expect(JSON.parse((await get(`${server.url}api/state`)).text).status.coordinator).toBeNull();
    expect(gauge((await get(`${server.url}metrics`)).text, 'ftrain_coordinator_leader')).toBe(1);
  });
});

describe('the standby page', () => {
  it('escapes what the store says and links only to a web page', () => {
    const html = standbyPageHtml({ role: 'standby', id: 'c2', leader: { id: '<b>x', address: 'a"b:1', term: 1, dashboardUrl: 'javascript:alert(1)' } });
    expect(html).not.toContain('<b>x');
    expect(html).toContain('&#60;b&#62;x');
    expect(html).not.toContain('javascript:');
    expect(html).toContain('The leader publishes no dashboard address');
  });

  it('says who leads in one sentence, and /leader refuses a standby with it', () => {
    const standby = { role: 'standby', id: 'c2', leader: null } as const;
    expect(standbySentence(standby)).toBe('this coordinator (c2) is a standby; no coordinator leads right now');
    expect(leaderProbe(standby).status).toBe(503);
    expect(leaderProbe({ role: 'single' }).status).toBe(200);
    expect(leaderProbe({ role: 'leader', id: 'c1', term: 3, storeUnreachable: 'x' })).toEqual({ status: 200, text: 'leader: coordinator c1, term 3; the store cannot be reached: no new decision until it answers' });
  });
});
