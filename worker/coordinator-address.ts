// Finding the coordinator: its host name resolved before anything starts (a name that does not
// exist fails at once), what a failed connection attempt says in a few words, the errors a node
// that cannot join fails with, and where its heartbeats go (the coordinator's heartbeat desk).

import * as grpc from '@grpc/grpc-js';
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { Backoff, type BackoffOptions } from '../domain/backoff.ts';
import { bareHost, hostOf } from '../domain/host-port.ts';

/** How long a host name may keep failing to resolve with a temporary error before the node gives up. */
export const RESOLVE_TIMEOUT_MS = 10_000;
/** Delays between lookups of a name whose resolution failed temporarily (EAI_AGAIN). */
export const RESOLVE_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 2000, factor: 2 };
/** lookup() errors that say the name does not exist, as opposed to a resolver that failed this time. */
const NAME_NOT_FOUND = new Set(['ENOTFOUND', 'EAI_NONAME', 'EAI_NODATA', 'ENODATA', 'EAI_FAIL']);

/** Where heartbeats go: the heartbeat desk's port on the host the coordinator was reached at (port 0: the coordinator's own address). */
export function heartbeatAddress(coordinator: string, deskPort: number): string {
  return deskPort > 0 ? `${coordinator.slice(0, coordinator.lastIndexOf(':'))}:${deskPort}` : coordinator;
}

/** Thrown when the coordinator's host name does not resolve, or kept failing to for `waitedMs`. */
export class CoordinatorUnresolvedError extends Error {
  override readonly name = 'CoordinatorUnresolvedError';
  constructor(
    readonly host: string,
    /** The resolver's error code (ENOTFOUND, EAI_AGAIN, ...), or `timeout`. */
    readonly code: string,
    /** 0 when the name was found not to exist at once. */
    readonly waitedMs: number,
    options?: { cause?: unknown },
  ) {
    super(
      waitedMs === 0
        ? `the coordinator's host name "${host}" does not resolve (${code}); check the host in --coordinator`
        : `the coordinator's host name "${host}" could not be resolved for ${seconds(waitedMs)} s (${code}: the resolver failed each time); check the host in --coordinator and this machine's DNS`,
      options,
    );
  }
}

/** Thrown when nothing answered at the coordinator's address for the whole connect timeout. */
export class CoordinatorUnreachableError extends Error {
  override readonly name = 'CoordinatorUnreachableError';
  constructor(
    readonly address: string,
    readonly waitedMs: number,
    /** Why the last attempt failed: `connection refused`, `timed out`, ... */
    readonly lastFailure: string,
    options?: { cause?: unknown },
  ) {
    super(`the coordinator at ${address} could not be reached for ${seconds(waitedMs)} s (${lastFailure}); is it running, and is the address right?`, options);
  }
}

/** One failed registration attempt while the coordinator cannot be reached, for a progress line. */
export interface RegisterWait {
  readonly address: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  /** Why it failed: `connection refused`, `timed out`, ... */
  readonly failure: string;
  readonly waitedMs: number;
  readonly timeoutMs: number;
  /** The pause before the next attempt. */
  readonly retryInMs: number;
}

/** A temporary resolver failure that will be retried, for a progress line. */
export interface ResolveWait {
  readonly host: string;
  readonly code: string;
  readonly waitedMs: number;
  readonly timeoutMs: number;
  readonly retryInMs: number;
}

/** Milliseconds as seconds with one decimal, for messages. */
export function seconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/**
 * Resolves the host of `address` once, before anything is started, so that a name that does not
 * exist fails at once instead of after the connect timeout. A temporary failure (EAI_AGAIN, or a
 * lookup that hangs) is retried with backoff for at most `timeoutMs`. IP literals pass at once.
 * Throws CoordinatorUnresolvedError.
 */
