// A local run's security (`ftrain run`): secure by default, still one command. Unless `--insecure`,
// the launcher makes a CA, a certificate for the coordinator and for each node it starts, and a
// join token, in a private directory of the run's (mode 0700, removed at the end); or, with
// `--tls-dir`, issues them from the CA there (kept). The coordinator then serves mutual TLS and
// requires the token, and each node gets `--tls-dir` and the token in its environment.

import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { OptionError } from '../domain/errors.ts';
import { useTls, type TlsIdentity } from '../common/transport.ts';
import { COORDINATOR_CERT_NAME, JOIN_TOKEN_ENV, givenJoinToken, newJoinToken, type SecurityFlagValues } from './security-flags.ts';

export interface RunSecurity {
  /** The directory the members' certificates are in; null: plaintext (`--insecure`). */
  readonly tlsDir: string | null;
  /** Required at Register; null: none. */
  readonly joinToken: string | null;
  /** The coordinator's identity (this process's, set with useTls). */
  readonly identity: TlsIdentity | null;
  /** Makes `name`'s certificate (a node about to start) unless it exists. */
  issue(name: string): Promise<void>;
  /** What a node of the run is started with: its flags and environment. */
  nodeArgs(): string[];
  nodeEnv(): Record<string, string>;
  /** A line for the user: how the run is protected. */
  describe(): string;
  /** Removes what was made for this run only (an ephemeral CA). */
  close(): void;
}

/** `ftrain-run-tls-PID-XXXXXX` in the temporary directory: a run's own CA, removed when it ends. */
const EPHEMERAL_PREFIX = 'ftrain-run-tls-';

/** The directories of runs that ended without removing theirs (killed): their launcher's pid is gone. */
function removeStaleDirs(): void {
  let names: string[];
  try {
    names = readdirSync(tmpdir());
  } catch {
    return;
  }
  for (const name of names) {
    const pid = Number(/^ftrain-run-tls-(\d+)-/.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const PLAINTEXT: RunSecurity = {
  tlsDir: null,
  joinToken: null,
  identity: null,
  issue: async () => {},
  nodeArgs: () => [],
  nodeEnv: () => ({}),
  describe: () => 'security: --insecure: no TLS and no join token (any local process can join)',
  close: () => {},
};

/** `ftrain run`'s security flags. */
export interface RunSecurityFlags extends SecurityFlagValues {
  readonly insecure?: boolean;
}

/** Sets up the run's security for a coordinator and the nodes `names`; sets this process's identity. */
export async function prepareRunSecurity(flags: RunSecurityFlags, names: readonly string[]): Promise<RunSecurity> {
  if (flags.insecure) {
    if (flags.tlsDir !== undefined) throw new OptionError('--insecure', 'and --tls-dir contradict each other: give one');
    useTls(null);
    const joinToken = givenJoinToken(flags);
    return joinToken === null ? PLAINTEXT : { ...PLAINTEXT, joinToken, nodeEnv: () => ({ [JOIN_TOKEN_ENV]: joinToken }), describe: () => 'security: --insecure: no TLS; a join token' };
  }
  const certs = await import('../common/certificates.ts');
  const ephemeral = flags.tlsDir === undefined;
  if (ephemeral) removeStaleDirs();
  const dir = flags.tlsDir ?? mkdtempSync(join(tmpdir(), `${EPHEMERAL_PREFIX}${process.pid}-`));
  if (ephemeral) await certs.createEphemeralTls(dir, [COORDINATOR_CERT_NAME, ...names]);
  const issue = async (name: string) => {
    if (existsSync(join(dir, `${name}.crt`))) return;
    if (!existsSync(join(dir, certs.CA_KEY_FILE))) throw new OptionError('--tls-dir', `${join(dir, `${name}.crt`)} is missing and ${dir} has no ca.key to issue it: issue it with \`ftrain certs issue --dir DIR --name ${name}\``);
    await certs.issueCertificate(dir, name);
  };
  if (!ephemeral) {
    if (!existsSync(dir)) throw new OptionError('--tls-dir', `${dir} does not exist; make it with \`ftrain certs init --dir ${dir}\``);
    for (const name of [COORDINATOR_CERT_NAME, ...names]) await issue(name);
  }
  let identity: TlsIdentity;
  try {
    identity = certs.loadTlsMaterial(dir, COORDINATOR_CERT_NAME);
  } catch (err) {
    throw new OptionError('--tls-dir', (err as Error).message);
  }
  useTls(identity);
  const joinToken = givenJoinToken(flags) ?? newJoinToken();
  return {
    tlsDir: dir,
    joinToken,
    identity,
    issue,
    nodeArgs: () => ['--tls-dir', dir],
    nodeEnv: () => ({ [JOIN_TOKEN_ENV]: joinToken }),
    describe: () => `security: mutual TLS and a join token${ephemeral ? ' (a CA made for this run; --insecure turns both off)' : `, certificates in ${dir}`}`,
    close: () => {
      if (ephemeral) rmSync(dir, { recursive: true, force: true });
    },
  };
}
