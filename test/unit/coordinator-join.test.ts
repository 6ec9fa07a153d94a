// Joining the coordinator: the host name is resolved first (a name that does not exist fails at
// once, a temporary failure is retried for a bounded time), a failed connection is named in a few
// words, and each way of being turned away maps to an exit code the node agent does not restart on.

import * as grpc from '@grpc/grpc-js';
import { createServer } from 'node:net';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { joinFailureCode, waitingLines, PROGRESS_EVERY_MS } from '../../cli/join-failure.ts';
import { SnapshotDirTakenError } from '../../cli/snapshot-dir-lock.ts';
import { EXIT_FENCED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED, FINAL_WORKER_EXITS } from '../../domain/exit-codes.ts';
import { RefusalReason, RefusedError, RunEndedError } from '../../domain/refusal.ts';
import { bareHost, hostOf } from '../../domain/host-port.ts';
import { compileWorkerOptions } from '../../worker/core/worker-options.ts';
import { CoordinatorLink } from '../../worker/coordinator-link.ts';
import {
  CoordinatorUnreachableError,
  CoordinatorUnresolvedError,
  connectFailure,
  heartbeatAddress,
  resolveCoordinatorHost,
  type RegisterWait,
  type ResolveWait,
} from '../../worker/coordinator-address.ts';

const failure = (code: string) => Object.assign(new Error(`getaddrinfo ${code} host`), { code });
const fast = { initialMs: 20, maxMs: 40, factor: 2 };

