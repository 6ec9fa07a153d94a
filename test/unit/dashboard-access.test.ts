// Who may read the dashboard: open on loopback, a bearer token anywhere else (header, ?token= or
// the cookie a ?token= page load gets), tokens compared in constant time, probes always open,
// /metrics open only with --metrics-open; the flags compiled into that rule; and a real
// DashboardServer carrying it out (401 with its header and text, the cookie, one warning per
// address).

import * as crypto from 'node:crypto';
import { EventEmitter } from 'node:events';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CoordinatorCore } from '../../coordinator/core/coordinator-core.ts';
import type { Action } from '../../coordinator/core/core-events.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { OptionError } from '../../domain/errors.ts';
import {
  DASHBOARD_COOKIE,
  DashboardTokenFileError,
  MAX_WARNED_ADDRESSES,
  OPEN_ACCESS,
  REFUSAL_TEXT,
  RefusedAddresses,
  WWW_AUTHENTICATE,
  bearerToken,
  compileDashboardAccess,
  cookieTokens,
  decideAccess,
  sameToken,
  urlWithToken,
  type AccessIo,
  type AccessRequest,
  type DashboardAccess,
} from '../../observability/dashboard-access.ts';
import { DashboardServer } from '../../observability/dashboard-server.ts';
import { CoordinatorRoleView } from '../../observability/coordinator-role.ts';
import { addDashboardFlags, dashboardSettings, type DashboardFlagValues } from '../../cli/job-flags.ts';
import { coordinatorDashboardArgs } from '../../cli/ha-cluster.ts';

// The real crypto, with timingSafeEqual watched: the comparison must go through it.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const TOKEN = 'abcdefghijklmnopqrstuvwxyz012345';
const REQUIRED: DashboardAccess = { token: TOKEN, metricsOpen: false };
/** Every path of the page, its assets and its data; an unknown one too (no 404 before the token). */
const GUARDED_PATHS = ['/', '/index.html', '/app.js', '/style.css', '/standby.js', '/vendor/chart.umd.js', '/api/state', '/api/events', '/api/role', '/metrics', '/no-such-page'];

function request(path: string, creds: Partial<Omit<AccessRequest, 'path'>> = {}): AccessRequest {
  return { path, queryTokens: [], authorization: undefined, cookie: undefined, ...creds };
}

function fakeIo(files: Record<string, string> = {}): AccessIo & { generated: number } {
  const io = {
    generated: 0,
    readFile(path: string): string {
      const text = files[path];
      if (text === undefined) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
      return text;
    },
    randomToken(): string {
      io.generated += 1;
      return 'generated-token-0123456789';
    },
  };
  return io;
}

