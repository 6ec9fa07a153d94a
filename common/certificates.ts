// The certificate material of ftrain's mutual TLS: one CA per cluster and, per member (the
// coordinator, each node), a certificate whose subject CN is the member's name (its node id; the
// coordinator's is conventionally `coordinator`), signed by that CA. A member's identity is that
// name: a server reads it from the peer's certificate (`certificateName`), never from a message.
//
// A TLS directory holds:
//   ca.crt              the CA certificate (PEM); every member needs it
//   ca.key              the CA's private key (PEM, mode 0600); only on the machine that issues
//   NAME.crt, NAME.key  a member's certificate and private key (PEM, key mode 0600)
// Keys are ECDSA P-256 (fast to make), signatures ECDSA with SHA-256. Files are written to a
// temporary name and renamed into place, so a reader never sees half a file.
//
// `initCa`, `issueCertificate` and `createEphemeralTls` write; `loadTlsMaterial` reads and checks
// what a member's gRPC credentials are made from; every problem is a DataError (or an OptionError
// for a bad name) whose one-line message names the file and says what to do.

// @peculiar/x509 resolves its parts through tsyringe, which needs a Reflect metadata polyfill
// loaded first. Both load only when a certificate is made (`x509Library`): a member that only
// reads its certificate (`loadTlsMaterial`, node's own X509Certificate) neither pays for them at
// start nor gets the global the polyfill adds.
import type * as x509 from '@peculiar/x509';
import { createPrivateKey, randomBytes, webcrypto, X509Certificate, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { basename, join } from 'node:path';
import { DataError, errorMessage, OptionError } from '../domain/errors.ts';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';
const CERT_EXT = '.crt';
const KEY_EXT = '.key';

export const DEFAULT_CA_DAYS = 3650;
export const DEFAULT_CERT_DAYS = 365;
/** The longest validity `days` may ask for (100 years). */
export const MAX_DAYS = 36_500;
const DAY_MS = 24 * 60 * 60 * 1000;
/**
 * A certificate is valid from this long before it was made: the clocks of the machine that issues
 * it and of the machine that uses it differ, and a certificate "not yet valid" there fails.
 */
const NOT_BEFORE_BACKDATE_MS = 60 * 60 * 1000;

const DIR_MODE = 0o700;
const KEY_MODE = 0o600;
const CERT_MODE = 0o644;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };

/** A member's name: its node id, the certificate's subject CN and the base of its file names. */
export const CERTIFICATE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const DNS_LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const DNS_NAME = new RegExp(`^${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);

/** What a member's gRPC credentials are made from, checked against each other by `loadTlsMaterial`. */
export interface TlsMaterial {
  readonly dir: string;
  /** The certificate's subject CN: the member's identity. */
  readonly name: string;
  /** ca.crt (PEM). */
  readonly ca: Buffer;
  /** NAME.crt (PEM). */
  readonly cert: Buffer;
  /** NAME.key (PEM). */
  readonly key: Buffer;
}

export interface CertificateOptions {
  /** Days of validity from now (default 3650 for the CA, 365 for a member). */
  readonly days?: number;
  /** Replace existing files instead of refusing. */
  readonly force?: boolean;
  /** The time of issue (default now); tests make expired or not-yet-valid certificates with it. */
  readonly nowMs?: number;
}

/** One certificate of a TLS directory as `ftrain certs show` prints it. */
export interface CertificateSummary {
  readonly file: string;
  /** Subject CN, or null when there is not exactly one. */
  readonly name: string | null;
  /** Issuer CN (the issuer's whole name when it has no single CN). */
  readonly issuer: string;
  readonly validFrom: Date;
  readonly validTo: Date;
  /** SHA-256 fingerprint, colon-separated hex. */
  readonly fingerprint256: string;
  /** Why it would not be used (the one-line error `loadTlsMaterial` gives), or null. */
  readonly problem: string | null;
}

/** Checks a member name; `field` names where it came from (a flag) in the error. */
export function checkCertificateName(field: string, name: string): string {
  if (!CERTIFICATE_NAME_PATTERN.test(name)) {
    throw new OptionError(field, `must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit, got "${name}"`);
  }
  // ca.crt is the CA's own file (compared without case: some file systems ignore it).
  if (name.toLowerCase() === 'ca') throw new OptionError(field, `"${name}" is taken by the CA's own files (ca.crt, ca.key): pick another name`);
  return name;
}

/**
 * The subject CN of a certificate: a Node `tls.PeerCertificate` (what grpc-js gives a server as
 * `call.getAuthContext()?.sslPeerCertificate`, whose `subject.CN` is a string or string[]) or
 * anything with a Node `X509Certificate`-style `subject` string ("CN=node-1\nO=..."). Null when
 * there is no certificate, no CN, or several different CNs: an identity is exactly one name.
 */
