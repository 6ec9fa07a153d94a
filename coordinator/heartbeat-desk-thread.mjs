// The coordinator's heartbeat desk, on a thread of its own (coordinator/heartbeat-desk.ts starts
// it). Nodes send their heartbeats here, on a port of its own (RegisterReply.heartbeat_address):
// a beat is answered at once, whatever the coordinator's event loop is busy with (a thousand step
// reports at the end of each step), and handed to it in batches. The coordinator decides what the
// beat means: it renews the lease, or refuses it (the node is not live, the request is malformed),
// and then this thread ends the stream that carried it with that refusal.
//
// Plain JavaScript: worker threads do not inherit the TypeScript loader of the main thread.
// A beat is answered only while the coordinator's event loop is alive: its clock tick writes the
// time into `pulse` (a SharedArrayBuffer) every 200 ms, and a desk whose pulse is older than
// `staleMs` holds its answers until the pulse comes back (a coordinator wedged in a loop, or stuck,
// is not one a node should stay with: unanswered, its nodes ask who leads). Held, each stream's
// answers still go in the order of its beats, one per beat.
//
// workerData: { protoPath, listen, serverOptions, leaseMs, refusalTrailer, beats, pulse, staleMs, ran }:
// `beats` is a MessagePort that takes arrays of { callId, nodeId, memory, atMs } (the main thread
// also drains it synchronously before it checks leases); `ran` (a SharedArrayBuffer of one
// float) holds the longest this thread's own loop went without running since the main thread
// last read it (then 0), in ms. From the main thread, on parentPort:
//   { type: 'lead', leads, notLeader }  this coordinator leads, or not (`notLeader`: the refusal
//                                       every beat then gets: { code, details, trailer });
//   { type: 'unsure', value }           replies say the leader cannot reach its store;
//   { type: 'refuse', callId, status }  end that stream with `status` ({ code, details, trailer });
//   { type: 'stop' }                    end every stream, stop serving, post { type: 'stopped' }.
// Posts { type: 'listening', port } once bound, or { type: 'failed', message }.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parentPort, workerData } from 'node:worker_threads';

const { protoPath, listen, serverOptions, leaseMs, refusalTrailer, beats, staleMs, tls } = workerData;
const pulse = new Float64Array(workerData.pulse);
const ran = new Float64Array(workerData.ran);

/** This thread's loop looks at the clock this often: a longer gap says it did not run (the whole process stopped). */
const RAN_CHECK_MS = 50;
let lastRanAtMs = Date.now();
const ranTimer = setInterval(() => {
  const now = Date.now();
  ran[0] = Math.max(ran[0], now - lastRanAtMs - RAN_CHECK_MS);
  lastRanAtMs = now;
}, RAN_CHECK_MS);
// common/proto.ts PROTO_LOADER_OPTIONS (a function does not cross to a thread): keep the two alike.
const proto = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true }));

/** Beats taken within this long of each other go to the main thread together. */
const BATCH_MS = 20;
/** How often held answers look for the pulse again. */
const HELD_RETRY_MS = 50;
/** How long the streams get to end before the server is shut down regardless. */
const SHUTDOWN_GRACE_MS = 1000;

let leads = true;
let notLeader = null;
let unsure = false;
/** The open streams, by call id. */
const calls = new Map();
let nextCallId = 1;
let batch = [];
let flushTimer = null;
/** The call ids of the beats whose answers wait for the pulse, oldest first. */
let held = [];
let heldTimer = null;

function serviceError(s) {
  const metadata = new grpc.Metadata();
  if (s.trailer) metadata.set(refusalTrailer, Buffer.from(s.trailer));
  const err = new Error(s.details);
  err.code = s.code;
  err.details = s.details;
  err.metadata = metadata;
  return err;
}

function refuse(callId, status) {
  const call = calls.get(callId);
  if (!call) return;
  calls.delete(callId);
  call.emit('error', serviceError(status));
}

