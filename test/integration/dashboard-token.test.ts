// The dashboard off loopback needs its token, end to end: real `ftrain coordinator` processes
// serving on 0.0.0.0 (the test reaches them at 127.0.0.1) refuse the page, its API, its event
// stream and /metrics without it, print the URL that carries it, and leave /metrics open with
// --metrics-open; a real headless Chromium opening that URL gets the cookie, and the page's own
// requests and its EventSource (which cannot send headers) carry it: live data reaches the page
// and its charts.

import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.ts';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import type { Action } from '../../coordinator/core/core-events.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { compileDashboardAccess, DASHBOARD_COOKIE, WWW_AUTHENTICATE } from '../../observability/dashboard-access.ts';
import { DashboardServer } from '../../observability/dashboard-server.ts';
import { collectPageErrors, launchChromium } from '../support/chromium.ts';
import { startCli, type RunningCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-dashboard-token-'));
const FILE_TOKEN = 'file-token-0123456789abcdef';
/** The dashboard line of a coordinator on 0.0.0.0: the URL to open, with its token. */
const DASHBOARD_LINE = /^ {2}dashboard: (http:\/\/127\.0\.0\.1:\d+\/)\?token=([A-Za-z0-9_-]+) {2}\(metrics: \S+metrics(.*)\)$/;

function coordinator(extra: string[], name: string): RunningCli {
  const args = ['coordinator', '--nodes', '1', '--listen', '127.0.0.1:0', '--dashboard-host', '0.0.0.0', '--dashboard-port', '0', '--log-file', join(dir, `${name}.log`), ...extra];
  return startCli(args, { timeoutMs: 60_000 });
}

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const res = await fetch(url, init);
  await res.body?.cancel();
  return res.status;
}

/** Live data has reached the page over its event stream. */
async function waitForLive(page: Page): Promise<void> {
  await page.waitForFunction(`document.getElementById('connection')?.getAttribute('data-connection') === 'live' && (document.getElementById('phase')?.getAttribute('data-phase') ?? '') !== ''`, undefined, { timeout: 10_000, polling: 100 });
}

describe('the dashboard token', () => {
  let browser: Browser;
  let generated: RunningCli;
  let fromFile: RunningCli;

  beforeAll(async () => {
    const tokenFile = join(dir, 'token');
    writeFileSync(tokenFile, `${FILE_TOKEN}\n`);
    generated = coordinator([], 'generated');
    fromFile = coordinator(['--dashboard-token-file', tokenFile, '--metrics-open'], 'from-file');
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    for (const run of [generated, fromFile]) if (run && run.child.exitCode === null) run.child.kill('SIGKILL');
  });

  it('is required on 0.0.0.0: 401 without it, the printed URL carries it, and Chromium gets in with its cookie', async () => {
    const { match } = await generated.waitForLine(DASHBOARD_LINE, 30_000);
    const [, base, token, metricsNote] = match as unknown as [string, string, string, string];
    expect(token).toHaveLength(32);
    expect(metricsNote).toBe(' with Authorization: Bearer <the token>');

    const refused = await fetch(base);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(WWW_AUTHENTICATE);
    expect(await refused.text()).toMatch(/open the URL ftrain printed at start, which carries \?token=\.\.\., or send Authorization: Bearer TOKEN/);
    for (const path of ['api/state', 'api/events', 'api/role', 'app.js', 'metrics']) expect(await status(`${base}${path}`), path).toBe(401);
    expect(await status(`${base}api/state`, { headers: { authorization: `Bearer ${token.slice(0, -1)}x` } })).toBe(401);
    expect(await status(`${base}metrics`, { headers: { authorization: `Bearer ${token}` } })).toBe(200);
    expect(await status(`${base}leader`)).toBe(200);

    const context = await browser.newContext();
    const page = await context.newPage();
    const errors: string[] = [];
    collectPageErrors(page, errors);
    await page.goto(`${base}?token=${token}`);
    await waitForLive(page);
    // The page took the token out of the address bar; the cookie carries it, out of the page's reach.
    expect(page.url()).toBe(base);
    const cookies = await context.cookies();
    expect(cookies.map((c) => ({ name: c.name, value: c.value === token, httpOnly: c.httpOnly, sameSite: c.sameSite, path: c.path }))).toEqual([{ name: DASHBOARD_COOKIE, value: true, httpOnly: true, sameSite: 'Strict', path: '/' }]);
    expect(await page.evaluate('document.cookie')).toBe('');
    // A reload (no token in the URL now) gets in by the cookie alone.
    await page.reload();
    await waitForLive(page);
    expect(errors).toEqual([]);
    await context.close();

    // The coordinator's log (written synchronously) has one warning for this address, and never the token.
    const log = readFileSync(join(dir, 'generated.log'), 'utf8');
    expect(log.split('\n').filter((l) => l.includes('dashboard request refused'))).toHaveLength(1);
    expect(log).not.toContain(token);
  });

  it('comes from --dashboard-token-file, and --metrics-open leaves /metrics (only) open', async () => {
    // A token from a file is not shown: the line names the file (a console may end up in logs).
    const { match } = await fromFile.waitForLine(/^ {2}dashboard: (http:\/\/127\.0\.0\.1:\d+\/)\?token=<the token in (\S+)> {2}\(metrics: \S+metrics(.*)\)$/, 30_000);
    const [, base, file, metricsNote] = match as unknown as [string, string, string, string];
    expect(file).toBe(join(dir, 'token'));
    expect(fromFile.stdout()).not.toContain(FILE_TOKEN);
    expect(metricsNote).toBe('');
    expect(await status(`${base}metrics`)).toBe(200);
    expect(await status(base)).toBe(401);
    expect(await status(`${base}api/events`)).toBe(401);
    expect(await status(`${base}api/state`, { headers: { cookie: `${DASHBOARD_COOKIE}=${FILE_TOKEN}` } })).toBe(200);
  });

  it('lets the live event stream draw the charts in Chromium by the cookie', async () => {
    // A real server on 0.0.0.0, fed steps the way the coordinator emits them (a training run
    // would take longer than this test may).
    const job = compileJobOptions({ nodes: 2, steps: 100 });
    const source = Object.assign(new EventEmitter<{ action: [Action] }>(), { job, core: new CoordinatorCore(job), status: () => source.core.status() });
    const access = compileDashboardAccess({ host: '0.0.0.0', metricsOpen: false });
    const server = new DashboardServer({ coordinator: source, host: '0.0.0.0', port: 0, fallbackToFreePort: false, logger: createLogger({ name: 'test', level: 'silent' }), access });
    await server.start();
    const t0 = Date.now();
    source.emit('action', { type: 'training-started', fromStep: 0, toStep: 100, resumedFromCheckpoint: false, atMs: t0 });
    let step = 0;
    const steps = setInterval(() => {
      step += 1;
      source.emit('action', { type: 'step-completed', step, loss: 5 - step * 0.01, microBatches: 2, atMs: t0 + step * 100, commitStep: -1 });
    }, 50);
    try {
      expect(await status(server.url)).toBe(401);
      const page = await browser.newPage();
      const errors: string[] = [];
      collectPageErrors(page, errors);
      await page.goto(server.urlToOpen);
      await page.waitForFunction(`Number(document.getElementById('chart-loss-step')?.getAttribute('data-points') ?? '0') >= 5`, undefined, { timeout: 10_000, polling: 200 });
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      clearInterval(steps);
      await server.close();
    }
  });
});
