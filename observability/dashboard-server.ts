// The coordinator's HTTP side: the dashboard page (dashboard/), its live data as server-sent
// events, the data as JSON, and Prometheus metrics. Reads the coordinator's status and actions;
// never changes anything. With a store, the dashboard is the leader's: a standby serves a page
// that names the leader and links to its dashboard (standby-page.ts), and `/leader` tells a
// readiness probe which of them leads. Off loopback every request but the probes needs the
// dashboard's token (dashboard-access.ts).

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Logger } from '../common/logging.ts';
import { packagePath } from '../common/package-root.ts';
import type { CoordinatorStatus } from '../coordinator/core/coordinator-status.ts';
import type { Action } from '../coordinator/core/core-events.ts';
import { OptionError } from '../domain/errors.ts';
import type { JobOptions } from '../domain/job-options.ts';
import {
  DASHBOARD_SCHEMA,
  MAX_DASHBOARD_POINTS,
  dashboardJob,
  dashboardLossPoint,
  dashboardCoordinator,
  dashboardSnapshot,
  liveStatus,
  secondsSince,
  type DashboardAllReduce,
  type DashboardData,
  type DashboardLossPoint,
  type DashboardSnapshot,
  type DashboardUpdate,
} from './dashboard-data.ts';
import { CoordinatorMetrics } from './metrics.ts';
import { SINGLE_COORDINATOR, decides, type CoordinatorRoleState, type CoordinatorRoleView } from './coordinator-role.ts';
import { leaderProbe, standbyAnswer, standbyPageHtml } from './standby-page.ts';
import { OPEN_ACCESS, REFUSAL_TEXT, RefusedAddresses, TOKEN_PARAM, WWW_AUTHENTICATE, decideAccess, urlWithToken, type DashboardAccess } from './dashboard-access.ts';
import { isLoopbackHost } from '../domain/host-port.ts';
import type { SnapshotCommit } from '../coordinator/core/core-events.ts';

/** How often connected pages are sent what changed (when something did). */
export const DASHBOARD_PUSH_MS = 250;
/** Longest a connected page goes without an update (its clock and status stay current). */
export const DASHBOARD_IDLE_PUSH_MS = 1000;
export const DEFAULT_DASHBOARD_PORT = 8080;

export const DASHBOARD_DIR = packagePath('dashboard');

/** The Chart.js build the page loads as a plain script (global `Chart`), from node_modules: no CDN. */
export function chartLibraryPath(): string {
  const main = createRequire(import.meta.url).resolve('chart.js');
  return join(dirname(main), 'chart.umd.js');
}