function answer(callId) {
  calls.get(callId)?.write({ leaseMs, leaderUnsure: unsure });
}

function releaseHeld() {
  heldTimer = null;
  if (Date.now() - pulse[0] > staleMs) {
    heldTimer = setTimeout(releaseHeld, HELD_RETRY_MS);
    return;
  }
  const waiting = held;
  held = [];
  for (const callId of waiting) answer(callId);
}

function flush() {
  flushTimer = null;
  if (batch.length === 0) return;
  beats.postMessage(batch);
  batch = [];
}

/** The common name of the certificate the caller showed (common/transport.ts peerName), or null. */
function peerName(call) {
  const cn = call.getAuthContext?.()?.sslPeerCertificate?.subject?.CN;
  if (Array.isArray(cn)) return cn.length === 1 ? cn[0] : null;
  return typeof cn === 'string' ? cn : null;
}

function Heartbeats(call) {
  const callId = nextCallId++;
  const peer = tls ? peerName(call) : null;
  calls.set(callId, call);
  call.on('data', (r) => {
    if (!calls.has(callId)) return;
    if (!leads) return refuse(callId, notLeader);
    // The answer goes now; the coordinator refuses the stream later if it does not take the beat.
    if (typeof r?.nodeId === 'string' && r.nodeId.trim() !== '') {
      if (held.length === 0 && Date.now() - pulse[0] <= staleMs) answer(callId);
      else {
        held.push(callId);
        heldTimer ??= setTimeout(releaseHeld, HELD_RETRY_MS);
      }
    }
    batch.push({ callId, nodeId: r?.nodeId, memory: r?.memory ?? null, atMs: Date.now(), peer });
    flushTimer ??= setTimeout(flush, BATCH_MS);
  });
  const closed = () => {
    if (calls.delete(callId)) call.end();
  };
  call.on('end', closed);
  call.on('cancelled', () => calls.delete(callId));
  call.on('error', () => calls.delete(callId));
}

// A failed bind is reported to the main thread, which says why: not logged here too (as common/proto.ts bindServer).
grpc.setLogger({
  error: (message, ...rest) => {
    if (typeof message === 'string' && /^No address added out of total \d+ resolved/.test(message)) return;
    console.error(`E ${String(message)}`, ...rest);
  },
  info: (message, ...rest) => console.error(`I ${String(message)}`, ...rest),
  debug: (message, ...rest) => console.error(`D ${String(message)}`, ...rest),
});

const server = new grpc.Server(serverOptions);
server.addService(proto.ftrain.v1.Coordinator.service, { Heartbeats });
// common/transport.ts serverCredentials: with TLS, a caller without a certificate of the job's CA is refused at the handshake.
const credentials = tls ? grpc.ServerCredentials.createSsl(Buffer.from(tls.ca), [{ private_key: Buffer.from(tls.key), cert_chain: Buffer.from(tls.cert) }], true) : grpc.ServerCredentials.createInsecure();
server.bindAsync(listen, credentials, (err, port) => {
  if (err) parentPort.postMessage({ type: 'failed', message: err.message });
  else parentPort.postMessage({ type: 'listening', port });
});

parentPort.on('message', (m) => {
  switch (m.type) {
    case 'lead':
      leads = m.leads;
      notLeader = m.notLeader;
      return;
    case 'unsure':
      unsure = m.value;
      return;
    case 'refuse':
      refuse(m.callId, m.status);
      return;
    case 'stop': {
      flush();
      clearTimeout(heldTimer);
      clearInterval(ranTimer);
      for (const call of calls.values()) call.end();
      calls.clear();
      const stopped = () => parentPort.postMessage({ type: 'stopped' });
      const timer = setTimeout(() => {
        server.forceShutdown();
        stopped();
      }, SHUTDOWN_GRACE_MS);
      server.tryShutdown(() => {
        clearTimeout(timer);
        stopped();
      });
    }
  }
});
