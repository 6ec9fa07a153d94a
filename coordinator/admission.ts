// Who may act as a node, decided at the coordinator's gRPC edge before anything reaches the core:
// a Register must carry the job's join token (compared in constant time), and with TLS every call
// that names a node must come from the certificate of that node. A refused call changes nothing
// and is answered NOT_MEMBER (PERMISSION_DENIED); each source that tries is logged once, so a
// flood of bad attempts neither fills the log nor slows the answers to real nodes.

import { createHash, timingSafeEqual } from 'node:crypto';
import type { Logger } from '../common/logging.ts';
import { impersonation, type AuthenticatedCall } from '../common/transport.ts';
import { RefusalReason, type Refusal } from '../domain/refusal.ts';
import type { CoordinatorEvent } from './core/core-events.ts';

/** Sources whose refusals were logged, at most this many (then the oldest is forgotten). */
export const REMEMBERED_SOURCES = 1000;

/** A call as the admission sees it: who it came from, and the certificate it showed. */
export interface AdmittedCall extends AuthenticatedCall {
  getPeer(): string;
}

/** The node an event acts as, or null for events that name none. */
export function actingNode(event: CoordinatorEvent): string | null {
  if (event.type === 'step') return event.report.nodeId;
  return 'nodeId' in event && typeof event.nodeId === 'string' ? event.nodeId : null;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** The host of a gRPC peer string (`ipv4:10.0.0.5:51234`, `ipv6:[::1]:4000`): one source per machine. */
export function peerSource(peer: string): string {
  const bare = peer.replace(/^(ipv4|ipv6|unix):/, '');
  const i = bare.lastIndexOf(':');
  return (i > 0 ? bare.slice(0, i) : bare).replace(/^\[|\]$/g, '');
}

export class Admission {
  private readonly token: Buffer | null;
  private readonly logged = new Set<string>();
  /** Calls refused since the start, for tests and the log. */
  refused = 0;

  constructor(
    /** The job's join token; null: Register needs none (`--insecure`). */
    joinToken: string | null,
    private readonly logger: Logger,
  ) {
    this.token = joinToken === null ? null : digest(joinToken);
  }

  /** Whether a Register with `token` may go on to the core; the refusal when not. */
  register(call: AdmittedCall, nodeId: string, token: string): Refusal | null {
    if (this.token !== null && !timingSafeEqual(digest(token), this.token)) {
      const why = token === '' ? 'it carried no join token' : 'its join token is wrong';
      return this.refuse(call, `node ${nodeId} may not join: ${why}; give the job's token with --join-token-file (or FTRAIN_JOIN_TOKEN)`);
    }
    return this.acting(call, nodeId);
  }

  /** Whether a call naming `nodeId` comes from that node (with TLS); the refusal when not. */
  acting(call: AdmittedCall, nodeId: string | null): Refusal | null {
    if (nodeId === null) return null;
    const impostor = impersonation(call, nodeId);
    return impostor === null ? null : this.refuse(call, `refused: ${impostor}`);
  }

  private refuse(call: AdmittedCall, message: string): Refusal {
    this.refused += 1;
    const source = peerSource(call.getPeer());
    if (!this.logged.has(source)) {
      if (this.logged.size >= REMEMBERED_SOURCES) this.logged.delete(this.logged.values().next().value!);
      this.logged.add(source);
      this.logger.warn({ source }, `a caller that is not a member was refused (further refusals from ${source} are not logged): ${message}`);
    }
    return { reason: RefusalReason.notMember, message };
  }
}