/** The files of the page, by URL path. */
export const DASHBOARD_ASSETS: Readonly<Record<string, { readonly file: () => string; readonly type: string }>> = {
  '/': { file: () => join(DASHBOARD_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/index.html': { file: () => join(DASHBOARD_DIR, 'index.html'), type: 'text/html; charset=utf-8' },
  '/app.js': { file: () => join(DASHBOARD_DIR, 'app.js'), type: 'text/javascript; charset=utf-8' },
  '/style.css': { file: () => join(DASHBOARD_DIR, 'style.css'), type: 'text/css; charset=utf-8' },
  '/standby.js': { file: () => join(DASHBOARD_DIR, 'standby.js'), type: 'text/javascript; charset=utf-8' },
  '/vendor/chart.umd.js': { file: chartLibraryPath, type: 'text/javascript; charset=utf-8' },
};

/**
 * Thrown when the dashboard cannot be served on its address. An option error (exit 2 in the CLI)
 * of the flag to change: --dashboard-host when the address is not this machine's, else --dashboard-port.
 */
export class DashboardListenError extends OptionError {
  constructor(
    readonly host: string,
    readonly port: number,
    options: { cause: unknown },
  ) {
    const code = (options.cause as NodeJS.ErrnoException).code;
    const hostWrong = code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN';
    const why =
      code === 'EADDRINUSE' ? 'the port is in use'
      : code === 'EACCES' ? 'permission denied (ports below 1024 need privileges)'
      : code === 'EADDRNOTAVAIL' ? 'no network interface of this machine has that address'
      : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve'
      : String((options.cause as Error).message);
    const todo = hostWrong ? 'give an address of this machine with --dashboard-host (0.0.0.0: every interface)' : 'pick another with --dashboard-port (0: any free port)';
    super(hostWrong ? '--dashboard-host' : '--dashboard-port', `cannot serve the dashboard on ${host}:${port}: ${why}; ${todo} or turn it off with --no-dashboard`);
    this.cause = options.cause;
  }
}

/** What the dashboard reads: the coordinator's job, its status and its actions (never its state). */
export interface RunSource {
  readonly job: JobOptions;
  status(): CoordinatorStatus;
  on(event: 'action', listener: (a: Action) => void): unknown;
}

export interface DashboardServerOptions {
  readonly coordinator: RunSource;
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** When the port is taken, serve on any free port instead of failing (the default port only). */
  readonly fallbackToFreePort: boolean;
  readonly logger: Logger;
  readonly now?: () => number;
  /** With a store: whether this coordinator leads, and who does; absent: it runs alone. */
  readonly role?: CoordinatorRoleView;
  /** Who may read it (compileDashboardAccess); absent: open, which only a loopback host may be. */
  readonly access?: DashboardAccess;
}

export class DashboardServer {
  readonly metrics: CoordinatorMetrics;
  port = 0;
  private readonly http: Server;
  private readonly clients = new Set<ServerResponse>();
  private readonly now: () => number;
  private originMs: number | null = null;
  private readonly loss = new RecentSeries<{ step: number; atMs: number; loss: number }>(MAX_DASHBOARD_POINTS);
  private readonly snapshots = new RecentSeries<SnapshotCommit>(MAX_DASHBOARD_POINTS);
  private readonly allReduce = new RecentSeries<{ stage: number; step: number; atMs: number; ms: number }>(MAX_DASHBOARD_POINTS);
  /** Counts of loss points, snapshots and all-reduce times every connected page has. */
  private lossSent = 0;
  private snapshotsSent = 0;
  private allReduceSent = 0;
  private dirty = false;
  private lastPushMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private readonly access: DashboardAccess;
  private readonly refused = new RefusedAddresses();

  constructor(private readonly options: DashboardServerOptions) {
    this.now = options.now ?? Date.now;
    this.access = options.access ?? OPEN_ACCESS;
    // compileDashboardAccess never leaves a non-loopback dashboard open; nor may any other caller.
    if (this.access.token === null && !isLoopbackHost(options.host)) throw new Error(`a dashboard on ${options.host} (not loopback) needs a token`);
    this.metrics = new CoordinatorMetrics(() => options.coordinator.status(), () => this.role());
    // A leader that stands by now serves no dashboard: its pages load the standby page instead.
    options.role?.onChange((state, before) => {
      if (decides(before) && !decides(state)) this.sendStandby();
      else this.dirty = true;
    });
    options.coordinator.on('action', (a) => {
      if (a.type === 'training-started' && this.originMs === null) this.originMs = a.atMs;
      if (a.type === 'step-completed' && Number.isFinite(a.loss)) this.loss.push({ step: a.step, atMs: a.atMs, loss: a.loss });
      if (a.type === 'snapshot-committed') this.snapshots.push(a.snapshot);
      if (a.type === 'step-reported' && a.allReduceMs > 0) this.allReduce.push({ stage: a.stage, step: a.step, atMs: this.now(), ms: a.allReduceMs });
      this.metrics.onAction(a);
      if (a.type !== 'log' && a.type !== 'send') this.dirty = true;
    });
    this.http = createServer((req, res) => {
      this.route(req, res).catch((err: unknown) => {
        // The path only: the query may hold a token.
        options.logger.error({ err, path: requestPath(req) }, 'dashboard request failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end('internal error\n');
      });
    });
  }

  private role(): CoordinatorRoleState {
    return this.options.role?.current() ?? SINGLE_COORDINATOR;
  }

  /** The live parts of the page's data, with the coordinator's role. */
  private live(): ReturnType<typeof liveStatus> {
    const l = liveStatus(this.options.coordinator.status(), this.originMs, this.now());
    return { ...l, status: { ...l.status, coordinator: dashboardCoordinator(this.role()) } };
  }

  /** Tells connected pages this coordinator stands by (they reload into the standby page) and ends their streams. */
  private sendStandby(): void {
    for (const res of this.clients) res.end(`event: standby\ndata: ${JSON.stringify(this.role())}\n\n`);
    this.clients.clear();
  }

  /** Binds the port; resolves with the port served. */
  async start(): Promise<number> {
    const { host, port, fallbackToFreePort } = this.options;
    try {
      this.port = await this.listen(host, port);
    } catch (err) {
      if (!(fallbackToFreePort && (err as NodeJS.ErrnoException).code === 'EADDRINUSE')) throw new DashboardListenError(host, port, { cause: err });
      this.port = await this.listen(host, 0);
    }
    this.timer = setInterval(() => this.pushIfDue(), DASHBOARD_PUSH_MS);
    this.timer.unref();
    return this.port;
  }

  /** The dashboard's address, without the token (it is published with the leadership). */
  get url(): string {
    const host = this.options.host === '0.0.0.0' || this.options.host === '::' ? '127.0.0.1' : this.options.host;
    return `http://${host.includes(':') ? `[${host}]` : host}:${this.port}/`;
  }

  /** The address to open in a browser: `url` with `?token=` when the token is required. Printed once, at start. */
  get urlToOpen(): string {
    return urlWithToken(this.url, this.access);
  }

  /** Whether requests need the token (and so /metrics too, unless --metrics-open). */
  get tokenRequired(): { readonly page: boolean; readonly metrics: boolean } {
    const page = this.access.token !== null;
    return { page, metrics: page && !this.access.metricsOpen };
  }

  /** Sends connected pages the final state, ends their streams and stops serving. */
  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.push();
    for (const res of this.clients) res.end('event: end\ndata: {}\n\n');
    this.clients.clear();
    await new Promise<void>((resolve) => this.http.close(() => resolve()));
    this.http.closeAllConnections();
  }

  /**
   * The whole page's data. `upTo`: the counts of loss points and snapshots to include (a page that
   * subscribes gets what the others have; the next push brings the rest); default: all.
   */
  data(upTo: { loss: number; snapshots: number; allReduce: number } = { loss: this.loss.total, snapshots: this.snapshots.total, allReduce: this.allReduce.total }): DashboardData {
    const source = this.options.coordinator;
    return {
      schema: DASHBOARD_SCHEMA,
      live: true,
      job: dashboardJob(source.job),
      ...this.live(),
      loss: this.lossPoints(this.loss.between(0, upTo.loss)),
      snapshots: this.snapshotPoints(this.snapshots.between(0, upTo.snapshots)),
      allReduce: this.allReducePoints(this.allReduce.between(0, upTo.allReduce)),
    };
  }

  private allReducePoints(points: readonly { stage: number; step: number; atMs: number; ms: number }[]): DashboardAllReduce[] {
    const origin = this.originMs ?? 0;
    return points.map((p) => ({ stage: p.stage, step: p.step + 1, seconds: secondsSince(p.atMs, origin), ms: p.ms }));
  }

  private listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.http.once('error', onError);
      this.http.listen(port, host, () => {
        this.http.off('error', onError);
        const addr = this.http.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  }

  private lossPoints(points: readonly { step: number; atMs: number; loss: number }[]): DashboardLossPoint[] {
    const origin = this.originMs ?? 0;
    return points.map((p) => dashboardLossPoint(p.step, secondsSince(p.atMs, origin), p.loss));
  }

  private snapshotPoints(commits: readonly SnapshotCommit[]): DashboardSnapshot[] {
    const origin = this.originMs ?? 0;
    return commits.map((c) => dashboardSnapshot(c, origin));
  }

  private pushIfDue(): void {
    if (this.clients.size === 0) return;
    if (this.dirty || this.now() - this.lastPushMs >= DASHBOARD_IDLE_PUSH_MS) this.push();
  }

  /** Sends every connected page what changed since the last push. */
  private push(): void {
    const update: DashboardUpdate = {
      ...this.live(),
      loss: this.lossPoints(this.loss.between(this.lossSent, this.loss.total)),
      snapshots: this.snapshotPoints(this.snapshots.between(this.snapshotsSent, this.snapshots.total)),
      allReduce: this.allReducePoints(this.allReduce.between(this.allReduceSent, this.allReduce.total)),
    };
    this.lossSent = this.loss.total;
    this.snapshotsSent = this.snapshots.total;
    this.allReduceSent = this.allReduce.total;
    this.dirty = false;
    this.lastPushMs = this.now();
    const frame = `event: update\ndata: ${JSON.stringify(update)}\n\n`;
    for (const res of this.clients) res.write(frame);
  }

  /** Answers 401 unless the request may be served; sets the cookie a valid `?token=` earns. True: go on. */
  private admit(req: IncomingMessage, res: ServerResponse, url: URL): boolean {
    const decision = decideAccess(this.access, {
      path: url.pathname,
      queryTokens: url.searchParams.getAll(TOKEN_PARAM),
      authorization: req.headers.authorization,
      cookie: req.headers.cookie,
    });
    if (decision.kind === 'allowed' && decision.setCookie) res.setHeader('set-cookie', decision.setCookie);
    if (decision.kind !== 'refused') return true;
    const remote = req.socket.remoteAddress ?? 'unknown';
    if (this.refused.firstRefusal(remote)) {
      this.options.logger.warn({ remote, path: url.pathname, why: decision.why }, 'dashboard request refused: no valid token (not logged again for this address)');
    }
    res.writeHead(401, { 'www-authenticate': WWW_AUTHENTICATE, 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : REFUSAL_TEXT);
    return false;
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const path = url.pathname;
    if (!this.admit(req, res, url)) return;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
      res.end(`${req.method} is not served here; use GET\n`);
      return;
    }
    const role = this.role();
    if (role.role === 'standby') {
      switch (path) {
        case '/':
        case '/index.html':
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
          res.end(req.method === 'HEAD' ? undefined : standbyPageHtml(role));
          return;
        case '/api/state':
          res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
          res.end(JSON.stringify(standbyAnswer(role)));
          return;
        case '/api/events':
          // A dashboard page open on this coordinator when it stood by: it reloads into the standby page.
          res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
          res.end(`event: standby\ndata: ${JSON.stringify(standbyAnswer(role))}\n\n`);
          return;
        default:
          break;
      }
    }
    const asset = DASHBOARD_ASSETS[path];
    if (asset) {
      const body = readFileSync(asset.file());
      res.writeHead(200, { 'content-type': asset.type, 'cache-control': 'no-cache', 'content-length': body.length });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    switch (path) {
      case '/metrics': {
        const body = await this.metrics.text();
        res.writeHead(200, { 'content-type': this.metrics.contentType });
        res.end(body);
        return;
      }
      case '/api/state':
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
        res.end(JSON.stringify(this.data()));
        return;
      case '/api/events':
        this.openEvents(res);
        return;
      case '/api/role':
        // What the standby page polls: 200 whatever the role (a 503 would be a console error each time).
        res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-cache' });
        res.end(JSON.stringify(role.role === 'standby' ? standbyAnswer(role) : role));
        return;
      case '/leader': {
        const probe = leaderProbe(role);
        res.writeHead(probe.status, { 'content-type': 'text/plain', 'cache-control': 'no-cache' });
        res.end(`${probe.text}\n`);
        return;
      }
      case '/healthz':
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end(`ok ${this.options.coordinator.status().phase}\n`);
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end(`no such page: ${path}; the dashboard is at /, metrics at /metrics\n`);
    }
  }

  /** A page's stream: the whole data first, then every push (see DashboardUpdate). */
  private openEvents(res: ServerResponse): void {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    res.write(`retry: 1000\nevent: state\ndata: ${JSON.stringify(this.data({ loss: this.lossSent, snapshots: this.snapshotsSent, allReduce: this.allReduceSent }))}\n\n`);
    this.clients.add(res);
    res.on('close', () => this.clients.delete(res));
  }
}

/** The newest `capacity` items of an append-only series, addressed by their count since the start. */
export class RecentSeries<T> {
  private items: T[] = [];
  /** Items ever pushed. */
  total = 0;

  constructor(private readonly capacity: number) {}

  push(item: T): void {
    this.items.push(item);
    this.total += 1;
    // Trim in batches: one copy per tenth of the capacity, not one per push.
    if (this.items.length > this.capacity + Math.ceil(this.capacity / 10)) this.items = this.items.slice(-this.capacity);
  }

  /** Items number `from` (inclusive) to `to` (exclusive) that are still kept, at most `capacity`. */
  between(from: number, to: number): T[] {
    const first = this.total - this.items.length;
    const start = Math.max(from, first, to - this.capacity) - first;
    return this.items.slice(Math.max(0, start), Math.max(0, to - first));
  }
}

/** A request's path, without its query (which may hold a token). */
function requestPath(req: IncomingMessage): string {
  try {
    return new URL(req.url ?? '/', 'http://localhost').pathname;
  } catch {
    return '(unparsable)';
  }
}
