// How this process's gRPC connections are secured. Every ftrain process plays one member of one
// job, so the command that runs sets its identity once at start (`useTls`), and every server and
// client of the process takes its credentials from here: mutual TLS with the job's CA when an
// identity is set, plaintext when none is (`--insecure`, or a tool talking to a plaintext run).
//
// With TLS a peer must present a certificate the job's CA signed, in both directions. A server
// learns who calls from the certificate (`peerName`: its common name, the member's node id); a
// client accepts any server the CA signed, whatever address it was reached at (nodes of a cloud
// job are reached by IP addresses no certificate names), and the server checks the name.

import * as grpc from '@grpc/grpc-js';

/** A member's certificate, its key and the job's CA, as PEM. */
export interface TlsIdentity {
  /** The name the certificate carries (its common name): the node id, or `coordinator`. */
  readonly name: string;
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** What a thread of this process needs to make the same credentials (PEM text: threads get copies). */
export interface TlsThreadData {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

let identity: TlsIdentity | null = null;
let channel: grpc.ChannelCredentials | null = null;
let server: grpc.ServerCredentials | null = null;

/** Sets this process's identity (null: plaintext). Called once by the command that runs, before any connection. */
export function useTls(id: TlsIdentity | null): void {
  identity = id;
  channel = null;
  server = null;
}

/** This process's identity, or null when its connections are plaintext. */
export function tlsIdentity(): TlsIdentity | null {
  return identity;
}

/** Credentials for a client of this process: its certificate, and the job's CA for the server's. */
export function channelCredentials(): grpc.ChannelCredentials {
  if (!identity) return grpc.credentials.createInsecure();
  channel ??= grpc.credentials.createSsl(identity.ca, identity.key, identity.cert, { checkServerIdentity: acceptSignedServer });
  return channel;
}

/** Credentials for a server of this process: a client without a certificate of the job's CA is refused at the handshake. */
export function serverCredentials(): grpc.ServerCredentials {
  if (!identity) return grpc.ServerCredentials.createInsecure();
  server ??= grpc.ServerCredentials.createSsl(identity.ca, [{ private_key: identity.key, cert_chain: identity.cert }], true);
  return server;
}

/**
 * The server's certificate was verified against the job's CA by the handshake; its host name is
 * not checked (members are reached by addresses their certificates do not name).
 */
function acceptSignedServer(): undefined {
  return undefined;
}

/** A server call whose peer may have shown a certificate. */
export interface AuthenticatedCall {
  getAuthContext?(): { sslPeerCertificate?: { subject?: unknown } } | null;
}

/**
 * The name in the certificate the caller showed (its common name), or null when the connection
 * is plaintext. With TLS every caller has one: the handshake refuses those without.
 */
export function peerName(call: AuthenticatedCall): string | null {
  const subject = call.getAuthContext?.()?.sslPeerCertificate?.subject as { CN?: string | string[] } | undefined;
  const cn = subject?.CN;
  if (Array.isArray(cn)) return cn.length === 1 ? cn[0]! : null;
  return typeof cn === 'string' ? cn : null;
}

/**
 * Whether a call may act as `nodeId`: always without TLS (the join token admitted the node), and
 * with TLS only when its certificate names that node. Returns the refusal's sentence, or null.
 */
export function impersonation(call: AuthenticatedCall, nodeId: string): string | null {
  return nameMismatch(peerName(call), nodeId);
}

/** `impersonation` for a caller whose certificate name is known already (`peer`: null without one). */
export function nameMismatch(peer: string | null, nodeId: string): string | null {
  if (!identity || peer === nodeId) return null;
  return peer === null ? `the caller showed no certificate name, and may not act as node ${nodeId}` : `the caller's certificate names "${peer}", not node ${nodeId}`;
}

/** The PEM texts a thread makes its credentials from, or null when plaintext. */
export function tlsThreadData(): TlsThreadData | null {
  return identity ? { ca: identity.ca.toString('utf8'), cert: identity.cert.toString('utf8'), key: identity.key.toString('utf8') } : null;
}