export function certificateName(cert: { readonly subject?: string | Readonly<Record<string, unknown>> | null } | null | undefined): string | null {
  const subject = cert?.subject;
  if (subject === undefined || subject === null) return null;
  let values: readonly unknown[];
  if (typeof subject === 'string') {
    values = subject
      .split('\n')
      .filter((line) => line.startsWith('CN='))
      .map((line) => line.slice(3));
  } else {
    const cn = subject['CN'];
    values = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  }
  const names = [...new Set(values.filter((v): v is string => typeof v === 'string' && v !== ''))];
  return names.length === 1 ? names[0]! : null;
}

/**
 * Creates the cluster's CA in `dir` (made with mode 0700 if missing): ca.key, then ca.crt.
 * Refuses when either exists, unless `force` (a new CA: every certificate of the old one stops
 * being accepted by members given the new ca.crt).
 */
export async function initCa(dir: string, opts: CertificateOptions = {}): Promise<{ caCert: string }> {
  const ca = await createCa(dir, opts);
  return { caCert: ca.certPath };
}

/**
 * Issues NAME.crt and NAME.key in `dir`, signed by the CA there (ca.crt and ca.key): subject CN
 * and a subject alternative name of `name` (DNS, or IP when it is an address; none when it is
 * neither), usable as TLS server and client. Refuses when either file exists, unless `force`.
 */
export async function issueCertificate(dir: string, name: string, opts: CertificateOptions = {}): Promise<{ cert: string; key: string }> {
  checkCertificateName('name', name);
  const validity = validityOf(opts, DEFAULT_CERT_DAYS);
  const ca = await loadIssuingCa(dir, validity.nowMs);
  if (!opts.force) refuseExisting(Object.values(memberPaths(dir, name)));
  return writeMember(ca, dir, name, validity);
}

/**
 * A throwaway CA and one certificate per name in `dir`, for a cluster on one machine (`ftrain
 * run`): overwrites the CA and these names' files if present (give it a fresh directory: other
 * members' files there would no longer match the new CA). The names must be distinct.
 */
export async function createEphemeralTls(dir: string, names: readonly string[]): Promise<void> {
  for (const name of names) checkCertificateName('name', name);
  const duplicate = names.find((n, i) => names.indexOf(n) !== i);
  if (duplicate !== undefined) throw new OptionError('name', `"${duplicate}" is named twice: each member needs a name of its own`);
  const ca = await createCa(dir, { force: true });
  const validity = validityOf({}, DEFAULT_CERT_DAYS);
  await Promise.all(names.map((name) => writeMember(ca, dir, name, validity)));
}

/**
 * Reads and checks a member's TLS material: `name`'s files, or without a name the one member
 * certificate in `dir`. Checks that the key matches the certificate, that ca.crt signed it, that
 * both are valid now and that its CN is its file name. Synchronous: it runs once, at start.
 */
export function loadTlsMaterial(dir: string, name?: string): TlsMaterial {
  requireDir(dir);
  const caPath = join(dir, CA_CERT_FILE);
  if (!existsSync(caPath)) throw new DataError(`${caPath}: no CA certificate: copy ca.crt from the machine that ran \`ftrain certs init\``, caPath);
  const member = name === undefined ? onlyMemberName(dir) : checkCertificateName('name', name);
  const paths = memberPaths(dir, member);
  const caPem = readFile(caPath);
  const ca = parseCertificate(caPath, caPem);
  if (!ca.ca) throw new DataError(`${caPath}: not a CA certificate: copy ca.crt from the machine that ran \`ftrain certs init\``, caPath);
  const nowMs = Date.now();
  checkValidity(caPath, ca, nowMs, `make a new CA with \`ftrain certs init --dir ${dir} --force\` and issue every member again`);

  for (const path of [paths.cert, paths.key]) {
    if (!existsSync(path)) {
      throw new DataError(`${path}: no such file: issue it with \`ftrain certs issue --dir DIR --name ${member}\` where ca.key is, and copy ${member}${CERT_EXT} and ${member}${KEY_EXT} here`, path);
    }
  }
  const certPem = readFile(paths.cert);
  const keyPem = readFile(paths.key);
  const cert = parseCertificate(paths.cert, certPem);
  const key = parsePrivateKey(paths.key, keyPem);
  if (!cert.checkPrivateKey(key)) throw new DataError(`${paths.key}: this key does not belong to ${basename(paths.cert)}: copy the pair issued together`, paths.key);
  if (!cert.verify(ca.publicKey)) {
    throw new DataError(`${paths.cert}: not signed by the CA in ${caPath}: issue it with this CA, or copy the ca.crt of the CA that issued it`, paths.cert);
  }
  checkValidity(paths.cert, cert, nowMs, `issue it again with \`ftrain certs issue --dir DIR --name ${member} --force\``);
  const cn = certificateName(cert);
  if (cn !== member) {
    throw new DataError(`${paths.cert}: its name (CN) is ${cn === null ? 'missing' : `"${cn}"`}, not "${member}": a certificate cannot be renamed, issue one for "${member}"`, paths.cert);
  }
  return { dir, name: cn, ca: caPem, cert: certPem, key: keyPem };
}

