// How chaos joins the job it hits. A local job is secure as `ftrain run` is: chaos makes the CA
// (in its work directory, so that it can issue certificates for the nodes it starts in place of
// lost ones) and the join token, and gives both to the run. Attached to a running job
// (`--coordinator`), it uses the job's TLS directory (`--tls-dir`, with ca.key to issue the
// replacements' certificates) and token, or none (`--insecure`). Chaos itself reads the
// coordinator's status with a certificate of its own, `chaos`.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { JOIN_TOKEN_ENV, givenJoinToken, newJoinToken, type JoinTokenFlags } from '../common/join-token.ts';
import { useTls } from '../common/transport.ts';
import { OptionError } from '../domain/errors.ts';

/** The name of chaos's own certificate. */
export const CHAOS_CERT_NAME = 'chaos';

export interface ChaosSecurityFlags extends JoinTokenFlags {
  readonly tlsDir?: string;
  readonly insecure?: boolean;
}

export interface ChaosSecurity {
  /** Flags for `ftrain run` (a local job). */
  readonly runArgs: readonly string[];
  /** Environment of every process chaos starts (the join token). */
  readonly env: Readonly<Record<string, string>>;
  /** The flags of a node chaos starts, its certificate issued first. */
  nodeArgs(nodeId: string): Promise<string[]>;
}

const NONE: ChaosSecurity = { runArgs: ['--insecure'], env: {}, nodeArgs: async () => [] };

/** Sets up chaos's security for a local job (`local`) or an attached one; sets this process's identity. */
export async function chaosSecurity(flags: ChaosSecurityFlags, workDir: string, local: boolean): Promise<ChaosSecurity> {
  if (flags.insecure) {
    if (flags.tlsDir !== undefined) throw new OptionError('--insecure', 'and --tls-dir contradict each other: give one');
    const token = givenJoinToken(flags);
    return token === null ? NONE : { runArgs: ['--insecure'], env: { [JOIN_TOKEN_ENV]: token }, nodeArgs: async () => [] };
  }
  if (!local && flags.tlsDir === undefined) {
    // Attached to a job chaos knows nothing of: plaintext, with the token if one is given.
    const token = givenJoinToken(flags);
    return { runArgs: [], env: token === null ? {} : { [JOIN_TOKEN_ENV]: token }, nodeArgs: async () => [] };
  }
  const certs = await import('../common/certificates.ts');
  const dir = flags.tlsDir ?? join(workDir, 'tls');
  if (flags.tlsDir === undefined) await certs.initCa(dir);
  const issue = async (name: string) => {
    if (existsSync(join(dir, `${name}.crt`))) return;
    if (!existsSync(join(dir, certs.CA_KEY_FILE))) throw new OptionError('--tls-dir', `${dir} has no ${name}.crt and no ca.key to issue it: chaos starts nodes in place of lost ones and needs the CA's key`);
    await certs.issueCertificate(dir, name);
  };
  await issue(CHAOS_CERT_NAME);
  try {
    useTls(certs.loadTlsMaterial(dir, CHAOS_CERT_NAME));
  } catch (err) {
    throw new OptionError('--tls-dir', (err as Error).message);
  }
  const token = givenJoinToken(flags) ?? (local ? newJoinToken() : null);
  return {
    runArgs: local ? ['--tls-dir', dir] : [],
    env: token === null ? {} : { [JOIN_TOKEN_ENV]: token },
    nodeArgs: async (nodeId) => {
      await issue(nodeId);
      return ['--tls-dir', dir];
    },
  };
}
