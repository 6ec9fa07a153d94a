// Who may act as a node: the join token at Register (constant time, every refusal NOT_MEMBER and
// logged once per source), the certificate's name with TLS, the flags a token comes from, and
// what a node says when its TLS handshake fails.

import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import pino from 'pino';
import { Admission, REMEMBERED_SOURCES, actingNode, peerSource, type AdmittedCall } from '../../coordinator/admission.ts';
import { JOIN_TOKEN_ENV, givenJoinToken, newJoinToken } from '../../common/join-token.ts';
import { impersonation, peerName, useTls } from '../../common/transport.ts';
import { coordinatorSecurity } from '../../cli/security-flags.ts';
import { RefusalReason } from '../../domain/refusal.ts';
import { handshakeFailure } from '../../worker/coordinator-address.ts';

const TOKEN = 'the-jobs-token-0123456789';

/** A call from `peer` (gRPC's form) that showed a certificate named `cn` (undefined: none). */
function call(peer = 'ipv4:10.0.0.5:41234', cn?: string | string[]): AdmittedCall {
  return { getPeer: () => peer, getAuthContext: () => (cn === undefined ? {} : { sslPeerCertificate: { subject: { CN: cn } } }) };
}

/** A logger that keeps the messages of its warnings. */
function recordingLogger(): { logger: pino.Logger; warnings: string[] } {
  const warnings: string[] = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push((JSON.parse(line) as { msg: string }).msg) });
  return { logger, warnings };
}

const TLS_ON = { name: 'coordinator', ca: Buffer.from('ca'), cert: Buffer.from('cert'), key: Buffer.from('key') };

afterEach(() => useTls(null));

