// The dashboard in a real headless Chromium (Debian's, driven by playwright-core) against a real
// local cluster: charts drawn from live data, a worker SIGKILLed by the test appearing in the
// failure timeline with its recovery time, /metrics checked by Prometheus's own parser
// (promtool) and counters that move; then the finished run's static page from its report.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHOTS, collectPageErrors, launchChromium } from '../support/chromium.ts';
import { SMALL_MODEL, isAlive, runCli, startCli, type RunningCli } from '../support/cli.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const dir = mkdtempSync(join(tmpdir(), 'ftrain-dashboard-'));

type Family = { name: string; type: string; metrics: { value?: string; labels?: Record<string, string>; count?: string; buckets?: Record<string, string> }[] };

async function scrape(base: string): Promise<{ text: string; families: Map<string, Family> }> {
  const res = await fetch(`${base}metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await res.text();
  const families = new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f]));
  return { text, families };
}

/** Sum of a counter or gauge over its label sets (only those matching `labels`). */
function total(families: Map<string, Family>, name: string, labels: Record<string, string> = {}): number {
  const f = families.get(name);
  if (!f) return 0;
  return f.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)).reduce((sum, m) => sum + Number(m.value), 0);
}

/** Prometheus's own parser and linter; our metrics must pass both (prom-client's nodejs_* gauges named *_total are its own lint exception). */
function promtoolCheck(text: string): void {
  const r = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
  const problems = `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '');
  const ours = problems.filter((l) => !/^nodejs_active_\w+_total non-counter metrics should not have "_total" suffix$/.test(l));
  expect(ours, `promtool check metrics:\n${problems.join('\n')}`).toEqual([]);
  expect(r.status === 0 || r.status === 3, `promtool exit ${r.status}`).toBe(true); // 3: lint warnings only
}

async function points(page: Page, canvasId: string): Promise<number> {
  return Number((await page.getAttribute(`#${canvasId}`, 'data-points')) ?? '0');
}

async function waitForPoints(page: Page, canvasId: string, atLeast: number, timeoutMs = 60_000): Promise<number> {
  // A string: this runs in the page, and the project's TypeScript has no DOM types.
  await page.waitForFunction(`Number(document.getElementById(${JSON.stringify(canvasId)})?.getAttribute('data-points') ?? '0') >= ${atLeast}`, undefined, {
    timeout: timeoutMs,
    polling: 200,
  });
  return points(page, canvasId);
}

