// The certificate material of mutual TLS (common/certificates.ts) on real files, a real mutual-TLS
// gRPC handshake made from it, and `ftrain certs` as a user runs it.

import * as grpc from '@grpc/grpc-js';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  certificateName,
  createEphemeralTls,
  describeCertificates,
  initCa,
  issueCertificate,
  loadTlsMaterial,
  type TlsMaterial,
} from '../../common/certificates.ts';
import { DataError, OptionError } from '../../domain/errors.ts';
import { runCli } from '../support/cli.ts';

const DAY_MS = 24 * 60 * 60 * 1000;
let root: string;
let n = 0;

/** A fresh path under the test's temporary root (not created). */
function freshDir(): string {
  return join(root, `tls-${n++}`);
}

/** A TLS directory with a CA (made `caAgeMs` ago) and certificates for `names`. */
async function tlsDir(names: readonly string[], caAgeMs = 0): Promise<string> {
  const dir = freshDir();
  await initCa(dir, { nowMs: Date.now() - caAgeMs });
  for (const name of names) await issueCertificate(dir, name);
  return dir;
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

function loadError(dir: string, name?: string): Error {
  try {
    loadTlsMaterial(dir, name);
  } catch (err) {
    return err as Error;
  }
  throw new Error('loadTlsMaterial did not throw');
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'ftrain-certs-'));
});

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('initCa, issueCertificate, loadTlsMaterial', () => {
  it('round trip: the files, their modes and what a member loads', async () => {
    const dir = freshDir();
    const { caCert } = await initCa(dir);
    expect(caCert).toBe(join(dir, 'ca.crt'));
    const issued = await issueCertificate(dir, 'node-1');
    expect(issued).toEqual({ cert: join(dir, 'node-1.crt'), key: join(dir, 'node-1.key') });
    await issueCertificate(dir, 'coordinator');

    expect(mode(dir)).toBe(0o700);
    expect(mode(join(dir, 'ca.key'))).toBe(0o600);
    expect(mode(join(dir, 'node-1.key'))).toBe(0o600);

    const tls = loadTlsMaterial(dir, 'node-1');
    expect(tls.name).toBe('node-1');
    expect(tls.dir).toBe(dir);
    expect(tls.ca.equals(readFileSync(join(dir, 'ca.crt')))).toBe(true);
    expect(tls.cert.equals(readFileSync(join(dir, 'node-1.crt')))).toBe(true);
    expect(tls.key.equals(readFileSync(join(dir, 'node-1.key')))).toBe(true);

    const ca = new X509Certificate(tls.ca);
    const cert = new X509Certificate(tls.cert);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/^CN=ftrain CA [0-9a-f]+$/);
    expect(cert.ca).toBe(false);
    expect(cert.subject).toBe('CN=node-1');
    expect(cert.subjectAltName).toBe('DNS:node-1');
    expect(cert.keyUsage).toEqual(expect.arrayContaining(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']));
    expect(cert.checkIssued(ca)).toBe(true);
    expect(new Date(cert.validTo).getTime() - Date.now()).toBeGreaterThan(364 * DAY_MS);
    expect(new Date(ca.validTo).getTime() - Date.now()).toBeGreaterThan(3649 * DAY_MS);

    // A member's directory holds ca.crt and its own pair only: the name is found.
    const member = freshDir();
    await initCa(member);
    for (const f of ['ca.crt', 'node-1.crt', 'node-1.key']) copyFileSync(join(dir, f), join(member, f));
    rmSync(join(member, 'ca.key'));
    expect(loadTlsMaterial(member).name).toBe('node-1');
  });

  it('names that are not DNS names get no DNS SAN; addresses get an IP SAN', async () => {
    const dir = await tlsDir(['worker_7', '10.0.0.7', 'worker-a.example']);
    expect(new X509Certificate(readFileSync(join(dir, 'worker_7.crt'))).subjectAltName).toBeUndefined();
    expect(new X509Certificate(readFileSync(join(dir, '10.0.0.7.crt'))).subjectAltName).toBe('IP Address:10.0.0.7');
    expect(new X509Certificate(readFileSync(join(dir, 'worker-a.example.crt'))).subjectAltName).toBe('DNS:worker-a.example');
    expect(loadTlsMaterial(dir, 'worker_7').name).toBe('worker_7');
  });

  it('initCa refuses an existing CA unless forced; two CAs differ by name', async () => {
    const dir = await tlsDir([]);
    const first = new X509Certificate(readFileSync(join(dir, 'ca.crt'))).subject;
    await expect(initCa(dir)).rejects.toThrow(DataError);
    await expect(initCa(dir)).rejects.toThrow(/ca\.(key|crt) already exists: pass --force/);
    await initCa(dir, { force: true });
    expect(new X509Certificate(readFileSync(join(dir, 'ca.crt'))).subject).not.toBe(first);
  });

  it('issueCertificate says what to do: no CA, no ca.key, a bad name, an existing pair', async () => {
    const empty = freshDir();
    await expect(issueCertificate(empty, 'node-1')).rejects.toThrow(`run \`ftrain certs init --dir ${empty}\` first`);
    const dir = await tlsDir(['node-1']);
    await expect(issueCertificate(dir, 'node-1')).rejects.toThrow(new RegExp(`^${join(dir, 'node-1')}\\.(crt|key) already exists: pass --force`));
    const before = readFileSync(join(dir, 'node-1.crt'));
    await issueCertificate(dir, 'node-1', { force: true });
    expect(readFileSync(join(dir, 'node-1.crt')).equals(before)).toBe(false);
    for (const bad of ['', '-x', '../x', 'a/b', 'a b', 'x'.repeat(64), 'ca', 'CA']) {
      await expect(issueCertificate(dir, bad)).rejects.toThrow(OptionError);
    }
    await expect(issueCertificate(dir, 'node-2', { days: 0 })).rejects.toThrow(OptionError);
    rmSync(join(dir, 'ca.key'));
    await expect(issueCertificate(dir, 'node-2')).rejects.toThrow(/ca\.key: missing: certificates are issued on the machine that ran `ftrain certs init`/);
  });

  describe('loadTlsMaterial refuses, naming the file', () => {
    it('a missing directory', () => {
      const dir = freshDir();
      const err = loadError(dir, 'node-1');
      expect(err).toBeInstanceOf(DataError);
      expect(err.message).toContain(`${dir}: no such TLS directory`);
    });

    it('a directory without ca.crt', async () => {
      const dir = await tlsDir(['node-1']);
      rmSync(join(dir, 'ca.crt'));
      expect(loadError(dir, 'node-1').message).toContain(`${join(dir, 'ca.crt')}: no CA certificate`);
    });

    it('a missing certificate or key', async () => {
      const dir = await tlsDir(['node-1']);
      expect(loadError(dir, 'node-2').message).toContain(`${join(dir, 'node-2.crt')}: no such file`);
      rmSync(join(dir, 'node-1.key'));
      expect(loadError(dir, 'node-1').message).toContain(`${join(dir, 'node-1.key')}: no such file`);
    });

    it('a certificate from another CA', async () => {
      const dir = await tlsDir(['node-1']);
      const other = await tlsDir(['node-1']);
      for (const f of ['node-1.crt', 'node-1.key']) copyFileSync(join(other, f), join(dir, f));
      const err = loadError(dir, 'node-1');
      expect(err).toBeInstanceOf(DataError);
      expect(err.message).toContain(`${join(dir, 'node-1.crt')}: not signed by the CA in ${join(dir, 'ca.crt')}`);
    });

    it('a key that is not the certificate’s', async () => {
      const dir = await tlsDir(['node-1', 'node-2']);
      copyFileSync(join(dir, 'node-2.key'), join(dir, 'node-1.key'));
      expect(loadError(dir, 'node-1').message).toContain(`${join(dir, 'node-1.key')}: this key does not belong to node-1.crt`);
    });

    it('no name with several member certificates, or none', async () => {
      const dir = await tlsDir(['node-1', 'node-2']);
      expect(loadError(dir).message).toBe(`${dir}: several member certificates (node-1, node-2): name one`);
      const none = await tlsDir([]);
      expect(loadError(none).message).toContain(`${none}: no member certificate (NAME.crt)`);
    });

    it('an expired or not yet valid certificate', async () => {
      const dir = await tlsDir([], 10 * DAY_MS);
      await issueCertificate(dir, 'old', { days: 1, nowMs: Date.now() - 3 * DAY_MS });
      await issueCertificate(dir, 'future', { nowMs: Date.now() + 3 * DAY_MS });
      expect(loadError(dir, 'old').message).toMatch(new RegExp(`^${join(dir, 'old.crt')}: expired on \\S+: issue it again`));
      expect(loadError(dir, 'future').message).toMatch(new RegExp(`^${join(dir, 'future.crt')}: not valid until`));
    });

    it('a bad name, and a certificate renamed to another name', async () => {
      const dir = await tlsDir(['node-1']);
      expect(loadError(dir, '../node-1')).toBeInstanceOf(OptionError);
      renameSync(join(dir, 'node-1.crt'), join(dir, 'node-9.crt'));
      renameSync(join(dir, 'node-1.key'), join(dir, 'node-9.key'));
      expect(loadError(dir, 'node-9').message).toContain(`${join(dir, 'node-9.crt')}: its name (CN) is "node-1", not "node-9"`);
    });

    it('a file that is not PEM', async () => {
      const dir = await tlsDir(['node-1']);
      writeFileSync(join(dir, 'node-1.key'), 'not a key\n');
      expect(loadError(dir, 'node-1').message).toMatch(new RegExp(`^${join(dir, 'node-1.key')}: not a PEM private key`));
      writeFileSync(join(dir, 'ca.crt'), 'not a certificate\n');
      expect(loadError(dir, 'node-1').message).toMatch(new RegExp(`^${join(dir, 'ca.crt')}: not a PEM certificate`));
    });
  });

  it('describeCertificates: each certificate with what is wrong with it', async () => {
    const dir = await tlsDir(['node-1'], 10 * DAY_MS);
    await issueCertificate(dir, 'old', { days: 1, nowMs: Date.now() - 3 * DAY_MS });
    const summaries = describeCertificates(dir);
    expect(summaries.map((s) => [s.file, s.name, s.problem === null])).toEqual([
      [join(dir, 'ca.crt'), expect.stringMatching(/^ftrain CA /), true],
      [join(dir, 'node-1.crt'), 'node-1', true],
      [join(dir, 'old.crt'), 'old', false],
    ]);
    expect(summaries[1]!.issuer).toBe(summaries[0]!.name);
    expect(summaries[1]!.fingerprint256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(describeCertificates(dir, 'node-1')).toHaveLength(2);
  });

  it('createEphemeralTls: a CA and a certificate per name, fast', async () => {
    const dir = freshDir();
    const names = ['coordinator', ...Array.from({ length: 8 }, (_, i) => `node-${i}`)];
    const started = performance.now();
    await createEphemeralTls(dir, names);
    const ms = performance.now() - started;
    for (const name of names) expect(loadTlsMaterial(dir, name).name).toBe(name);
    // Generous for a loaded 2-core machine; it takes well under a second.
    expect(ms).toBeLessThan(10_000);
    await expect(createEphemeralTls(freshDir(), ['a', 'a'])).rejects.toThrow(OptionError);
  });
});

describe('certificateName', () => {
  it('reads the one CN of a peer certificate or a subject string', () => {
    expect(certificateName({ subject: { CN: 'node-1' } })).toBe('node-1');
    expect(certificateName({ subject: { CN: ['node-1'] } })).toBe('node-1');
    expect(certificateName({ subject: 'CN=node-1' })).toBe('node-1');
    expect(certificateName({ subject: 'O=ftrain\nCN=node-1' })).toBe('node-1');
  });

  it('is null with no certificate, no CN, or two different CNs', () => {
    expect(certificateName(undefined)).toBeNull();
    expect(certificateName(null)).toBeNull();
    expect(certificateName({})).toBeNull();
    expect(certificateName({ subject: {} })).toBeNull();
    expect(certificateName({ subject: { CN: ['a', 'b'] } })).toBeNull();
    expect(certificateName({ subject: 'O=ftrain' })).toBeNull();
  });
});

describe('mutual TLS over gRPC with these certificates', () => {
  // A one-method service of raw bytes: the handler answers with the CN of the caller's certificate.
  const service: grpc.ServiceDefinition = {
    whoAmI: {
      path: '/ftrain.test.Tls/WhoAmI',
      requestStream: false,
      responseStream: false,
      requestSerialize: (b: Buffer) => b,
      requestDeserialize: (b: Buffer) => b,
      responseSerialize: (b: Buffer) => b,
      responseDeserialize: (b: Buffer) => b,
    },
  };
  const TlsClient = grpc.makeGenericClientConstructor(service, 'Tls');
  type WhoAmIClient = grpc.Client & {
    whoAmI(req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Buffer) => void): void;
  };

  let server: grpc.Server;
  let port: number;
  let dir: string;
  let otherDir: string;
  const seen: (string | null)[] = [];

  beforeAll(async () => {
    dir = freshDir();
    await createEphemeralTls(dir, ['coordinator', 'node-1']);
    otherDir = freshDir();
    await createEphemeralTls(otherDir, ['node-1']);
    const tls = loadTlsMaterial(dir, 'coordinator');
    server = new grpc.Server();
    server.addService(service, {
      whoAmI: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
        const name = certificateName(call.getAuthContext()?.sslPeerCertificate);
        seen.push(name);
        cb(null, Buffer.from(name ?? ''));
      },
    });
    const creds = grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true);
    port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', creds, (err, p) => (err ? reject(err) : resolve(p))));
  });

  afterAll(() => {
    server?.forceShutdown();
  });

  // TLS names the server by the coordinator's name (an IP address is no TLS server name).
  function whoAmI(creds: grpc.ChannelCredentials, options: grpc.ChannelOptions = { 'grpc.ssl_target_name_override': 'coordinator' }): Promise<string> {
    const client = new TlsClient(`127.0.0.1:${port}`, creds, options) as unknown as WhoAmIClient;
    return new Promise<string>((resolve, reject) => {
      client.whoAmI(Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res!.toString());
      });
    }).finally(() => client.close());
  }

  function clientCreds(tls: TlsMaterial, ca: Buffer = tls.ca): grpc.ChannelCredentials {
    return grpc.credentials.createSsl(ca, tls.key, tls.cert, { checkServerIdentity: () => undefined });
  }

  it("a member's call succeeds and the server sees its name", async () => {
    expect(await whoAmI(clientCreds(loadTlsMaterial(dir, 'node-1')))).toBe('node-1');
    expect(seen.at(-1)).toBe('node-1');
  });

  it("the coordinator's certificate (its SAN) verifies as the TLS name `coordinator`, not as another", async () => {
    const tls = loadTlsMaterial(dir, 'node-1');
    const creds = grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
    expect(await whoAmI(creds, { 'grpc.ssl_target_name_override': 'coordinator' })).toBe('node-1');
    await expect(whoAmI(creds, { 'grpc.ssl_target_name_override': 'node-2' })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
  });

  it('a client whose certificate another CA signed is refused', async () => {
    const count = seen.length;
    const stranger = loadTlsMaterial(otherDir, 'node-1');
    // It trusts the server's CA, so only the server's check of the client certificate refuses it.
    await expect(whoAmI(clientCreds(stranger, readFileSync(join(dir, 'ca.crt'))))).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(seen.length).toBe(count);
  });

  it('a client without a certificate is refused', async () => {
    const count = seen.length;
    const creds = grpc.credentials.createSsl(readFileSync(join(dir, 'ca.crt')), null, null, { checkServerIdentity: () => undefined });
    await expect(whoAmI(creds)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    expect(seen.length).toBe(count);
  });
});