export async function resolveCoordinatorHost(
  address: string,
  options: { timeoutMs?: number; backoff?: BackoffOptions; onWait?: (w: ResolveWait) => void; lookup?: (host: string) => Promise<unknown> } = {},
): Promise<void> {
  const host = bareHost(hostOf(address));
  if (isIP(host) !== 0) return;
  const timeoutMs = options.timeoutMs ?? RESOLVE_TIMEOUT_MS;
  const find = options.lookup ?? ((h: string) => lookup(h));
  const backoff = new Backoff(options.backoff ?? RESOLVE_BACKOFF);
  const started = Date.now();
  for (;;) {
    const leftMs = timeoutMs - (Date.now() - started);
    let timer: NodeJS.Timeout | undefined;
    // A lookup cannot be cancelled (getaddrinfo on libuv's pool): one that hangs is outwaited.
    const outcome = await Promise.race([
      find(host).then(
        () => null,
        (err: NodeJS.ErrnoException) => err,
      ),
      new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), Math.max(1, leftMs)))),
    ]);
    clearTimeout(timer);
    if (outcome === null) return;
    const code = outcome === 'timeout' ? 'timeout' : (outcome.code ?? outcome.message);
    if (outcome !== 'timeout' && NAME_NOT_FOUND.has(code)) throw new CoordinatorUnresolvedError(host, code, 0, { cause: outcome });
    const waitedMs = Date.now() - started;
    if (waitedMs >= timeoutMs) throw new CoordinatorUnresolvedError(host, code, waitedMs, { cause: outcome });
    const retryInMs = Math.min(backoff.next(), timeoutMs - waitedMs);
    options.onWait?.({ host, code, waitedMs, timeoutMs, retryInMs });
    await new Promise((r) => setTimeout(r, retryInMs));
  }
}

/** What a failed connection attempt says, in a few words; null when it is not about connecting. */
/**
 * A connection that failed in its TLS handshake, or a plaintext one a TLS server closed: what
 * is wrong, in a sentence that says what to fix; null for any other failure. Not transient: a
 * node that gets one gives up at once. `tls`: this node connects with TLS (`--tls-dir`).
 */
export function handshakeFailure(err: grpc.ServiceError, address: string, tls: boolean): string | null {
  if (err.code !== grpc.status.UNAVAILABLE) return null;
  const text = `${err.details ?? ''} ${err.message}`;
  if (tls) {
    if (/self[- ]signed certificate|unable to verify|unable to get (local )?issuer|certificate verify failed|CERT_/i.test(text)) {
      return `the coordinator at ${address} shows a certificate this node's CA did not sign: ca.crt in --tls-dir must be the job's (the one that issued the coordinator's certificate)`;
    }
    if (/alert (unknown ca|bad certificate|certificate required|certificate unknown|decrypt error)|SSL alert number (42|46|48|116)/i.test(text)) {
      return `the coordinator at ${address} refused this node's certificate: it must be issued by the job's CA (\`ftrain certs issue\` where its ca.key is)`;
    }
    if (/wrong version number|packet length too long|http request/i.test(text)) return `the coordinator at ${address} does not speak TLS: it runs without --tls-dir; drop --tls-dir here, or give it one`;
    return null;
  }
  // A TLS server closes a plaintext connection before HTTP/2 begins; a refused or unreachable
  // port says ECONNREFUSED, EHOSTUNREACH... instead.
  if (/Failed to connect/.test(text) && !/\bE[A-Z]{4,}\b/.test(text)) {
    return `the coordinator at ${address} closed the connection before it began: it requires TLS; give --tls-dir with this node's certificate from the job's CA (see \`ftrain certs --help\`)`;
  }
  return null;
}

export function connectFailure(err: grpc.ServiceError): string | null {
  if (err.code === grpc.status.DEADLINE_EXCEEDED) return 'timed out';
  if (err.code !== grpc.status.UNAVAILABLE) return null;
  const text = `${err.details ?? ''} ${err.message}`;
  if (/ECONNREFUSED/.test(text)) return 'connection refused';
  if (/ETIMEDOUT/.test(text)) return 'timed out';
  if (/EHOSTUNREACH/.test(text)) return 'host unreachable';
  if (/ENETUNREACH/.test(text)) return 'network unreachable';
  if (/ECONNRESET/.test(text)) return 'connection reset';
  if (/Name resolution failed|ENOTFOUND|EAI_AGAIN/.test(text)) return 'the name does not resolve';
  return err.details || 'unavailable';
}