describe('resolveCoordinatorHost', () => {
  it('fails at once when the name does not exist', async () => {
    let calls = 0;
    const started = Date.now();
    const err = await resolveCoordinatorHost('nowhere.invalid:7070', { lookup: async () => (calls++, Promise.reject(failure('ENOTFOUND'))) }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CoordinatorUnresolvedError);
    expect(err).toMatchObject({ host: 'nowhere.invalid', code: 'ENOTFOUND', waitedMs: 0 });
    expect((err as Error).message).toBe(`the coordinator's host name "nowhere.invalid" does not resolve (ENOTFOUND); check the host in --coordinator`);
    expect(calls).toBe(1);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('retries a temporary failure, saying so each time, until the name resolves', async () => {
    const answers = [failure('EAI_AGAIN'), failure('EAI_AGAIN'), null];
    const waits: ResolveWait[] = [];
    await resolveCoordinatorHost('flaky:7070', {
      backoff: fast,
      onWait: (w) => waits.push(w),
      lookup: async () => {
        const a = answers.shift();
        if (a) throw a;
      },
    });
    expect(waits.map((w) => [w.host, w.code])).toEqual([
      ['flaky', 'EAI_AGAIN'],
      ['flaky', 'EAI_AGAIN'],
    ]);
  });

  it('gives up on a resolver that keeps failing, or hangs, within its bound', async () => {
    for (const lookup of [async () => Promise.reject(failure('EAI_AGAIN')), () => new Promise<never>(() => {})]) {
      const started = Date.now();
      const err = await resolveCoordinatorHost('stuck:7070', { timeoutMs: 300, backoff: fast, lookup }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CoordinatorUnresolvedError);
      expect((err as CoordinatorUnresolvedError).waitedMs).toBeGreaterThanOrEqual(300);
      expect((err as Error).message).toMatch(/^the coordinator's host name "stuck" could not be resolved for 0\.3 s \((EAI_AGAIN|timeout): the resolver failed each time\)/);
      expect(Date.now() - started).toBeLessThan(1000);
    }
  });

  it('does not look up an IP address', async () => {
    for (const address of ['127.0.0.1:7070', '[::1]:7070']) {
      await resolveCoordinatorHost(address, { lookup: () => Promise.reject(new Error('looked up')) });
    }
    expect(bareHost(hostOf('[::1]:7070'))).toBe('::1');
    expect(bareHost(hostOf('coordinator.example:7070'))).toBe('coordinator.example');
  });
});

describe('registration with nothing at the address', () => {
  it('retries with backoff, tells each failed attempt, and gives up after the connect timeout', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const protocol = compileWorkerOptions({ registerTimeoutMs: 1200, registerBackoff: { initialMs: 200, maxMs: 400, factor: 2 } });
    const link = new CoordinatorLink(`127.0.0.1:${port}`, 'n1', protocol, pino({ level: 'silent' }));
    const waits: RegisterWait[] = [];
    const started = Date.now();
    const err = await link.register(() => ({ nodeId: 'n1', address: '127.0.0.1:1' }), (w) => waits.push(w)).catch((e: unknown) => e);
    link.close();
    expect(err).toBeInstanceOf(CoordinatorUnreachableError);
    expect((err as Error).message).toBe(`the coordinator at 127.0.0.1:${port} could not be reached for 1.2 s (connection refused); is it running, and is the address right?`);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1200);
    expect(Date.now() - started).toBeLessThan(1200 + 1000);
    expect(waits.length).toBeGreaterThanOrEqual(2);
    expect(waits.map((w) => w.attempt)).toEqual(waits.map((_, i) => i + 1));
    expect(waits.every((w) => w.failure === 'connection refused' && w.timeoutMs === 1200 && w.retryInMs > 0)).toBe(true);
  });
});

describe('connectFailure', () => {
  const err = (code: grpc.status, details: string) => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
  it.each([
    [grpc.status.UNAVAILABLE, 'No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1.', 'connection refused'],
    [grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded after 5.001s', 'timed out'],
    [grpc.status.UNAVAILABLE, 'connect EHOSTUNREACH 10.0.0.9:7070', 'host unreachable'],
    [grpc.status.UNAVAILABLE, 'Name resolution failed for target dns:x:7070', 'the name does not resolve'],
    [grpc.status.UNIMPLEMENTED, 'unknown service ftrain.v1.Coordinator', null],
  ])('code %i "%s" -> %s', (code, details, expected) => {
    expect(connectFailure(err(code, details))).toBe(expected);
  });
});

describe('joinFailureCode', () => {
  it('maps each way of being turned away to its exit code, and nothing else', () => {
    const refusal = { reason: RefusalReason.duplicate, message: 'node id n1 is already registered' };
    expect(joinFailureCode(new RefusedError(refusal, 'Register'))).toBe(EXIT_REFUSED);
    expect(joinFailureCode(new SnapshotDirTakenError('/dev/shm/x', 12, 'n1'))).toBe(EXIT_REFUSED);
    expect(joinFailureCode(new CoordinatorUnreachableError('h:1', 60_000, 'connection refused'))).toBe(EXIT_UNREACHABLE);
    expect(joinFailureCode(new CoordinatorUnresolvedError('h', 'ENOTFOUND', 0))).toBe(EXIT_UNRESOLVED);
    expect(joinFailureCode(new RunEndedError({ reason: RefusalReason.runEnded, message: 'ended' }, 'Register'))).toBeNull();
    expect(joinFailureCode(new Error('a crash'))).toBeNull();
    // Distinct codes, none of them a crash's 1 or a bad option's 2, all final for the node agent.
    const codes = [EXIT_FENCED, EXIT_REFUSED, EXIT_UNREACHABLE, EXIT_UNRESOLVED];
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => c > 2 && FINAL_WORKER_EXITS.has(c))).toBe(true);
    expect(FINAL_WORKER_EXITS.has(1)).toBe(false);
  });
});

describe('waitingLines', () => {
  it('says the first failure at once, then at most one line per PROGRESS_EVERY_MS', () => {
    const lines: string[] = [];
    const say = waitingLines('ftrain node n1', (l) => lines.push(l));
    const wait = (attempt: number): RegisterWait => ({ address: 'h:7070', attempt, failure: 'connection refused', waitedMs: 2400, timeoutMs: 60_000, retryInMs: 500 });
    say.registerWait(wait(1));
    say.registerWait(wait(2));
    expect(lines).toEqual(['ftrain node n1: waiting for the coordinator at h:7070 (attempt 1: connection refused); retrying, giving up in 58 s']);
    expect(PROGRESS_EVERY_MS).toBeLessThanOrEqual(10_000);
  });
});

describe('heartbeatAddress', () => {
  it("is the desk's port on the host the coordinator was reached at, or the coordinator's own address without a desk", () => {
    expect(heartbeatAddress('coord-a.example:7070', 7071)).toBe('coord-a.example:7071');
    expect(heartbeatAddress('10.0.0.2:7070', 40123)).toBe('10.0.0.2:40123');
    expect(heartbeatAddress('[::1]:7070', 7071)).toBe('[::1]:7071');
    expect(heartbeatAddress('coord-a:7070', 0)).toBe('coord-a:7070');
  });
});
