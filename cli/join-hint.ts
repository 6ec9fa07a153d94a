// What `ftrain coordinator` tells the user to run on the nodes: an address they can reach it at.
// A wildcard listen address (0.0.0.0, ::) is no address to dial, so it names this machine's host
// name; a loopback address is reachable from this machine only, and the hint says so.

/** The host of a HOST:PORT listen address (IPv6 hosts keep their brackets). */
export function listenHost(listen: string): string {
  return listen.slice(0, listen.lastIndexOf(':'));
}

function bare(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** 0.0.0.0 or :: : every interface of this machine. */
export function isWildcardHost(host: string): boolean {
  const h = bare(host);
  return h === '0.0.0.0' || h === '::' || h === '';
}

/** 127.0.0.0/8, ::1 or localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = bare(host).toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/** The join command for nodes, and who can use it, for a coordinator listening on `host`:`port`. */
export function joinHint(host: string, port: number, machineHostname: string): string {
  if (isWildcardHost(host)) return `nodes join with: ftrain node --coordinator ${machineHostname}:${port} (or another address of this machine)`;
  const command = `nodes join with: ftrain node --coordinator ${host}:${port}`;
  if (isLoopbackHost(host)) return `${command} (loopback: only nodes on this machine can join; --listen 0.0.0.0:${port} lets other machines in)`;
  return command;
}
