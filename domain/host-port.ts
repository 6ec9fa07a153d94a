// HOST:PORT addresses as the command line gives them: the host part, and what kind of host it is.

/** The host of a HOST:PORT address (an IPv6 host keeps its brackets: `[::1]`). */
export function hostOf(address: string): string {
  return address.slice(0, address.lastIndexOf(':'));
}

/** A host without the brackets of an IPv6 literal. */
export function bareHost(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

/** 0.0.0.0 or :: : every interface of this machine. */
export function isWildcardHost(host: string): boolean {
  const h = bareHost(host);
  return h === '0.0.0.0' || h === '::' || h === '';
}

/** 127.0.0.0/8, ::1 or localhost: reachable from this machine only. */
export function isLoopbackHost(host: string): boolean {
  const h = bareHost(host).toLowerCase();
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}
