// The dashboard with a leader and a standby: a real local etcd and two real `ftrain coordinator
// --store` processes, their HTTP answers, and both pages in a headless Chromium. The standby's
// page names the leader and links to its dashboard; /leader answers 200 only on the leader (the
// readiness check of deploy/k8s); when the leader is SIGKILLed, the standby's open page follows
// into the new leader's dashboard; with every etcd member stopped, that dashboard shows the store
// banner.

import * as grpc from '@grpc/grpc-js';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_CHANNEL_OPTIONS, loadProto } from '../../common/proto.ts';
import { startLocalEtcd, type LocalEtcd } from '../../coordinator/store/local-etcd.ts';
import { SHOTS, collectPageErrors, launchChromium } from '../support/chromium.ts';
import { SMALL_MODEL, startCli, type RunningCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-ha-dashboard-'));
const LEASE_MS = 2000;

let etcd: LocalEtcd;
let browser: Browser;
const coordinators: RunningCli[] = [];

beforeAll(async () => {
  browser = await launchChromium();
  mkdirSync(SHOTS, { recursive: true });
  etcd = await startLocalEtcd();
});

afterAll(async () => {
  for (const c of coordinators) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  await browser?.close();
  for (const m of etcd?.members ?? []) if (m.exited === null) m.process.kill('SIGCONT');
  await etcd?.stop();
});

/** Starts `ftrain coordinator ID` on the shared store; resolves with its gRPC port and dashboard URL. */
async function coordinator(id: string): Promise<{ run: RunningCli; grpcPort: number; dashboard: string }> {
  const run = startCli(
    ['coordinator', '--store', etcd.url, '--store-job', `dash-${process.pid}`, '--coordinator-id', id, '--leader-lease', String(LEASE_MS), '--listen', '127.0.0.1:0', '--dashboard-port', '0', '--nodes', '2', ...SMALL_MODEL, '--log-file', join(dir, `${id}.log`), '--insecure'],
    { timeoutMs: 150_000 },
  );
  coordinators.push(run);
  const listening = await run.waitForLine(/^ftrain coordinator \S+ on 127\.0\.0\.1:(\d+)/, 30_000);
  const dashboard = await run.waitForLine(/^ {2}dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/, 30_000);
  return { run, grpcPort: Number(listening.match[1]), dashboard: dashboard.match[1]! };
}

async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

async function gauge(base: string, name: string): Promise<number> {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec((await get(`${base}metrics`)).text);
  return m ? Number(m[1]) : NaN;
}

describe('the dashboard with a leader and a standby', () => {
  it('is served by the leader; the standby names it and links to it, follows a takeover, and the leader shows the store banner while etcd is stopped', async () => {
    const errors: string[] = [];
    const c1 = await coordinator('c1');
    await c1.run.waitForLine(/^LEADING: coordinator c1 leads a new run \(term (\d+)\)/, 20_000);
    const c2 = await coordinator('c2');
    await c2.run.waitForLine(/^standby: coordinator c1 at 127\.0\.0\.1:\d+ leads/, 20_000);

    // Readiness: 200 on the leader, 503 on the standby; both alive.
    const leaderProbe = await get(`${c1.dashboard}leader`);
    expect(leaderProbe.status).toBe(200);
    expect(leaderProbe.text).toMatch(/^leader: coordinator c1, term \d+\n$/);
    const standbyProbe = await get(`${c2.dashboard}leader`);
    expect(standbyProbe.status).toBe(503);
    expect(standbyProbe.text).toBe(`this coordinator (c2) is a standby; the leader is c1 at 127.0.0.1:${c1.grpcPort} (term ${/term (\d+)/.exec(leaderProbe.text)![1]})\n`);
    for (const c of [c1, c2]) expect((await get(`${c.dashboard}healthz`)).status).toBe(200);
    const state = await get(`${c2.dashboard}api/state`);
    expect(state.status).toBe(503);
    expect(JSON.parse(state.text)).toMatchObject({ role: 'standby', id: 'c2', leader: { id: 'c1', address: `127.0.0.1:${c1.grpcPort}`, dashboardUrl: c1.dashboard } });
    expect([await gauge(c1.dashboard, 'ftrain_coordinator_leader'), await gauge(c2.dashboard, 'ftrain_coordinator_leader')]).toEqual([1, 0]);

    // The leader's page says which coordinator it is and under which term.
    const leaderPage = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    collectPageErrors(leaderPage, errors);
    await leaderPage.goto(c1.dashboard);
    await expect.poll(() => leaderPage.locator('#coordinator-role').innerText(), { timeout: 10_000 }).toMatch(/^coordinator c1 · leader · term \d+$/);
    expect(await leaderPage.locator('#store-banner').isHidden()).toBe(true);
    // Closed before its coordinator is killed: a stream cut off is an error in the console.
    await leaderPage.close();

    // The standby's page: who leads, and a link to its dashboard.
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    collectPageErrors(page, errors);
    await page.goto(c2.dashboard);
    expect(await page.locator('#standby-sentence').innerText()).toMatch(new RegExp(`^This coordinator \\(c2\\) is a standby; the leader is c1 at 127\\.0\\.0\\.1:${c1.grpcPort} \\(term \\d+\\)\\.$`));
    expect(await page.locator('#leader-link').getAttribute('href')).toBe(c1.dashboard);
    expect(JSON.parse((await get(`${c2.dashboard}api/role`)).text)).toMatchObject({ role: 'standby', leader: { id: 'c1' } });
    await page.screenshot({ path: join(SHOTS, 'dashboard-standby.png') });

    // The leader goes: the standby leads within its lease, and its open page becomes the dashboard.
    c1.run.child.kill('SIGKILL');
    await c2.run.waitForLine(/^LEADING: coordinator c2 took over the run \(term \d+\)/, LEASE_MS * 5);
    await expect.poll(() => get(`${c2.dashboard}leader`).then((r) => r.status), { timeout: 5000 }).toBe(200);
    await expect.poll(() => page.locator('#coordinator-role').isVisible().then((v) => (v ? page.locator('#coordinator-role').innerText() : '')), { timeout: 15_000 }).toMatch(/^coordinator c2 · leader · term \d+$/);
    expect(await gauge(c2.dashboard, 'ftrain_coordinator_leader')).toBe(1);

    // Every etcd member stopped: a node's registration needs a write that cannot go through, and
    // the leader says so on its console and its dashboard.
    for (const m of etcd.members) m.process.kill('SIGSTOP');
    const client = new (loadProto().ftrain.v1.Coordinator)(`127.0.0.1:${c2.grpcPort}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
    client.Register({ nodeId: 'n1', address: '127.0.0.1:9', pid: 1, hostname: 'h', snapshotStage: -1, snapshotSteps: [], smpAddress: '' }, { deadline: Date.now() + 20_000 }, () => {});
    try {
      await c2.run.waitForLine(/^WARNING: .*cannot be reached.*: training goes on, no new decision/, 15_000);
      const banner = page.locator('#store-banner');
      await banner.waitFor({ state: 'visible', timeout: 10_000 });
      expect(await banner.innerText()).toMatch(/^store unreachable: training goes on, no new decision \(a recovery waits\) until it answers — .*cannot be reached/);
      expect(await gauge(c2.dashboard, 'ftrain_coordinator_store_unreachable')).toBe(1);
      await page.screenshot({ path: join(SHOTS, 'dashboard-store-unreachable.png') });
    } finally {
      for (const m of etcd.members) m.process.kill('SIGCONT');
      client.close();
    }
    expect(errors).toEqual([]);
    c2.run.child.kill('SIGKILL');
    await c2.run.result;
  });
});
