// The coordinator's heartbeat desk: a gRPC server on a thread of its own and a port of its own
// (heartbeat-desk-thread.mjs) that takes the nodes' Heartbeats streams. A thousand nodes beat
// twice a second while their thousand step reports hold the coordinator's event loop at the end
// of every step; on the desk, a beat is answered in a millisecond however busy the loop is, and
// the loop takes the beats in batches when it gets to them, or all at once before it checks the
// leases (`drain`), so no beat that arrived is missed by the lease check.
//
// A desk answers only while the coordinator's event loop runs (`pulse`, from its clock tick): a
// coordinator wedged or stuck for longer than PULSE_STALE_MS gets no beat answered, so that its
// nodes look for another leader as they would if it were frozen.
//
// The coordinator still decides: a beat it refuses (the node is not live, the request is
// malformed) ends the stream that carried it with the refusal, a moment after the answer went. A
// standby's desk refuses every beat with NOT_LEADER at once.

import type * as grpc from '@grpc/grpc-js';
import { MessageChannel, Worker as Thread, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { packageUrl } from '../common/package-root.ts';
import { GRPC_SERVER_OPTIONS, PROTO_PATH, listenError } from '../common/proto.ts';
import { REFUSAL_TRAILER } from '../common/wire/refusal-wire.ts';
import { tlsThreadData } from '../common/transport.ts';

/** A beat as the desk took it: the stream it came on, and the request's fields as they came. */
export interface DeskBeat {
  readonly callId: number;
  /** When the desk took it (Date.now()). */
  readonly atMs: number;
  readonly nodeId: unknown;
  readonly memory: unknown;
  /** The name in the caller's certificate; null without TLS. */
  readonly peer: string | null;
}

/** A status as it crosses to the thread (a grpc ServiceError's Metadata does not). */
interface WireStatus {
  readonly code: number;
  readonly details: string;
  readonly trailer: Uint8Array | null;
}

function wireStatus(err: grpc.ServiceError): WireStatus {
  const trailer = err.metadata?.get(REFUSAL_TRAILER)[0];
  return { code: err.code, details: err.details, trailer: Buffer.isBuffer(trailer) ? new Uint8Array(trailer) : null };
}

/** A desk whose coordinator has not pulsed for this long answers no beat. */
export const PULSE_STALE_MS = 1500;

export class HeartbeatDesk {
  private thread: Thread | null = null;
  /** When the coordinator's event loop last ran (Date.now()), shared with the thread. */
  private readonly pulseAt = new Float64Array(new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT));
  /** The longest the thread went without running since `stalledMs` last read it. */
  private readonly ranGap = new Float64Array(new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT));
  private beats: MessagePort | null = null;
  port = 0;

  constructor(
    private readonly options: {
      /** host:port to listen on (port 0: a free one). */
      readonly listen: string;
      readonly leaseMs: number;
      /** Beats taken, in order of arrival. */
      readonly onBeats: (beats: readonly DeskBeat[]) => void;
      readonly onError: (err: Error) => void;
    },
  ) {}

  /** Starts the thread and binds its port; rejects with a ListenError when the port cannot be had. */
  async start(): Promise<number> {
    this.pulse();
    const { port1, port2 } = new MessageChannel();
    const thread = new Thread(packageUrl('coordinator/heartbeat-desk-thread.mjs'), {
      workerData: {
        protoPath: PROTO_PATH,
        listen: this.options.listen,
        serverOptions: GRPC_SERVER_OPTIONS,
        leaseMs: this.options.leaseMs,
        refusalTrailer: REFUSAL_TRAILER,
        beats: port2,
        pulse: this.pulseAt.buffer,
        ran: this.ranGap.buffer,
        staleMs: PULSE_STALE_MS,
        tls: tlsThreadData(),
      },
      transferList: [port2],
    });
    this.thread = thread;
    this.beats = port1;
    port1.on('message', (batch: DeskBeat[]) => this.options.onBeats(batch));
    port1.unref();
    this.port = await new Promise<number>((resolve, reject) => {
      thread.once('message', (m: { type: 'listening'; port: number } | { type: 'failed'; message: string }) => {
        if (m.type === 'listening') resolve(m.port);
        else reject(listenError(this.options.listen, new Error(m.message)));
      });
      thread.once('error', reject);
    });
    thread.on('error', (err) => this.options.onError(err));
    thread.unref();
    return this.port;
  }

  /** The coordinator's event loop runs: beats are answered for another PULSE_STALE_MS. */
  pulse(): void {
    this.pulseAt[0] = Date.now();
  }

  /**
   * The longest the desk's thread went without running since the last call (ms; the first call:
   * since it started). While it ran, it took every beat that came: a coordinator loop that did
   * not run for longer missed no beat for that, and no lease needs the time back.
   */
  stalledMs(): number {
    const ms = this.ranGap[0]!;
    this.ranGap[0] = 0;
    return ms;
  }

  /** Takes every batch the thread has posted so far, now (before the leases are checked). */
  drain(): void {
    if (!this.beats) return;
    for (let m = receiveMessageOnPort(this.beats); m; m = receiveMessageOnPort(this.beats)) this.options.onBeats(m.message as DeskBeat[]);
  }

  /** Ends the stream of `callId` with `err` (a refusal). */
  refuse(callId: number, err: grpc.ServiceError): void {
    this.thread?.postMessage({ type: 'refuse', callId, status: wireStatus(err) });
  }

  /** This coordinator leads, or not: then every beat is refused with `notLeader`. */
  lead(leads: boolean, notLeader: grpc.ServiceError | null): void {
    this.thread?.postMessage({ type: 'lead', leads, notLeader: notLeader ? wireStatus(notLeader) : null });
  }

  /** Replies say the leader cannot reach its store (`value`), or no longer do. */
  unsure(value: boolean): void {
    this.thread?.postMessage({ type: 'unsure', value });
  }

  /** Ends every stream and stops the thread. */
  async close(): Promise<void> {
    const thread = this.thread;
    if (!thread) return;
    this.thread = null;
    this.drain();
    this.beats?.close();
    this.beats = null;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      thread.on('message', (m: { type: string }) => {
        if (m.type !== 'stopped') return;
        clearTimeout(timer);
        resolve();
      });
      thread.postMessage({ type: 'stop' });
    });
    await thread.terminate();
  }
}