describe('compileDashboardAccess: whether a token is required, and which', () => {
  it('leaves a loopback dashboard open without a token, and makes one up anywhere else', () => {
    for (const host of ['127.0.0.1', '127.9.8.7', 'localhost', 'LOCALHOST', '::1', '[::1]', '::ffff:127.0.0.1']) {
      const io = fakeIo();
      expect(compileDashboardAccess({ host, metricsOpen: false }, io), host).toEqual({ token: null, metricsOpen: false });
      expect(io.generated).toBe(0);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.20', 'coord-host', '128.0.0.1']) {
      const io = fakeIo();
      expect(compileDashboardAccess({ host, metricsOpen: false }, io), host).toEqual({ token: 'generated-token-0123456789', metricsOpen: false });
      expect(io.generated).toBe(1);
    }
  });

  it('generates 24 random bytes as base64url, different every time', () => {
    const a = compileDashboardAccess({ host: '0.0.0.0', metricsOpen: false }).token!;
    const b = compileDashboardAccess({ host: '0.0.0.0', metricsOpen: false }).token!;
    expect(a).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(Buffer.from(a, 'base64url')).toHaveLength(24);
    expect(a).not.toBe(b);
  });

  it('requires a token given with --dashboard-token on loopback too', () => {
    expect(compileDashboardAccess({ host: '127.0.0.1', token: TOKEN, metricsOpen: true }, fakeIo())).toEqual({ token: TOKEN, metricsOpen: true });
    expect(compileDashboardAccess({ host: '0.0.0.0', token: `  ${TOKEN}\n`, metricsOpen: false }, fakeIo()).token).toBe(TOKEN);
  });

  it('reads --dashboard-token-file trimmed, and refuses a missing, empty, short or unusable one naming the flag', () => {
    const io = fakeIo({ '/s/token': `${TOKEN}\n`, '/s/empty': ' \n', '/s/short': 'abc123\n', '/s/spaces': 'has spaces inside the token\n' });
    expect(compileDashboardAccess({ host: '127.0.0.1', tokenFile: '/s/token', metricsOpen: false }, io)).toEqual({ token: TOKEN, metricsOpen: false, tokenFile: '/s/token' });
    const refusal = (tokenFile: string): OptionError => {
      try {
        compileDashboardAccess({ host: '0.0.0.0', tokenFile, metricsOpen: false }, io);
      } catch (err) {
        return err as OptionError;
      }
      throw new Error(`${tokenFile} was accepted`);
    };
    const missing = refusal('/s/missing');
    expect(missing).toBeInstanceOf(DashboardTokenFileError);
    expect(missing.field).toBe('--dashboard-token-file');
    expect(missing.message).toBe('--dashboard-token-file: cannot read /s/missing: no such file; give a file holding the token (at least 16 characters)');
    expect(refusal('/s/empty').message).toMatch(/^--dashboard-token-file: the token in \/s\/empty is empty/);
    expect(refusal('/s/short').message).toMatch(/^--dashboard-token-file: the token in \/s\/short is 6 characters; a token needs at least 16/);
    expect(refusal('/s/spaces').message).toMatch(/^--dashboard-token-file: .* has characters a bearer token cannot carry/);
    // Never a random token in place of a file that failed.
    expect(io.generated).toBe(0);
  });

  it('refuses a short --dashboard-token and both flags at once', () => {
    expect(() => compileDashboardAccess({ host: '0.0.0.0', token: 'short', metricsOpen: false }, fakeIo())).toThrow(/^--dashboard-token: the token is 5 characters; a token needs at least 16/);
    expect(() => compileDashboardAccess({ host: '0.0.0.0', token: TOKEN, tokenFile: '/s/token', metricsOpen: false }, fakeIo())).toThrow(/^--dashboard-token: give the token once/);
  });
});

