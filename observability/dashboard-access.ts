// Who may read the dashboard. On a loopback address it is open, as only this machine reaches it;
// on any other address every request must carry the dashboard's bearer token, as an
// `Authorization: Bearer` header, a `?token=` query parameter, or the cookie a page load with a
// valid `?token=` is answered with (the page's own requests and its EventSource, which cannot set
// headers, then carry it). `/leader` and `/healthz` stay open: Kubernetes probes cannot send a
// secret, and they say only who leads and that the process serves. `--metrics-open` leaves
// `/metrics` open as well, for a Prometheus that sends no token.
//
// The decision is a pure function of the access settings and the request's credentials; the
// server only carries it out.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { OptionError } from '../domain/errors.ts';
import { isLoopbackHost } from '../domain/host-port.ts';

/** The cookie that carries the token for the page's own requests. */
export const DASHBOARD_COOKIE = 'ftrain_dashboard';
/** The query parameter of the URL printed at start. */
export const TOKEN_PARAM = 'token';
/** Shortest token accepted from --dashboard-token or --dashboard-token-file. */
export const MIN_TOKEN_CHARS = 16;
/** Random bytes of a generated token (base64url: 32 characters). */
export const GENERATED_TOKEN_BYTES = 24;
/** Remote addresses whose refusal was logged, remembered at most (oldest forgotten first). */
export const MAX_WARNED_ADDRESSES = 1000;
/** Served without a token: the readiness and liveness probes. */
export const PROBE_PATHS: ReadonlySet<string> = new Set(['/leader', '/healthz']);
export const METRICS_PATH = '/metrics';

export const WWW_AUTHENTICATE = 'Bearer realm="ftrain"';
export const REFUSAL_TEXT = 'this dashboard needs its token: open the URL ftrain printed at start, which carries ?token=..., or send Authorization: Bearer TOKEN\n';

/**
 * RFC 6750's b64token: what a bearer header can carry, and safe unquoted in a cookie and (encoded)
 * in a URL. Base64, base64url and hex tokens all fit.
 */
const TOKEN_SYNTAX = /^[A-Za-z0-9\-._~+/]+=*$/;

/** The compiled access rule of one dashboard server. */
export interface DashboardAccess {
  /** null: open to anyone who reaches the address (loopback without --dashboard-token). */
  readonly token: string | null;
  /** `/metrics` is served without the token. */
  readonly metricsOpen: boolean;
  /**
   * The file the token came from (`--dashboard-token-file`): the printed URL then names the file
   * instead of showing the token, which a console kept in logs (a pod's) would give away.
   */
  readonly tokenFile?: string;
}

export const OPEN_ACCESS: DashboardAccess = Object.freeze({ token: null, metricsOpen: false });

/** The dashboard flags that decide access, as given. */
export interface RawDashboardAccess {
  readonly host: string;
  readonly token?: string;
  readonly tokenFile?: string;
  readonly metricsOpen: boolean;
}

/** What compiling reads and draws: the real file system and random bytes unless a test says otherwise. */
export interface AccessIo {
  readFile(path: string): string;
  randomToken(): string;
}

const REAL_IO: AccessIo = {
  readFile: (path) => readFileSync(path, 'utf8'),
  randomToken: () => randomBytes(GENERATED_TOKEN_BYTES).toString('base64url'),
};

/** Thrown when --dashboard-token-file cannot be read; an option error naming that flag. */
export class DashboardTokenFileError extends OptionError {
  constructor(
    readonly path: string,
    options: { cause: unknown },
  ) {
    const code = (options.cause as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'it is a directory' : String((options.cause as Error).message);
    super('--dashboard-token-file', `cannot read ${path}: ${why}; give a file holding the token (at least ${MIN_TOKEN_CHARS} characters)`);
    this.cause = options.cause;
  }
}

function checkToken(field: string, token: string, from: string): string {
  if (token === '') throw new OptionError(field, `${from} is empty; give a token of at least ${MIN_TOKEN_CHARS} characters (or neither flag: a random one is made)`);
  if (token.length < MIN_TOKEN_CHARS) throw new OptionError(field, `${from} is ${token.length} characters; a token needs at least ${MIN_TOKEN_CHARS} (e.g. openssl rand -hex 24)`);
  if (!TOKEN_SYNTAX.test(token)) throw new OptionError(field, `${from} has characters a bearer token cannot carry; use letters, digits and - . _ ~ + / (then = at the end), e.g. base64 or hex`);
  return token;
}

/**
 * The access rule from the flags. A token given (either flag) is always required; without one,
 * a loopback host is open and any other gets a random token (the CLI prints it in the URL).
 */
export function compileDashboardAccess(raw: RawDashboardAccess, io: AccessIo = REAL_IO): DashboardAccess {
  if (raw.token !== undefined && raw.tokenFile !== undefined) throw new OptionError('--dashboard-token', 'give the token once: --dashboard-token or --dashboard-token-file, not both');
  let token: string | null = null;
  if (raw.token !== undefined) token = checkToken('--dashboard-token', raw.token.trim(), 'the token');
  else if (raw.tokenFile !== undefined) {
    let text: string;
    try {
      text = io.readFile(raw.tokenFile);
    } catch (err) {
      throw new DashboardTokenFileError(raw.tokenFile, { cause: err });
    }
    token = checkToken('--dashboard-token-file', text.trim(), `the token in ${raw.tokenFile}`);
    return { token, metricsOpen: raw.metricsOpen, tokenFile: raw.tokenFile };
  } else if (!isLoopbackHost(raw.host)) token = io.randomToken();
  return { token, metricsOpen: raw.metricsOpen };
}

/** A request's path and the credentials it may carry (raw header values; query already parsed). */
export interface AccessRequest {
  readonly path: string;
  /** Every `?token=` value of the URL. */
  readonly queryTokens: readonly string[];
  readonly authorization: string | undefined;
  readonly cookie: string | undefined;
}

export type AccessDecision =
  /** Served without a token: `why` says which rule let it through. */
  | { readonly kind: 'open'; readonly why: 'no-token' | 'probe' | 'metrics-open' }
  /** The token matched. `setCookie`: the Set-Cookie header to answer with (a valid `?token=`), else null. */
  | { readonly kind: 'allowed'; readonly via: 'query' | 'header' | 'cookie'; readonly setCookie: string | null }
  /** 401: no credential at all, or none that matched. */
  | { readonly kind: 'refused'; readonly why: 'no-token' | 'wrong-token' };

/**
 * Equal tokens, in time independent of where they differ: both are hashed to 32 bytes first, so
 * timingSafeEqual compares equal lengths and the length of the expected token does not show.
 */
export function sameToken(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given, 'utf8').digest();
  const b = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(a, b);
}

