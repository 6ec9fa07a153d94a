// What `ftrain coordinator` tells the user to run on the nodes: an address they can reach it at.
// A wildcard listen address (0.0.0.0, ::) is no address to dial, so it names this machine's host
// name; a loopback address is reachable from this machine only, and the hint says so.

import { isLoopbackHost, isWildcardHost } from '../domain/host-port.ts';

/**
 * The join command for nodes, and who can use it, for a coordinator listening on `host`:`port`;
 * with TLS (`tlsDir`) and a join token, the flags the nodes need too.
 */
export function joinHint(host: string, port: number, machineHostname: string, security: { tlsDir: string | null; token: boolean } = { tlsDir: null, token: false }): string {
  const extra = `${security.tlsDir !== null ? ' --tls-dir DIR' : ''}${security.token ? ' --join-token-file FILE' : ''}`;
  if (isWildcardHost(host)) return `nodes join with: ftrain node --coordinator ${machineHostname}:${port}${extra} (or another address of this machine)`;
  const command = `nodes join with: ftrain node --coordinator ${host}:${port}${extra}`;
  if (isLoopbackHost(host)) return `${command} (loopback: only nodes on this machine can join; --listen 0.0.0.0:${port} lets other machines in)`;
  return command;
}