describe('ftrain certs', () => {
  it('init, issue and show; issue without a CA exits 2 saying to init first', async () => {
    const dir = freshDir();
    const early = await runCli(['certs', 'issue', '--dir', dir, '--name', 'node-1'], { timeoutMs: 60_000 });
    expect(early.code).toBe(2);
    expect(early.stderr).toBe(`ftrain: ${dir}: no CA there: run \`ftrain certs init --dir ${dir}\` first\n`);

    const init = await runCli(['certs', 'init', '--dir', dir], { timeoutMs: 60_000 });
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(`wrote ${join(dir, 'ca.crt')}`);
    expect(init.stdout).toContain(`wrote ${join(dir, 'ca.key')}`);

    const issue = await runCli(['certs', 'issue', '--dir', dir, '--name', 'node-1'], { timeoutMs: 60_000 });
    expect(issue.code).toBe(0);
    expect(issue.stdout).toContain(`wrote ${join(dir, 'node-1.crt')}`);
    expect(existsSync(join(dir, 'node-1.key'))).toBe(true);

    const show = await runCli(['certs', 'show', '--dir', dir], { timeoutMs: 60_000 });
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(join(dir, 'node-1.crt'));
    expect(show.stdout).toMatch(/name {5}node-1\n {2}issuer {3}ftrain CA [0-9a-f]+\n/);
    expect(show.stdout).toContain('status   ok');
  });
});
