// Nobody joins uninvited, with real processes, real TLS and real sockets on 127.0.0.1. A run with
// the job's CA and join token trains while outsiders try to get in: a node without a
// certificate, one with a certificate of another CA, one with the wrong token; a member of the
// CA that is not in the plan registering under another node's name, sending pipeline traffic to
// a worker and a shard to a snapshot manager; and 10,000 bad Register attempts from a bounded
// loop. Each is refused with a clear message; no node is lost, and the run ends with the
// weights of the same run without TLS (and without the attempts).

import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initCa, issueCertificate } from '../../common/certificates.ts';
import { GRPC_CHANNEL_OPTIONS, loadProto } from '../../common/proto.ts';
import { EXIT_REFUSED } from '../../domain/exit-codes.ts';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli, startCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-security-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const JOB = ['--nodes', '4', '--seed', '21', '--backend', 'cpu', '--steps', '36', ...SMALL_MODEL, '--no-dashboard'];
const TOKEN = 'the-jobs-join-token-0123456789';
const FLOOD = 10_000;
/** Bad Register calls in flight at once. */
const FLOOD_CONCURRENCY = 64;

type Client = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** Credentials of a member of `caDir` named `name` (its certificate and key), trusting `caDir`'s CA. */
function memberCredentials(caDir: string, name: string, trustDir = caDir): grpc.ChannelCredentials {
  const f = (d: string, file: string) => readFileSync(join(d, file));
  return grpc.credentials.createSsl(f(trustDir, 'ca.crt'), f(caDir, `${name}.key`), f(caDir, `${name}.crt`), { checkServerIdentity: () => undefined });
}

function unary(client: Client, method: string, request: unknown): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => client[method]!(request, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null) => resolve(err)));
}

/** Opens a client stream, writes one message and ends it: the error it was answered with, or null. */
function clientStream(client: Client, method: string, message: unknown): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) => {
    const call = client[method]!({ deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null) => resolve(err)) as grpc.ClientWritableStream<unknown>;
    call.on('error', () => {});
    call.write(message);
    call.end();
  });
}