describe('dashboard', () => {
  let browser: Browser;
  let run: RunningCli;
  let base = '';
  const report = join(dir, 'report.json');
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    // Installs Chromium and promtool from Debian's packages when missing.
    browser = await launchChromium();
    mkdirSync(SHOTS, { recursive: true });
    run = startCli(
      ['run', '--nodes', '3', '--steps', '2000', '--backend', 'wasm', ...SMALL_MODEL, '--dashboard-port', '0', '--report', report, '--log-file', join(dir, 'run.log')],
      { timeoutMs: 170_000 },
    );
    const { match } = await run.waitForLine(/^  dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/);
    base = match[1]!;
  });

  afterAll(async () => {
    await browser?.close();
    if (run && run.child.exitCode === null) run.child.kill('SIGKILL');
  });

  it('draws live loss and snapshot charts, shows a killed worker in the failure timeline with its recovery time, and serves metrics that move', async () => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    collectPageErrors(page, consoleErrors);
    await page.goto(base);

    // Live data reaches the charts: loss against step and time, snapshot frequency and latency.
    expect(await waitForPoints(page, 'chart-loss-step', 5)).toBeGreaterThanOrEqual(5);
    expect(await waitForPoints(page, 'chart-loss-time', 5)).toBeGreaterThanOrEqual(5);
    expect(await waitForPoints(page, 'chart-snapshot-rate', 1)).toBeGreaterThanOrEqual(1);
    expect(await waitForPoints(page, 'chart-snapshot-latency', 3)).toBeGreaterThanOrEqual(3);
    await expect.poll(() => page.locator('#nodes tbody tr[data-state="running"]').count(), { timeout: 10_000 }).toBe(3);
    expect(await page.locator('#failures tbody tr[data-method]').count()).toBe(0);
    // Every node's memory, its worker's and its snapshot manager's, in the memory table.
    await expect
      .poll(() => page.locator('#memory tbody tr[data-node-id]').evaluateAll((rows) => rows.filter((r) => Number(r.querySelector('[data-worker-rss]')?.getAttribute('data-worker-rss')) > 0 && Number(r.querySelector('[data-smp-rss]')?.getAttribute('data-smp-rss')) > 0).length), { timeout: 10_000 })
      .toBe(3);
    expect(await page.locator('#peak-ram').innerText()).toMatch(/^\d+(\.\d+)? MiB · node-\d$/);
    const before = await scrape(base);
    promtoolCheck(before.text);
    for (const part of ['worker_rss', 'smp_rss']) expect(before.families.get('ftrain_node_memory_bytes')!.metrics.filter((m) => m.labels?.part === part && Number(m.value) > 0)).toHaveLength(3);
    expect(before.families.get('ftrain_node_memory_peak_total_bytes')!.metrics).toHaveLength(3);

    // A real SIGKILL to the worker of stage 1, whose pid the cluster table shows.
    const pid = Number(await page.getAttribute('#nodes tbody tr[data-stage="1"]', 'data-pid'));
    expect(pid).toBeGreaterThan(0);
    expect(isAlive(pid)).toBe(true);
    process.kill(pid, 'SIGKILL');

    // The failure appears in the timeline with how it was recovered and how long it took.
    const row = page.locator('#failures tbody tr[data-method]').first();
    await row.waitFor({ timeout: 60_000 });
    expect(await row.getAttribute('data-stage')).toBe('1');
    expect(await row.getAttribute('data-method')).toBe('local-snapshot');
    const recoverMs = Number(await row.getAttribute('data-recover-ms'));
    expect(recoverMs).toBeGreaterThan(0);
    expect(recoverMs).toBeLessThan(30_000);
    expect(await row.innerText()).toContain((recoverMs / 1000).toFixed(2));
    expect(await waitForPoints(page, 'chart-failures', 1)).toBe(1);
    expect(await waitForPoints(page, 'chart-recovery-hist', 1)).toBeGreaterThanOrEqual(1);
    // Training goes on after the recovery, and the page keeps up.
    const lossPoints = await points(page, 'chart-loss-step');
    expect(await waitForPoints(page, 'chart-loss-step', lossPoints + 3)).toBeGreaterThan(lossPoints);
    await expect.poll(() => page.locator('#nodes tbody tr[data-state="running"]').count(), { timeout: 20_000 }).toBe(3);
    await page.screenshot({ path: join(SHOTS, 'dashboard-live.png'), fullPage: true });

    // The counters moved, and the failure and its recovery are counted.
    const after = await scrape(base);
    promtoolCheck(after.text);
    expect(total(after.families, 'ftrain_snapshots_total')).toBeGreaterThan(total(before.families, 'ftrain_snapshots_total'));
    expect(total(after.families, 'ftrain_step_completions_total')).toBeGreaterThan(total(before.families, 'ftrain_step_completions_total'));
    expect(total(after.families, 'ftrain_step')).toBeGreaterThan(total(before.families, 'ftrain_step'));
    expect(total(after.families, 'ftrain_failures_total')).toBe(1);
    expect(after.families.get('ftrain_recovery_duration_seconds')?.type).toBe('HISTOGRAM');
    // That parser folds labelled histograms together: the sample is read from the text.
    expect(after.text).toMatch(/^ftrain_recovery_duration_seconds_count\{method="local-snapshot"\} 1$/m);
    expect(after.families.get('ftrain_snapshot_duration_seconds')?.type).toBe('HISTOGRAM');
    expect(total(after.families, 'ftrain_run_phase', { phase: 'training' })).toBe(1);
    expect(consoleErrors).toEqual([]);
    await page.close();

    // Ctrl-C ends the run after the step under way; its report becomes a static page.
    run.child.kill('SIGINT');
    const res = await run.result;
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout, res.stdout.slice(-800)).toMatch(/^stopping after the current step[^]*^finished: training complete/m);
  });

  it('renders the finished run from its report as a static page with the same charts', async () => {
    const html = join(dir, 'report.html');
    const res = await runCli(['report', report, '--html', html], { timeoutMs: 60_000 });
    expect(res.code, res.stderr).toBe(0);
    expect(statSync(html).size).toBeGreaterThan(100_000); // Chart.js is inlined
    // Nothing is fetched from anywhere: no script or stylesheet by URL.
    expect(readFileSync(html, 'utf8').match(/^\s*<(script|link)\b[^>\n]*\b(src|href)="(?!data:)/gm)).toBeNull();
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => !r.url().startsWith('file:') && !r.url().startsWith('data:') && errors.push(`fetched ${r.url()}`));
    await page.goto(pathToFileURL(html).href);
    expect(await waitForPoints(page, 'chart-loss-step', 5, 10_000)).toBeGreaterThanOrEqual(5);
    expect(await waitForPoints(page, 'chart-snapshot-rate', 1, 10_000)).toBeGreaterThanOrEqual(1);
    expect(await page.locator('#failures tbody tr[data-method="local-snapshot"]').count()).toBe(1);
    expect(await page.locator('#nodes tbody tr[data-node-id]').count()).toBe(3);
    expect(await page.locator('#memory tbody tr[data-node-id]').count()).toBe(3);
    // The newest loss, numbered as the console numbers steps (its summary says "steps N").
    const stored = JSON.parse(readFileSync(report, 'utf8')) as { steps: number; losses: number[] };
    expect(await page.locator('#latest-loss').innerText()).toBe(`${stored.losses[stored.steps - 1]!.toFixed(3)} @ step ${stored.steps}`);
    await page.screenshot({ path: join(SHOTS, 'dashboard-report.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('refuses a report that is not one, and a dashboard port in use, with a clear message', async () => {
    const notReport = await runCli(['report', join(ROOT, 'package.json'), '--html', join(dir, 'x.html')]);
    expect(notReport.code).toBe(2);
    expect(notReport.stderr).toMatch(/not a run report .*expected the file a run wrote with --report/);
    // An explicit port that is taken is an error (only the default falls back to a free port).
    const busy = (await import('node:http')).createServer();
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', () => r()));
    const port = (busy.address() as { port: number }).port;
    const taken = await runCli(['run', '--nodes', '1', '--steps', '1', '--dashboard-port', String(port), '--log-file', join(dir, 'busy.log')]);
    busy.close();
    expect(taken.code).not.toBe(0);
    expect(taken.stderr).toMatch(new RegExp(`cannot serve the dashboard on 127\\.0\\.0\\.1:${port}: the port is in use; pick another with --dashboard-port`));
  });
});