describe('decideAccess: the rule for one request', () => {
  it('serves everything without a token when none is required', () => {
    for (const path of [...GUARDED_PATHS, '/leader', '/healthz']) expect(decideAccess(OPEN_ACCESS, request(path))).toEqual({ kind: 'open', why: 'no-token' });
  });

  it('refuses the page, its assets, its API, its event stream and /metrics without a token; the probes stay open', () => {
    for (const path of GUARDED_PATHS) expect(decideAccess(REQUIRED, request(path)), path).toEqual({ kind: 'refused', why: 'no-token' });
    for (const path of ['/leader', '/healthz']) expect(decideAccess(REQUIRED, request(path))).toEqual({ kind: 'open', why: 'probe' });
  });

  it('takes the token as a bearer header, without a cookie', () => {
    expect(decideAccess(REQUIRED, request('/api/state', { authorization: `Bearer ${TOKEN}` }))).toEqual({ kind: 'allowed', via: 'header', setCookie: null });
    expect(decideAccess(REQUIRED, request('/metrics', { authorization: `bearer  ${TOKEN} ` }))).toMatchObject({ kind: 'allowed', via: 'header' });
  });

  it('takes it as ?token= and answers with the cookie the page then sends', () => {
    const d = decideAccess(REQUIRED, request('/', { queryTokens: [TOKEN] }));
    expect(d).toEqual({ kind: 'allowed', via: 'query', setCookie: `${DASHBOARD_COOKIE}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/` });
    expect(decideAccess(REQUIRED, request('/api/events', { cookie: `theme=dark; ${DASHBOARD_COOKIE}=${TOKEN}` }))).toEqual({ kind: 'allowed', via: 'cookie', setCookie: null });
    // A stale cookie of an earlier run beside the current one.
    expect(decideAccess(REQUIRED, request('/app.js', { cookie: `${DASHBOARD_COOKIE}=old-token-from-before; ${DASHBOARD_COOKIE}=${TOKEN}` }))).toMatchObject({ kind: 'allowed', via: 'cookie' });
  });

  it('refuses a wrong token however it comes, and any other scheme', () => {
    const wrong = 'abcdefghijklmnopqrstuvwxyz012346';
    for (const creds of [{ authorization: `Bearer ${wrong}` }, { queryTokens: [wrong] }, { cookie: `${DASHBOARD_COOKIE}=${wrong}` }, { authorization: 'Basic dXNlcjpwYXNz' }, { authorization: `Bearer ${TOKEN.slice(0, -1)}` }, { queryTokens: [''] }]) {
      expect(decideAccess(REQUIRED, request('/', creds)), JSON.stringify(creds)).toEqual({ kind: 'refused', why: 'wrong-token' });
    }
    // Another cookie name with the right value is no credential.
    expect(decideAccess(REQUIRED, request('/', { cookie: `other=${TOKEN}` }))).toEqual({ kind: 'refused', why: 'no-token' });
  });

  it('leaves /metrics (only) open with --metrics-open', () => {
    const metricsOpen = { token: TOKEN, metricsOpen: true };
    expect(decideAccess(metricsOpen, request('/metrics'))).toEqual({ kind: 'open', why: 'metrics-open' });
    for (const path of GUARDED_PATHS.filter((p) => p !== '/metrics')) expect(decideAccess(metricsOpen, request(path)).kind, path).toBe('refused');
  });

  it('compares tokens in constant time: sha256 digests of both through timingSafeEqual', () => {
    const spy = vi.mocked(crypto.timingSafeEqual);
    spy.mockClear();
    expect(sameToken(TOKEN, TOKEN)).toBe(true);
    // Lengths differ: timingSafeEqual alone would throw; the digests are both 32 bytes.
    expect(sameToken('x', TOKEN)).toBe(false);
    expect(spy).toHaveBeenCalledTimes(2);
    for (const [a, b] of spy.mock.calls) {
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
    expect(spy.mock.calls[0]![1]).toEqual(crypto.createHash('sha256').update(TOKEN).digest());
    spy.mockClear();
    decideAccess(REQUIRED, request('/', { authorization: 'Bearer wrong', queryTokens: ['wrong'], cookie: `${DASHBOARD_COOKIE}=wrong` }));
    expect(spy).toHaveBeenCalledTimes(3);
  });

  it('parses the header and the cookie', () => {
    expect(bearerToken(`Bearer ${TOKEN}`)).toBe(TOKEN);
    expect(bearerToken('Bearer')).toBeNull();
    expect(bearerToken('Token abc')).toBeNull();
    expect(bearerToken(undefined)).toBeNull();
    expect(cookieTokens(`a=1; ${DASHBOARD_COOKIE}="${TOKEN}"; b`)).toEqual([TOKEN]);
    expect(cookieTokens(undefined)).toEqual([]);
  });

  it('puts the token in the printed URL only when it is required', () => {
    expect(urlWithToken('http://127.0.0.1:8080/', OPEN_ACCESS)).toBe('http://127.0.0.1:8080/');
    expect(urlWithToken('http://127.0.0.1:8080/', REQUIRED)).toBe(`http://127.0.0.1:8080/?token=${TOKEN}`);
    // A token from a file is not printed (a console may be kept in logs): the URL names the file.
    expect(urlWithToken('http://127.0.0.1:8080/', { ...REQUIRED, tokenFile: '/etc/t' })).toBe('http://127.0.0.1:8080/?token=<the token in /etc/t>');
    expect(new URL(urlWithToken('http://h:1/', { token: 'a+b/c=abcdefghijklmn', metricsOpen: false })).searchParams.get('token')).toBe('a+b/c=abcdefghijklmn');
  });
});

describe('RefusedAddresses: one warning per address, bounded', () => {
  it('says true once per address and forgets the oldest past its capacity', () => {
    const r = new RefusedAddresses(3);
    expect(['a', 'b', 'a', 'c', 'b'].map((x) => r.firstRefusal(x))).toEqual([true, true, false, true, false]);
    expect(r.firstRefusal('d')).toBe(true); // 'a' forgotten
    expect(r.size).toBe(3);
    expect(r.firstRefusal('a')).toBe(true);
    expect(r.firstRefusal('d')).toBe(false);
    const big = new RefusedAddresses();
    for (let i = 0; i < MAX_WARNED_ADDRESSES + 500; i++) big.firstRefusal(`10.0.${i >> 8}.${i & 255}`);
    expect(big.size).toBe(MAX_WARNED_ADDRESSES);
  });
});

describe('the dashboard flags', () => {
  function settings(args: string[]) {
    const cmd = addDashboardFlags(new Command('x').exitOverride());
    cmd.parse(args, { from: 'user' });
    return dashboardSettings(cmd, cmd.opts<DashboardFlagValues>());
  }

  it('compile into the access rule', () => {
    expect(settings([])?.access).toEqual({ token: null, metricsOpen: false });
    expect(settings(['--dashboard-host', '0.0.0.0'])?.access.token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(settings(['--dashboard-host', '0.0.0.0', '--metrics-open', '--dashboard-token', TOKEN])?.access).toEqual({ token: TOKEN, metricsOpen: true });
    const dir = mkdtempSync(join(tmpdir(), 'ftrain-token-'));
    writeFileSync(join(dir, 'token'), `${TOKEN}\n`);
    expect(settings(['--dashboard-token-file', join(dir, 'token')])?.access.token).toBe(TOKEN);
    expect(() => settings(['--dashboard-token-file', join(dir, 'nope')])).toThrow(/^--dashboard-token-file: cannot read .*: no such file/);
    expect(settings(['--no-dashboard', '--dashboard-host', '0.0.0.0'])).toBeNull();
  });

  it('say in their help when the token is needed, what stays open, and --metrics-open', () => {
    const help = addDashboardFlags(new Command('x')).helpInformation().replace(/\s+/g, ' ');
    expect(help).toMatch(/--dashboard-token <token> .*Authorization: Bearer TOKEN.*\/leader and \/healthz \(probes\) stay open/);
    expect(help).toMatch(/--dashboard-token-file <path> .*at least 16 characters/);
    expect(help).toMatch(/--metrics-open .*\/metrics \(only\)/);
  });

  it('give `ftrain run --ha`\'s coordinators the same token, as a file', () => {
    const access = { token: TOKEN, metricsOpen: true };
    expect(coordinatorDashboardArgs({ host: '0.0.0.0', port: 0, fallbackToFreePort: false, access }, 1, '/dev/shm/t')).toEqual(['--dashboard-host', '0.0.0.0', '--dashboard-port', '0', '--dashboard-token-file', '/dev/shm/t', '--metrics-open']);
    expect(coordinatorDashboardArgs({ host: '127.0.0.1', port: 8080, fallbackToFreePort: true, access: OPEN_ACCESS }, 0, null)).toEqual(['--dashboard-host', '127.0.0.1']);
  });
});

// ---------------------------------------------------------------------------------------------
// A real server on a loopback port with the token required (as --dashboard-token gives it).

const job = compileJobOptions({ nodes: 2, steps: 4 });

class FakeCoordinator extends EventEmitter<{ action: [Action] }> {
  readonly core = new CoordinatorCore(job);
  readonly job = job;
  status() {
    return this.core.status();
  }
}

describe('DashboardServer with a token', () => {
  let server: DashboardServer | null = null;
  let logLines: string[] = [];
  beforeEach(() => {
    logLines = [];
  });
  afterEach(async () => {
    await server?.close();
    server = null;
  });

  async function serve(access: DashboardAccess, role?: CoordinatorRoleView): Promise<string> {
    const logger = pino({ level: 'info' }, { write: (line: string) => void logLines.push(line) });
    server = new DashboardServer({ coordinator: new FakeCoordinator(), host: '127.0.0.1', port: 0, fallbackToFreePort: false, logger, access, ...(role ? { role } : {}) });
    await server.start();
    return server.url;
  }

  it('answers 401 with its challenge and a sentence, sets the cookie on ?token=, and then serves by cookie', async () => {
    const base = await serve(REQUIRED);
    expect(server!.urlToOpen).toBe(`${base}?token=${TOKEN}`);
    const refused = await fetch(base);
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe(WWW_AUTHENTICATE);
    expect(await refused.text()).toBe(REFUSAL_TEXT);
    expect((await fetch(base, { method: 'HEAD' })).status).toBe(401);
    expect((await fetch(`${base}api/state`, { method: 'POST' })).status).toBe(401);

    const page = await fetch(`${base}?token=${TOKEN}`);
    expect(page.status).toBe(200);
    const cookie = page.headers.get('set-cookie')!;
    expect(cookie).toBe(`${DASHBOARD_COOKIE}=${TOKEN}; HttpOnly; SameSite=Strict; Path=/`);
    const state = await fetch(`${base}api/state`, { headers: { cookie: cookie.split(';')[0]! } });
    expect(state.status).toBe(200);
    expect(state.headers.get('set-cookie')).toBeNull();
    expect((await fetch(`${base}metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${base}metrics`)).status).toBe(401);
    expect((await fetch(`${base}leader`)).status).toBe(200);
    expect((await fetch(`${base}healthz`)).status).toBe(200);
  });

  it('warns once per remote address, and never logs a token', async () => {
    const base = await serve(REQUIRED);
    const wrong = 'zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz';
    for (let i = 0; i < 5; i++) expect((await fetch(`${base}api/events?token=${wrong}`)).status).toBe(401);
    expect((await fetch(`${base}?token=${TOKEN}`)).status).toBe(200);
    const warnings = logLines.map((l) => JSON.parse(l) as { level: number; msg: string; remote: string; path: string; why: string }).filter((l) => l.level === 40);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ remote: '127.0.0.1', path: '/api/events', why: 'wrong-token' });
    expect(logLines.join('')).not.toContain(wrong);
    expect(logLines.join('')).not.toContain(TOKEN);
  });

  it('serves /metrics alone without the token under --metrics-open', async () => {
    const base = await serve({ token: TOKEN, metricsOpen: true });
    expect((await fetch(`${base}metrics`)).status).toBe(200);
    expect((await fetch(`${base}api/state`)).status).toBe(401);
  });

  it('guards a standby\'s page and API too; its /leader probe stays open', async () => {
    const role = new CoordinatorRoleView('c2');
    role.role({ leading: false, leader: { id: 'c1', address: '10.0.0.5:7070', term: 7, dashboardUrl: 'http://10.0.0.5:8080/' } });
    const base = await serve(REQUIRED, role);
    for (const path of ['', 'index.html', 'api/state', 'api/events', 'api/role', 'standby.js']) expect((await fetch(`${base}${path}`)).status, path).toBe(401);
    const page = await fetch(base, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('data-role="standby"');
    expect((await fetch(`${base}leader`)).status).toBe(503);
  });

  it('is never open off loopback', () => {
    const logger = pino({ level: 'silent' });
    expect(() => new DashboardServer({ coordinator: new FakeCoordinator(), host: '0.0.0.0', port: 0, fallbackToFreePort: false, logger })).toThrow(/not loopback\) needs a token/);
  });
});