describe('Admission', () => {
  it('admits a Register with the right token and refuses a wrong or missing one as not-member, changing nothing', () => {
    const { logger, warnings } = recordingLogger();
    const a = new Admission(TOKEN, logger);
    expect(a.register(call(), 'n1', TOKEN)).toBeNull();
    const wrong = a.register(call(), 'n1', `${TOKEN}x`);
    expect(wrong).toEqual({ reason: RefusalReason.notMember, message: expect.stringMatching(/^node n1 may not join: its join token is wrong; give the job's token with --join-token-file/) });
    expect(a.register(call(), 'n1', '')?.message).toMatch(/it carried no join token/);
    expect(a.refused).toBe(2);
    expect(warnings).toHaveLength(1);
  });

  it('compares tokens of any length (as sha-256 digests: timingSafeEqual takes equal lengths only)', () => {
    const a = new Admission(TOKEN, pino({ level: 'silent' }));
    for (const given of ['s', TOKEN.slice(0, -1), `${TOKEN}${TOKEN}`, 'x'.repeat(10_000), TOKEN.toUpperCase()]) expect(a.register(call(), 'n1', given)?.reason).toBe(RefusalReason.notMember);
    expect(a.register(call(), 'n1', TOKEN)).toBeNull();
  });

  it('needs no token when it has none (--insecure)', () => {
    const a = new Admission(null, pino({ level: 'silent' }));
    expect(a.register(call(), 'n1', '')).toBeNull();
    expect(a.register(call(), 'n1', 'anything at all')).toBeNull();
  });

  it('logs a refusal once per source machine, and remembers a bounded number of sources', () => {
    const { logger, warnings } = recordingLogger();
    const a = new Admission(TOKEN, logger);
    for (let i = 0; i < 50; i++) a.register(call(`ipv4:10.0.0.5:${40000 + i}`), `n${i}`, 'bad');
    a.register(call('ipv6:[::1]:5000'), 'n1', 'bad');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^a caller that is not a member was refused \(further refusals from 10\.0\.0\.5 are not logged\)/);
    for (let i = 0; i < REMEMBERED_SOURCES + 10; i++) a.register(call(`ipv4:10.1.${i >> 8}.${i & 255}:1`), 'n1', 'bad');
    expect(warnings).toHaveLength(2 + REMEMBERED_SOURCES + 10);
    // The first source was forgotten to make room: it is logged again.
    a.register(call('ipv4:10.0.0.5:1'), 'n1', 'bad');
    expect(warnings).toHaveLength(3 + REMEMBERED_SOURCES + 10);
  });

  it('with TLS, admits a call only from the certificate of the node it names', () => {
    const a = new Admission(TOKEN, pino({ level: 'silent' }));
    // Without TLS there is no name to check: the token decides at Register.
    expect(a.acting(call(undefined, undefined), 'n1')).toBeNull();
    useTls(TLS_ON);
    expect(a.register(call(undefined, 'n1'), 'n1', TOKEN)).toBeNull();
    expect(a.register(call(undefined, 'n2'), 'n1', TOKEN)?.message).toBe('refused: the caller\'s certificate names "n2", not node n1');
    expect(a.acting(call(undefined, 'n2'), 'n1')?.reason).toBe(RefusalReason.notMember);
    expect(a.acting(call(undefined, undefined), 'n1')?.message).toMatch(/showed no certificate name/);
    // Two names in one certificate are no identity.
    expect(a.acting(call(undefined, ['n1', 'n2']), 'n1')).not.toBeNull();
    // An event that names no node (Status) is not checked.
    expect(a.acting(call(undefined, 'n2'), null)).toBeNull();
  });

  it('finds the node an event acts as', () => {
    expect(actingNode({ type: 'heartbeat', nodeId: 'n3' } as never)).toBe('n3');
    expect(actingNode({ type: 'step', report: { nodeId: 'n4' } } as never)).toBe('n4');
    expect(actingNode({ type: 'finish' } as never)).toBeNull();
  });

  it('reads the source machine of a gRPC peer', () => {
    expect(peerSource('ipv4:10.0.0.5:41234')).toBe('10.0.0.5');
    expect(peerSource('ipv6:[::1]:5000')).toBe('::1');
    expect(peerSource('unix:/tmp/s')).toBe('/tmp/s');
  });
});

describe('peerName and impersonation', () => {
  it('take the one common name of the certificate', () => {
    expect(peerName(call(undefined, 'n1'))).toBe('n1');
    expect(peerName(call(undefined, ['n1']))).toBe('n1');
    expect(peerName(call(undefined, ['n1', 'n2']))).toBeNull();
    expect(peerName({})).toBeNull();
    expect(impersonation(call(undefined, 'x'), 'n1')).toBeNull();
    useTls(TLS_ON);
    expect(impersonation(call(undefined, 'x'), 'n1')).toBe('the caller\'s certificate names "x", not node n1');
  });
});

describe('join token flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ftrain-token-'));
  afterEach(() => {
    delete process.env[JOIN_TOKEN_ENV];
  });

  it('reads a file, the flag or the environment, and refuses a short, spaced or doubled token', () => {
    const file = join(dir, 'token');
    writeFileSync(file, `  ${TOKEN}\n`);
    expect(givenJoinToken({ joinTokenFile: file })).toBe(TOKEN);
    expect(givenJoinToken({ joinToken: TOKEN })).toBe(TOKEN);
    expect(givenJoinToken({})).toBeNull();
    process.env[JOIN_TOKEN_ENV] = TOKEN;
    expect(givenJoinToken({})).toBe(TOKEN);
    expect(() => givenJoinToken({ joinToken: 'short' })).toThrow(/^--join-token: a join token must have at least 16 characters, this one has 5$/);
    expect(() => givenJoinToken({ joinToken: 'a token with spaces in it' })).toThrow(/must not contain white space/);
    expect(() => givenJoinToken({ joinToken: TOKEN, joinTokenFile: file })).toThrow(/give the token once/);
    expect(() => givenJoinToken({ joinTokenFile: join(dir, 'missing') })).toThrow(/^--join-token-file: cannot read .*missing: ENOENT/);
    expect(newJoinToken()).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(newJoinToken()).not.toBe(newJoinToken());
    rmSync(dir, { recursive: true, force: true });
  });

  it('a coordinator makes a token unless told one; with a store it must be told one', async () => {
    const made = await coordinatorSecurity({}, false);
    expect(made).toMatchObject({ tls: null, tokenMade: true });
    expect(made.joinToken).toHaveLength(32);
    expect(await coordinatorSecurity({ insecure: true }, false)).toEqual({ tls: null, joinToken: null, tokenMade: false });
    await expect(coordinatorSecurity({}, true)).rejects.toThrow(/with --store, give every coordinator of the job the same join token/);
    await expect(coordinatorSecurity({ insecure: true, tlsDir: '/nowhere' }, false)).rejects.toThrow(/contradict/);
  });
});

