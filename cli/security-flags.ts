// Who belongs to the job, as the command line says it: `--tls-dir` (the job's CA and this
// member's certificate, from `ftrain certs`), the join token (`--join-token-file`, the
// FTRAIN_JOIN_TOKEN environment variable, or `--join-token`), and `--insecure` to run without
// either on purpose. Sets the process's transport identity (common/transport.ts).

import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { OptionError } from '../domain/errors.ts';
import { useTls, type TlsIdentity } from '../common/transport.ts';
import { JOIN_TOKEN_ENV, givenJoinToken, newJoinToken, type JoinTokenFlags } from '../common/join-token.ts';

export { JOIN_TOKEN_ENV, givenJoinToken, newJoinToken };

/** The name of the coordinator's certificate when --tls-name does not say. */
export const COORDINATOR_CERT_NAME = 'coordinator';

export interface SecurityFlagValues extends JoinTokenFlags {
  readonly tlsDir?: string;
  readonly insecure?: boolean;
}

const TLS_DIR_HELP =
  "directory with the job's CA certificate (ca.crt) and this member's certificate and key (NAME.crt, NAME.key), made by `ftrain certs`: every gRPC connection is then mutual TLS, and a peer without a certificate of the job's CA cannot connect";

/** The flags of a member: a node, a worker, a snapshot manager. */
export function addMemberSecurityFlags(cmd: Command): Command {
  return cmd
    .option('--tls-dir <dir>', `${TLS_DIR_HELP}; the certificate is the one named by --node-id (without --node-id: the only one in the directory, whose name becomes the node id)`)
    .option('--join-token-file <file>', `file holding the job's join token (or set ${JOIN_TOKEN_ENV}); the coordinator refuses a node without it`)
    .option('--join-token <token>', `the job's join token (visible to other users in the process list: prefer --join-token-file or ${JOIN_TOKEN_ENV})`);
}

/** The flags of a coordinator. */
export function addCoordinatorSecurityFlags(cmd: Command): Command {
  return cmd
    .option('--tls-dir <dir>', `${TLS_DIR_HELP}; the coordinator uses ${COORDINATOR_CERT_NAME}.crt (or --tls-name), and a node may register only under the name in its certificate`)
    .option('--tls-name <name>', `the certificate in --tls-dir this coordinator uses (default: ${COORDINATOR_CERT_NAME})`)
    .option('--join-token-file <file>', `file holding the job's join token, required at Register (or set ${JOIN_TOKEN_ENV}); neither given: a random token is made and printed once`)
    .option('--join-token <token>', `the job's join token (visible to other users in the process list: prefer --join-token-file or ${JOIN_TOKEN_ENV})`)
    .option('--insecure', 'no TLS and no join token: any process that reaches the port can join (a trusted network only)');
}

/** Loads `--tls-dir`'s material for `name` (undefined: the only certificate there) as this process's identity. */
export async function loadIdentity(dir: string, name: string | undefined): Promise<TlsIdentity> {
  const { loadTlsMaterial } = await import('../common/certificates.ts');
  if (!existsSync(dir)) throw new OptionError('--tls-dir', `${dir} does not exist; make it with \`ftrain certs init --dir ${dir}\` and \`ftrain certs issue\``);
  try {
    return loadTlsMaterial(dir, name);
  } catch (err) {
    throw new OptionError('--tls-dir', (err as Error).message);
  }
}

/** A member's security: its identity (set for the process) and the token it joins with (or ''). */
export async function memberSecurity(v: SecurityFlagValues, nodeId: string | undefined): Promise<{ tls: TlsIdentity | null; joinToken: string }> {
  const tls = v.tlsDir === undefined ? null : await loadIdentity(v.tlsDir, nodeId);
  useTls(tls);
  return { tls, joinToken: givenJoinToken(v) ?? '' };
}

/** What a coordinator's flags say: its identity (set for the process), the token, and whether it was made here. */
export async function coordinatorSecurity(v: SecurityFlagValues & { tlsName?: string }, withStore: boolean): Promise<{ tls: TlsIdentity | null; joinToken: string | null; tokenMade: boolean }> {
  const given = givenJoinToken(v);
  if (v.insecure && v.tlsDir !== undefined) throw new OptionError('--insecure', 'and --tls-dir contradict each other: give one');
  const tls = v.tlsDir === undefined ? null : await loadIdentity(v.tlsDir, v.tlsName ?? COORDINATOR_CERT_NAME);
  useTls(tls);
  if (given !== null) return { tls, joinToken: given, tokenMade: false };
  if (v.insecure) return { tls, joinToken: null, tokenMade: false };
  if (withStore) throw new OptionError('--join-token-file', `with --store, give every coordinator of the job the same join token (--join-token-file, or ${JOIN_TOKEN_ENV}): one made here would differ on each; or --insecure`);
  return { tls, joinToken: newJoinToken(), tokenMade: true };
}

/** What a coordinator says of its security at start (the made token, once: it is not logged). */
export function securityLines(s: { tls: TlsIdentity | null; joinToken: string | null; tokenMade: boolean }, tlsDir: string | null): string[] {
  const lines: string[] = [];
  if (s.tls) lines.push(`mutual TLS: every connection needs a certificate of the CA in ${tlsDir}; a node registers only under the name in its certificate`);
  else if (s.joinToken === null) lines.push('--insecure: no TLS and no join token; any process that reaches this port can join (a trusted network only)');
  else lines.push('plaintext: connections are neither encrypted nor authenticated, only the join token is checked; give --tls-dir (see `ftrain certs --help`)');
  if (s.tokenMade) lines.push(`join token (made now, shown once; give it to the nodes in a file, --join-token-file, or in ${JOIN_TOKEN_ENV}): ${s.joinToken}`);
  else if (s.joinToken !== null) lines.push('join token: required at Register');
  return lines;
}