/**
 * ca.crt and the member certificates of `dir` (or only `name`'s), each with what
 * `loadTlsMaterial` would say against it. A file that is not a certificate is an error.
 */
export function describeCertificates(dir: string, name?: string): CertificateSummary[] {
  requireDir(dir);
  const caPath = join(dir, CA_CERT_FILE);
  const members = name === undefined ? memberNames(dir) : [checkCertificateName('name', name)];
  const files = [...(existsSync(caPath) ? [caPath] : []), ...members.map((m) => memberPaths(dir, m).cert)];
  const nowMs = Date.now();
  return files.map((file) => {
    const cert = parseCertificate(file, readFile(file));
    let problem: string | null = null;
    try {
      if (file === caPath) checkValidity(caPath, cert, nowMs, 'make a new CA');
      else loadTlsMaterial(dir, basename(file, CERT_EXT));
    } catch (err) {
      problem = errorMessage(err);
    }
    return {
      file,
      name: certificateName(cert),
      issuer: certificateName({ subject: cert.issuer }) ?? cert.issuer.replaceAll('\n', ', '),
      validFrom: new Date(cert.validFrom),
      validTo: new Date(cert.validTo),
      fingerprint256: cert.fingerprint256,
      problem,
    };
  });
}

// ---------------------------------------------------------------------------------------------

let library: Promise<typeof x509> | null = null;

/** @peculiar/x509, loaded (with its polyfill) on first use. */
function x509Library(): Promise<typeof x509> {
  library ??= import('reflect-metadata').then(() => import('@peculiar/x509'));
  return library;
}

/** The CA as the issuing machine holds it. */
interface IssuingCa {
  readonly certPath: string;
  readonly cert: x509.X509Certificate;
  readonly key: webcrypto.CryptoKey;
}

interface Validity {
  readonly nowMs: number;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

function validityOf(opts: CertificateOptions, defaultDays: number): Validity {
  const days = opts.days ?? defaultDays;
  if (!Number.isInteger(days) || days < 1 || days > MAX_DAYS) throw new OptionError('days', `must be an integer from 1 to ${MAX_DAYS}, got ${days}`);
  const nowMs = opts.nowMs ?? Date.now();
  return { nowMs, notBefore: new Date(nowMs - NOT_BEFORE_BACKDATE_MS), notAfter: new Date(nowMs + days * DAY_MS) };
}

function memberPaths(dir: string, name: string): { cert: string; key: string } {
  return { cert: join(dir, `${name}${CERT_EXT}`), key: join(dir, `${name}${KEY_EXT}`) };
}

function requireDir(dir: string): void {
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    throw new DataError(`${dir}: no such TLS directory: make one with \`ftrain certs init --dir ${dir}\`, or copy it from the machine that did`, dir);
  }
  if (!isDir) throw new DataError(`${dir}: not a directory: --dir names the TLS directory (ca.crt, NAME.crt, NAME.key)`, dir);
}

/** Names of the member certificates in `dir` (every `*.crt` but ca.crt), sorted. */
function memberNames(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(CERT_EXT) && f !== CA_CERT_FILE)
    .map((f) => f.slice(0, -CERT_EXT.length))
    .sort();
}

function onlyMemberName(dir: string): string {
  const names = memberNames(dir);
  if (names.length === 1) return names[0]!;
  if (names.length === 0) throw new DataError(`${dir}: no member certificate (NAME.crt): issue one with \`ftrain certs issue --dir ${dir} --name NAME\``, dir);
  throw new DataError(`${dir}: several member certificates (${names.join(', ')}): name one`, dir);
}

function refuseExisting(paths: readonly string[]): void {
  for (const path of paths) {
    if (existsSync(path)) throw new DataError(`${path} already exists: pass --force to replace it`, path);
  }
}

function readFile(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    throw new DataError(`${path}: cannot read it: ${errorMessage(err)}`, path, { cause: err });
  }
}

function parseCertificate(path: string, pem: Buffer): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (err) {
    throw new DataError(`${path}: not a PEM certificate (${errorMessage(err)})`, path, { cause: err });
  }
}

function parsePrivateKey(path: string, pem: Buffer): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (err) {
    throw new DataError(`${path}: not a PEM private key (${errorMessage(err)})`, path, { cause: err });
  }
}