describe('handshakeFailure', () => {
  const err = (details: string, code = grpc.status.UNAVAILABLE) => Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() }) as grpc.ServiceError;
  // The details grpc-js gives, as seen against a real TLS coordinator.
  it.each([
    ['No connection established. Last error: Failed to connect (2026-12-01T19:44:40.689Z). Resolution note: ', false, /closed the connection before it began: it requires TLS; give --tls-dir/],
    ['No connection established. Last error: Error: self-signed certificate in certificate chain. Resolution note: ', true, /shows a certificate this node's CA did not sign/],
    ['No connection established. Last error: 805C03C58C7F0000:error:0A00045C:SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:../deps/openssl/openssl/ssl/record/rec_layer_s3.c:1601:SSL alert number 116', true, /refused this node's certificate/],
    ['No connection established. Last error: 0A00010B:SSL routines::wrong version number', true, /does not speak TLS/],
  ])('"%s" (tls %s)', (details, tls, expected) => {
    expect(handshakeFailure(err(details), 'h:1', tls)).toMatch(expected);
  });

  it('leaves ordinary connection failures to the retries', () => {
    expect(handshakeFailure(err('No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1.'), 'h:1', false)).toBeNull();
    expect(handshakeFailure(err('No connection established. Last error: read ECONNRESET'), 'h:1', true)).toBeNull();
    expect(handshakeFailure(err('Deadline exceeded', grpc.status.DEADLINE_EXCEEDED), 'h:1', true)).toBeNull();
  });
});

describe('beats the heartbeat desk took', () => {
  it('renew a lease only for the node the certificate names (with TLS)', async () => {
    const { takeDeskBeats } = await import('../../coordinator/heartbeat-intake.ts');
    const fed: string[] = [];
    const refused: { callId: number; code: number; details: string }[] = [];
    const host = { now: () => 1000, feed: (e: { nodeId?: string }) => void fed.push(e.nodeId ?? ''), answer: () => ({ leaseMs: 1, leaderUnsure: false }) };
    const desk = { refuse: (callId: number, s: grpc.ServiceError) => void refused.push({ callId, code: s.code, details: s.details }) };
    const beat = (callId: number, nodeId: string, peer: string | null) => ({ callId, atMs: Date.now(), nodeId, memory: null, peer });
    takeDeskBeats(host as never, desk as never, [beat(1, 'n1', null)]);
    expect(fed).toEqual(['n1']);
    useTls(TLS_ON);
    takeDeskBeats(host as never, desk as never, [beat(2, 'n1', 'n1'), beat(3, 'n1', 'n2'), beat(4, 'n1', null)]);
    expect(fed).toEqual(['n1', 'n1']);
    expect(refused.map((r) => [r.callId, r.code])).toEqual([
      [3, grpc.status.PERMISSION_DENIED],
      [4, grpc.status.PERMISSION_DENIED],
    ]);
    expect(refused[0]!.details).toBe('heartbeat refused: the caller\'s certificate names "n2", not node n1');
  });
});
