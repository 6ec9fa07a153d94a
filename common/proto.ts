// Loads proto/ftrain.proto once; the types come from proto/generated (proto-loader-gen-types).

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../proto/generated/ftrain.ts';
import { packagePath } from './package-root.ts';
import { OptionError } from '../domain/errors.ts';
import { MALFORMED, type MalformedMessage } from './wire/wire-check.ts';
import { serverCredentials } from './transport.ts';

export const PROTO_PATH = packagePath('proto/ftrain.proto');

/** The loader options the generated types were made for (see the proto:gen script). */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
};

let cached: ProtoGrpcType | undefined;

/**
 * A request whose bytes do not parse reaches the handler as a MalformedMessage instead of ending
 * the call with INTERNAL inside grpc-js: the codec then refuses it with INVALID_ARGUMENT, like any
 * other malformed field.
 */
function markMalformedRequests(definition: protoLoader.PackageDefinition): void {
  for (const service of Object.values(definition)) {
    if (!('format' in service) && typeof service === 'object') {
      for (const method of Object.values(service as grpc.ServiceDefinition)) {
        const deserialize = method.requestDeserialize;
        method.requestDeserialize = (bytes: Buffer) => {
          try {
            return deserialize(bytes);
          } catch (err) {
            const marked: MalformedMessage = { [MALFORMED]: err instanceof Error ? err.message : String(err) };
            return marked;
          }
        };
      }
    }
  }
}

export function loadProto(): ProtoGrpcType {
  if (!cached) {
    const definition = protoLoader.loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
    markMalformedRequests(definition);
    cached = grpc.loadPackageDefinition(definition) as unknown as ProtoGrpcType;
  }
  return cached;
}

/**
 * Keepalive between ftrain processes. A worker's event loop is blocked while tfjs computes
 * (seconds per micro-batch on the cpu backend), so a tight ping timeout would drop healthy
 * connections; a lost or frozen node is detected by its lease (heartbeats come from a thread of
 * their own, see worker/heartbeat-thread.mjs) and by broken streams instead.
 */
export const KEEPALIVE_TIME_MS = 30_000;
export const KEEPALIVE_TIMEOUT_MS = 60_000;

/** The server name a TLS client of ftrain asks for (SNI). */
export const TLS_SERVER_NAME = 'ftrain';

/** Channel and server options shared by every ftrain process. */
export const GRPC_CHANNEL_OPTIONS: grpc.ChannelOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.max_receive_message_length': 8 * 1024 * 1024,
  // With TLS (common/transport.ts), the name a client asks for in the handshake: members are
  // reached at IP addresses, which TLS does not allow there. Servers are checked by their CA, not
  // by this name. Plaintext channels ignore it.
  'grpc.ssl_target_name_override': TLS_SERVER_NAME,
};

export const GRPC_SERVER_OPTIONS: grpc.ServerOptions = {
  'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
  'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 5_000,
  'grpc.max_receive_message_length': 8 * 1024 * 1024,
};

/** Deadline for every unary call. */
export const UNARY_DEADLINE_MS = 5000;

export function deadline(ms = UNARY_DEADLINE_MS): Date {
  return new Date(Date.now() + ms);
}

/** A gRPC error with a status code, for handlers to return at the edge. */
export function statusError(code: grpc.status, details: string): grpc.ServiceError {
  const err = new Error(details) as grpc.ServiceError;
  err.code = code;
  err.details = details;
  err.metadata = new grpc.Metadata();
  return err;
}

/** Thrown when a gRPC server cannot listen on its address: the port is taken, the host is not this machine's, ... */
export class ListenError extends Error {
  override readonly name = 'ListenError';
  constructor(
    /** host:port as given. */
    readonly address: string,
    /** The errno code (EADDRINUSE, EACCES, EADDRNOTAVAIL), or null when the cause was another. */
    readonly code: string | null,
    /** Why, in words: "the port is in use". */
    readonly reason: string,
    options: { cause: unknown },
  ) {
    super(`cannot listen on ${address}: ${reason}`, options);
  }

  /** The same refusal as an option error of the flag that chose the address (exit 2 in the CLI). */
  toOptionError(flag: string): OptionError {
    const hint = this.code === 'EADDRINUSE' || this.code === 'EACCES' ? '; pick another port (0: any free one)' : '';
    return new OptionError(flag, `${this.message}${hint}`);
  }
}

const LISTEN_REASONS: Readonly<Record<string, string>> = {
  EADDRINUSE: 'the port is in use',
  EACCES: 'permission denied (ports below 1024 need privileges)',
  EADDRNOTAVAIL: 'no network interface of this machine has that address',
};

/** grpc-js's first line of a failed bind: the error bindServer reports says it all, so it is not logged too. */
const BIND_FAILED_LOG = /^No address added out of total \d+ resolved/;
let bindLogFiltered = false;

/** grpc-js's default logger (every line on stderr), without the bind failures that bindServer reports itself. */
function filterBindFailureLog(): void {
  if (bindLogFiltered) return;
  bindLogFiltered = true;
  grpc.setLogger({
    error: (message?: unknown, ...rest: unknown[]) => {
      if (typeof message === 'string' && BIND_FAILED_LOG.test(message)) return;
      console.error(`E ${String(message)}`, ...rest);
    },
    info: (message?: unknown, ...rest: unknown[]) => console.error(`I ${String(message)}`, ...rest),
    debug: (message?: unknown, ...rest: unknown[]) => console.error(`D ${String(message)}`, ...rest),
  });
}

/** A failed bind of `address` (grpc-js's error) as a ListenError that says why. */
export function listenError(address: string, err: Error): ListenError {
  // grpc-js gives no errno, only "... errors: [listen EADDRINUSE: address already in use HOST:PORT]".
  const errno = /\b(E[A-Z]{3,})\b/.exec(err.message)?.[1];
  const code = errno !== undefined && errno in LISTEN_REASONS ? errno : null;
  const reason = code !== null ? LISTEN_REASONS[code]! : /Name resolution failed/.test(err.message) ? 'the host name does not resolve' : err.message;
  return new ListenError(address, code, reason, { cause: err });
}

/** Binds a server and resolves with the actual port; a bind that fails rejects with a ListenError. */
export function bindServer(server: grpc.Server, address: string): Promise<number> {
  filterBindFailureLog();
  return new Promise((resolvePort, reject) => {
    server.bindAsync(address, serverCredentials(), (err, port) => {
      if (!err) return resolvePort(port);
      reject(listenError(address, err));
    });
  });
}