describe('a run with mutual TLS and a join token', () => {
  it('refuses every outsider with a clear message, loses no node under a flood of bad Registers, and trains the weights of the run without TLS', async () => {
    const plain = join(dir, 'plain.json');
    const baseline = await runCli(['run', ...JOB, '--insecure', '--report', plain, '--log-file', join(dir, 'plain.log')]);
    expect(baseline.code, baseline.stdout + baseline.stderr).toBe(0);
    const expected = (JSON.parse(readFileSync(plain, 'utf8')) as RunReport).weightsDigest;

    // The job's CA (the run issues the coordinator's and its nodes' certificates from it), a
    // member of it that the plan does not name, and another CA.
    const ca = join(dir, 'ca');
    const other = join(dir, 'other-ca');
    await initCa(ca);
    await issueCertificate(ca, 'intruder');
    await initCa(other);
    await issueCertificate(other, 'node-9');
    const tokenFile = join(dir, 'token');
    const wrongTokenFile = join(dir, 'wrong-token');
    writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    writeFileSync(wrongTokenFile, 'not-the-jobs-token-9876543210\n', { mode: 0o600 });

    const report = join(dir, 'secure.json');
    const logFile = join(dir, 'secure.log');
    const run = startCli(['run', ...JOB, '--tls-dir', ca, '--join-token-file', tokenFile, '--report', report, '--log-file', logFile], { timeoutMs: 170_000 });
    const port = Number((await run.waitForLine(/^ftrain: coordinator on 127\.0\.0\.1:(\d+)/)).match[1]);
    const address = `127.0.0.1:${port}`;
    expect((await run.waitForLine(/^ {2}security: /)).line).toMatch(/mutual TLS and a join token, certificates in/);
    await run.waitForLine(/^step \d+\/36 /);

    // Nodes that are not members, as a user would start them: each gives up at once and says why.
    const node = (name: string, extra: string[]) =>
      runCli(['node', '--coordinator', address, '--node-id', name, '--listen', '127.0.0.1:0', '--snapshot-dir', join('/dev/shm', `ftrain-security-${process.pid}-${name}`), '--connect-timeout', '20', '--log-file', join(dir, `${name}.log`), ...extra], { timeoutMs: 60_000 });
    const [noCert, otherCa, wrongToken] = await Promise.all([
      node('plain-1', ['--join-token-file', tokenFile]),
      node('node-9', ['--tls-dir', other, '--join-token-file', tokenFile]),
      node('intruder', ['--tls-dir', ca, '--join-token-file', wrongTokenFile]),
    ]);
    expect(noCert.code, noCert.stderr).toBe(EXIT_REFUSED);
    expect(noCert.stderr).toMatch(/not joining: the coordinator at 127\.0\.0\.1:\d+ closed the connection before it began: it requires TLS; give --tls-dir/);
    expect(otherCa.code, otherCa.stderr).toBe(EXIT_REFUSED);
    expect(otherCa.stderr).toMatch(/shows a certificate this node's CA did not sign/);
    expect(wrongToken.code, wrongToken.stderr).toBe(EXIT_REFUSED);
    expect(wrongToken.stderr).toMatch(/refused by the coordinator at 127\.0\.0\.1:\d+: node intruder may not join: its join token is wrong/);

    const proto = loadProto().ftrain.v1;
    const intruder = memberCredentials(ca, 'intruder');
    const coordinator = new proto.Coordinator(address, intruder, GRPC_CHANNEL_OPTIONS) as unknown as Client;
    try {
      // A member of the CA under another node's name, with the right token.
      const posing = await unary(coordinator, 'Register', { nodeId: 'node-1', address: '127.0.0.1:1', pid: 1, hostname: 'x', joinToken: TOKEN });
      expect(posing?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(posing?.details).toBe('refused: the caller\'s certificate names "intruder", not node node-1');
      const beat = await unary(coordinator, 'Heartbeat', { nodeId: 'node-1' });
      expect(beat?.code).toBe(grpc.status.PERMISSION_DENIED);

      // Its traffic to a worker and a snapshot manager of the plan.
      const status = await new Promise<{ nodes: { nodeId: string; address: string; smpAddress: string }[] }>((resolve, reject) =>
        coordinator.Status!({}, { deadline: Date.now() + 10_000 }, (err: grpc.ServiceError | null, s: { nodes: { nodeId: string; address: string; smpAddress: string }[] }) => (err ? reject(err) : resolve(s))),
      );
      const target = status.nodes.find((n) => n.nodeId === 'node-1')!;
      expect(target.smpAddress).not.toBe('');
      const worker = new proto.Worker(target.address, intruder, GRPC_CHANNEL_OPTIONS) as unknown as Client;
      const pipe = await clientStream(worker, 'Pipe', { kind: 'PIPE_KIND_ACTIVATION', fromStage: 0, step: 3, microBatch: 0, shape: [1], chunkIndex: 0, chunkCount: 1, data: Buffer.alloc(4), epoch: 0, hop: 1 });
      expect(pipe?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(pipe?.details).toMatch(/^a pipe stream refused: node intruder is not a neighbour or replica of stage 1 in epoch \d+$/);
      worker.close();
      const smp = new proto.SnapshotManager(target.smpAddress, intruder, GRPC_CHANNEL_OPTIONS) as unknown as Client;
      const shard = await clientStream(smp, 'PutShard', { header: { ownerNodeId: 'node-0', stage: 0, step: 3, epoch: 0, index: 0, crc32: 0, bytes: 4 } });
      expect(shard?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(shard?.details).toBe('a shard of stage 0 step 3 refused: the caller\'s certificate names "intruder", not node node-0');
      const configure = await unary(smp, 'Configure', { plan: null, protectedCommitStep: 0, holdMs: 60_000 });
      expect(configure?.code).toBe(grpc.status.PERMISSION_DENIED);
      smp.close();
      // Without a certificate of the job's CA nothing connects at all.
      const stranger = new proto.Worker(target.address, memberCredentials(other, 'node-9', ca), GRPC_CHANNEL_OPTIONS) as unknown as Client;
      const strangerPipe = await clientStream(stranger, 'Pipe', { kind: 'PIPE_KIND_ACTIVATION', fromStage: 0, step: 3 });
      expect(strangerPipe?.code).toBe(grpc.status.UNAVAILABLE);
      stranger.close();
      const plaintext = new proto.SnapshotManager(target.smpAddress, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS) as unknown as Client;
      expect((await clientStream(plaintext, 'PutShard', { header: { ownerNodeId: 'node-0' } }))?.code).toBe(grpc.status.UNAVAILABLE);
      plaintext.close();

      // The flood: bounded in count, FLOOD_CONCURRENCY at a time, while the run trains.
      const codes = new Map<number, number>();
      let sent = 0;
      const startedAt = Date.now();
      const lane = async () => {
        while (sent < FLOOD && Date.now() - startedAt < 90_000) {
          const i = sent++;
          const err = await unary(coordinator, 'Register', { nodeId: `flood-${i}`, address: '127.0.0.1:1', pid: 1, hostname: 'x', joinToken: `bad-token-${i}-xxxxxxxxxxxx` });
          const code = err?.code ?? grpc.status.OK;
          codes.set(code, (codes.get(code) ?? 0) + 1);
        }
      };
      await Promise.all(Array.from({ length: FLOOD_CONCURRENCY }, lane));
      console.log(`security: ${FLOOD} bad Registers answered in ${Date.now() - startedAt} ms`);
      expect([...codes.entries()]).toEqual([[grpc.status.PERMISSION_DENIED, FLOOD]]);
      expect(run.child.exitCode, 'the run still trains when the flood ends').toBeNull();
    } finally {
      coordinator.close();
    }

    const res = await run.result;
    expect(res.code, res.stdout + res.stderr).toBe(0);
    const r = JSON.parse(readFileSync(report, 'utf8')) as RunReport;
    // No node was lost (no lease ran out under the flood) and nothing changed the run.
    expect(r.failures).toEqual([]);
    expect(r.weightsDigest).toBe(expected);
    const log = readFileSync(logFile, 'utf8');
    expect(log).not.toMatch(/lease expired/);
    // Refusals are logged once per source (every attempt here came from 127.0.0.1).
    expect(log.match(/a caller that is not a member was refused/g)?.length).toBe(1);
  }, 300_000);
});
