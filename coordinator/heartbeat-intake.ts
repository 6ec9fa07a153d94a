// How heartbeats reach the core: from the heartbeat desk (heartbeat-desk.ts), which has answered
// them already, in batches; and on the coordinator's own port, from nodes that were not told of
// the desk (tools, older builds), answered here once the core took them. Either way the core
// decides: a beat it refuses ends the stream that carried it with the refusal.

import type * as grpc from '@grpc/grpc-js';
import { decodeHeartbeat } from '../common/wire/coordinator-wire.ts';
import { decodeOrRefuse, refusalStatus } from '../common/wire/refusal-wire.ts';
import type { HeartbeatReply } from '../proto/generated/ftrain/v1/HeartbeatReply.ts';
import type { HeartbeatRequest__Output } from '../proto/generated/ftrain/v1/HeartbeatRequest.ts';
import type { CoordinatorEvent, Reply } from './core/core-events.ts';
import { impersonation, nameMismatch } from '../common/transport.ts';
import { RefusalReason } from '../domain/refusal.ts';
import type { DeskBeat, HeartbeatDesk } from './heartbeat-desk.ts';

/** What the intake needs of the coordinator. */
export interface BeatHost {
  /** The coordinator's clock now. */
  now(): number;
  /** Feeds an event to the core; `answer` gets its reply. */
  feed(event: CoordinatorEvent, answer: (reply: Reply) => void): void;
  /** The answer to a beat taken. */
  answer(): HeartbeatReply;
}

export type BeatStreams = Set<grpc.ServerDuplexStream<HeartbeatRequest__Output, HeartbeatReply>>;

/** The beats the desk took (and answered): each renews its node's lease, or the desk ends its stream with the refusal. */
export function takeDeskBeats(host: BeatHost, desk: HeartbeatDesk, beats: readonly DeskBeat[]): void {
  const now = host.now();
  const wallNow = Date.now();
  for (const b of beats) {
    // The lease runs from when the desk took it (on the coordinator's clock), not from now.
    const heardAtMs = now - Math.max(0, wallNow - b.atMs);
    const event = decodeOrRefuse(() => ({ type: 'heartbeat' as const, ...decodeHeartbeat({ nodeId: b.nodeId, memory: b.memory } as HeartbeatRequest__Output), heardAtMs }), (err) => desk.refuse(b.callId, err));
    if (!event) continue;
    // With TLS a beat renews only the lease of the node its certificate names.
    const impostor = nameMismatch(b.peer, event.nodeId);
    if (impostor !== null) {
      desk.refuse(b.callId, refusalStatus({ reason: RefusalReason.notMember, message: `heartbeat refused: ${impostor}` }));
      continue;
    }
    host.feed(event, (reply) => {
      if (!reply.ok) desk.refuse(b.callId, refusalStatus(reply.refusal));
    });
  }
}

/** The Heartbeats handler of the coordinator's own port; `open` holds its streams while they last. */
export function heartbeatsOnCoordinatorPort(host: BeatHost, open: BeatStreams): grpc.handleBidiStreamingCall<HeartbeatRequest__Output, HeartbeatReply> {
  return (call) => {
    // Each beat as Heartbeat takes it; the first refused ends the stream with its refusal.
    let ended = false;
    const end = (status: grpc.ServiceError) => {
      if (ended) return;
      ended = true;
      open.delete(call);
      call.emit('error', status);
    };
    open.add(call);
    call.on('data', (r: HeartbeatRequest__Output) => {
      if (ended) return;
      const event = decodeOrRefuse(() => ({ type: 'heartbeat' as const, ...decodeHeartbeat(r) }), end);
      if (!event) return;
      const impostor = impersonation(call, event.nodeId);
      if (impostor !== null) return end(refusalStatus({ reason: RefusalReason.notMember, message: `heartbeat refused: ${impostor}` }));
      host.feed(event, (reply) => {
        if (ended) return;
        if (reply.ok) call.write(host.answer());
        else end(refusalStatus(reply.refusal));
      });
    });
    const closed = () => {
      open.delete(call);
      if (ended) return;
      ended = true;
      call.end();
    };
    call.on('end', closed);
    call.on('cancelled', closed);
    call.on('error', () => open.delete(call));
  };
}