function checkValidity(path: string, cert: X509Certificate, nowMs: number, remedy: string): void {
  const from = new Date(cert.validFrom);
  const to = new Date(cert.validTo);
  if (nowMs < from.getTime()) throw new DataError(`${path}: not valid until ${from.toISOString()} (is this machine's clock right?)`, path);
  if (nowMs > to.getTime()) throw new DataError(`${path}: expired on ${to.toISOString()}: ${remedy}`, path);
}

/** 16 random bytes, positive and without a leading zero byte (a DER INTEGER as written). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0]! & 0x7f) | 0x40;
  return bytes.toString('hex');
}

async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

async function privateKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'pem', type: 'pkcs8' }) as string;
}

/** Writes through a temporary file renamed into place, with `mode` set whatever the umask. */
function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

function ensureDir(dir: string): void {
  if (existsSync(dir)) return requireDir(dir);
  mkdirSync(dir, { recursive: true, mode: DIR_MODE });
  chmodSync(dir, DIR_MODE);
}

async function createCa(dir: string, opts: CertificateOptions): Promise<IssuingCa> {
  const x509 = await x509Library();
  const validity = validityOf(opts, DEFAULT_CA_DAYS);
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (!opts.force) {
    for (const path of [keyPath, certPath]) {
      if (existsSync(path)) throw new DataError(`${path} already exists: pass --force to make a new CA (every certificate of the old one must then be issued again)`, path);
    }
  }
  ensureDir(dir);
  const keys = await generateKeys();
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      // A random part, so that two CAs differ by name as well as by key.
      name: [{ CN: [`ftrain CA ${randomBytes(6).toString('hex')}`] }],
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      keys,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        // pathLength 0: this CA signs members only, never another CA.
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  writeFileAtomic(keyPath, await privateKeyPem(keys.privateKey), KEY_MODE);
  writeFileAtomic(certPath, cert.toString('pem') + '\n', CERT_MODE);
  return { certPath, cert, key: keys.privateKey };
}

async function loadIssuingCa(dir: string, nowMs: number): Promise<IssuingCa> {
  const x509 = await x509Library();
  const certPath = join(dir, CA_CERT_FILE);
  const keyPath = join(dir, CA_KEY_FILE);
  if (!existsSync(certPath) && !existsSync(keyPath)) throw new DataError(`${dir}: no CA there: run \`ftrain certs init --dir ${dir}\` first`, dir);
  if (!existsSync(certPath)) throw new DataError(`${certPath}: missing beside ${CA_KEY_FILE}: run \`ftrain certs init --dir ${dir} --force\` for a new CA`, certPath);
  if (!existsSync(keyPath)) throw new DataError(`${keyPath}: missing: certificates are issued on the machine that ran \`ftrain certs init\` (it keeps ca.key)`, keyPath);
  const certPem = readFile(certPath);
  const nodeCert = parseCertificate(certPath, certPem);
  const key = parsePrivateKey(keyPath, readFile(keyPath));
  if (!nodeCert.checkPrivateKey(key)) throw new DataError(`${keyPath}: does not belong to ${CA_CERT_FILE}: the pair must come from one \`ftrain certs init\``, keyPath);
  checkValidity(certPath, nodeCert, nowMs, `make a new CA with \`ftrain certs init --dir ${dir} --force\` and issue every member again`);
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new DataError(`${keyPath}: not an ECDSA P-256 key: make the CA with \`ftrain certs init\``, keyPath);
  }
  const der = key.export({ format: 'der', type: 'pkcs8' });
  const signingKey = await webcrypto.subtle.importKey('pkcs8', der, KEY_ALGORITHM, false, ['sign']);
  return { certPath, cert: new x509.X509Certificate(certPem.toString('utf8')), key: signingKey };
}

function subjectAltNames(name: string): x509.JsonGeneralName[] {
  if (isIP(name) !== 0) return [{ type: 'ip', value: name }];
  if (DNS_NAME.test(name)) return [{ type: 'dns', value: name }];
  return [];
}

async function writeMember(ca: IssuingCa, dir: string, name: string, validity: Validity): Promise<{ cert: string; key: string }> {
  const x509 = await x509Library();
  const paths = memberPaths(dir, name);
  const keys = await generateKeys();
  const altNames = subjectAltNames(name);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: [{ CN: [name] }],
      issuer: ca.cert.subjectName,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      publicKey: keys.publicKey,
      signingKey: ca.key,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        // Both: every member serves gRPC to others and calls them.
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth], false),
        ...(altNames.length > 0 ? [new x509.SubjectAlternativeNameExtension(altNames, false)] : []),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
        await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false, webcrypto),
      ],
    },
    webcrypto,
  );
  // The key first: a certificate is never in place without its key.
  writeFileAtomic(paths.key, await privateKeyPem(keys.privateKey), KEY_MODE);
  writeFileAtomic(paths.cert, cert.toString('pem') + '\n', CERT_MODE);
  return paths;
}