/** The token of an `Authorization: Bearer TOKEN` header (scheme in any case); null for any other. */
export function bearerToken(authorization: string | undefined): string | null {
  const m = /^\s*bearer\s+(\S+)\s*$/i.exec(authorization ?? '');
  return m ? m[1]! : null;
}

/** Every value of the dashboard's cookie in a Cookie header (a browser may send more than one). */
export function cookieTokens(cookie: string | undefined): string[] {
  if (!cookie) return [];
  const out: string[] = [];
  for (const part of cookie.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== DASHBOARD_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    out.push(value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value);
  }
  return out;
}

/** The Set-Cookie header that hands the token to the page (no Secure: the dashboard is plain http). */
export function sessionCookie(token: string): string {
  return `${DASHBOARD_COOKIE}=${token}; HttpOnly; SameSite=Strict; Path=/`;
}

/** Whether the request may be served, and how it proved it. */
export function decideAccess(access: DashboardAccess, req: AccessRequest): AccessDecision {
  const token = access.token;
  if (token === null) return { kind: 'open', why: 'no-token' };
  if (PROBE_PATHS.has(req.path)) return { kind: 'open', why: 'probe' };
  if (access.metricsOpen && req.path === METRICS_PATH) return { kind: 'open', why: 'metrics-open' };
  // A valid ?token= first: only it is answered with the cookie.
  const header = bearerToken(req.authorization);
  const cookies = cookieTokens(req.cookie);
  if (req.queryTokens.some((t) => sameToken(t, token))) return { kind: 'allowed', via: 'query', setCookie: sessionCookie(token) };
  if (header !== null && sameToken(header, token)) return { kind: 'allowed', via: 'header', setCookie: null };
  if (cookies.some((t) => sameToken(t, token))) return { kind: 'allowed', via: 'cookie', setCookie: null };
  const given = req.queryTokens.length > 0 || header !== null || cookies.length > 0 || (req.authorization ?? '') !== '';
  return { kind: 'refused', why: given ? 'wrong-token' : 'no-token' };
}

/**
 * The remote addresses already warned about, so a refused address is logged once, not once per
 * request (a page retrying its stream would fill the log). Bounded: past `capacity` the oldest
 * is forgotten and would be logged again.
 */
export class RefusedAddresses {
  private readonly seen = new Set<string>();

  constructor(private readonly capacity = MAX_WARNED_ADDRESSES) {}

  /** True the first time an address is refused (while remembered). */
  firstRefusal(address: string): boolean {
    if (this.seen.has(address)) return false;
    if (this.seen.size >= this.capacity) {
      const oldest = this.seen.values().next();
      if (!oldest.done) this.seen.delete(oldest.value);
    }
    this.seen.add(address);
    return true;
  }

  get size(): number {
    return this.seen.size;
  }
}

/** What the printed URL shows for a token read from `file`. */
export function tokenPlaceholder(file: string): string {
  return `<the token in ${file}>`;
}

/** The printed URL with the token for a browser to open; the URL unchanged when the dashboard is open. */
export function urlWithToken(url: string, access: DashboardAccess): string {
  if (access.token === null) return url;
  const u = new URL(url);
  if (access.tokenFile !== undefined) return `${u.href}${u.search ? '&' : '?'}${TOKEN_PARAM}=${tokenPlaceholder(access.tokenFile)}`;
  u.searchParams.set(TOKEN_PARAM, access.token);
  return u.href;
}
