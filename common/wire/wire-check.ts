// Checks of received messages, in the codecs: each failed check names the field (as a path,
// `assign.job.model.d_model`) and what was wrong, and becomes INVALID_ARGUMENT at the edge.

/** Thrown when a received message breaks the wire contract; `field` is the proto field path. */
export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** Marks a request whose bytes did not parse as its message type (see common/proto.ts). */
export const MALFORMED = Symbol('ftrain.malformed');

export interface MalformedMessage {
  readonly [MALFORMED]: string;
}

/** Throws a WireError unless `msg` parsed as a message of `type`. */
export function parsed<T>(msg: T | MalformedMessage | null | undefined, type: string): T {
  if (msg === null || msg === undefined) throw new WireError(type, 'is missing');
  if (typeof msg === 'object' && MALFORMED in msg) throw new WireError(type, `is not a valid ftrain.v1.${type} message (${msg[MALFORMED]})`);
  return msg as T;
}

/** An integer in [min, max]. */
export function int(field: string, v: unknown, min: number, max: number = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new WireError(field, `must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** A finite number in [min, max]. */
export function num(field: string, v: unknown, min = -Number.MAX_VALUE, max = Number.MAX_VALUE): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
    throw new WireError(field, `must be a finite number from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

/** Longest string field accepted (node ids, addresses, messages, paths). */
export const MAX_STRING_CHARS = 64 * 1024;

export function str(field: string, v: unknown, opts: { nonEmpty?: boolean; maxChars?: number } = {}): string {
  if (typeof v !== 'string') throw new WireError(field, `must be a string, got ${typeof v}`);
  const max = opts.maxChars ?? MAX_STRING_CHARS;
  if (v.length > max) throw new WireError(field, `is ${v.length} characters long, more than ${max}`);
  if (opts.nonEmpty && v.trim() === '') throw new WireError(field, 'must not be empty');
  return v;
}

/** A present sub-message. */
export function present<T>(field: string, v: T | null | undefined): T {
  if (v === null || v === undefined) throw new WireError(field, 'is missing');
  return v;
}

/** Longest repeated field accepted. */
export const MAX_LIST = 1 << 16;

export function list<T, R>(field: string, v: readonly T[] | null | undefined, item: (x: T, field: string) => R, maxItems = MAX_LIST): R[] {
  const xs = v ?? [];
  if (xs.length > maxItems) throw new WireError(field, `has ${xs.length} entries, more than ${maxItems}`);
  return xs.map((x, i) => item(x, `${field}[${i}]`));
}

/**
 * A proto enum (loaded with `enums: String`) mapped to a domain value; `table` maps each known
 * name. Unknown numbers and UNSPECIFIED are refused.
 */
export function enumOf<D>(field: string, v: unknown, table: Readonly<Record<string, D>>): D {
  if (typeof v === 'string' && Object.prototype.hasOwnProperty.call(table, v)) return table[v]!;
  throw new WireError(field, `must be one of ${Object.keys(table).join(', ')}, got ${String(v)}`);
}

/** The proto enum name of a domain value (the inverse of an enumOf table). */
export function enumName<K extends string, D>(table: Readonly<Record<K, D>>, value: D): K {
  for (const [name, v] of Object.entries(table) as [K, D][]) if (v === value) return name;
  throw new RangeError(`no enum name for ${String(value)}`);
}

/** A HOST:PORT address: a host, then a port from 1 to 65535 (an IPv6 host in brackets). */
export function hostPort(field: string, v: unknown): string {
  const s = str(field, v, { nonEmpty: true, maxChars: 1024 });
  const colon = s.lastIndexOf(':');
  const host = s.slice(0, Math.max(0, colon));
  const port = s.slice(colon + 1);
  if (colon <= 0 || host.trim() === '' || /\s/.test(s) || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) {
    throw new WireError(field, `must be HOST:PORT with a port from 1 to 65535, got "${s.slice(0, 80)}"`);
  }
  return s;
}
