// Heartbeats to the coordinator from a worker thread. tfjs blocks the worker's main event loop
// for seconds per micro-batch on CPU backends, so heartbeats sent from it would let the lease
// of a healthy node expire. This thread has its own event loop; a frozen process (SIGSTOP)
// stops it too, so the lease still catches freezes.
//
// Each heartbeat carries the worker process's memory (a thread shares its process's resident set):
// resident set now and its peak (VmHWM of /proc/self/status on Linux, elsewhere the most seen),
// read at most once a second. The same reading as common/process-memory.ts, which this thread
// cannot import (it has no TypeScript loader): keep the two alike.
//
// Plain JavaScript: worker threads do not inherit the TypeScript loader of the main thread.
// workerData: { protoPath, coordinator, nodeId, intervalMs, deadlineMs, channelOptions, refusalTrailer, tls }
// (tls: common/transport.ts TlsThreadData, PEM texts; null: plaintext).
// The beats go on one Heartbeats stream (see open below). Posts { type: 'failed', code, details,
// refusal, address } for each heartbeat not answered in time and for each end of the stream other than
// the coordinator's closing (`refusal`: the bytes of the typed refusal trailer, decoded by the
// main thread; null when the stream failed otherwise).
// Posts { type: 'beat' } for a heartbeat taken after one or more that failed, { type: 'unsure' }
// for one taken by a leader that cannot reach its store (another may lead). Message 'stop' ends
// it; { type: 'coordinator', address } sends the heartbeats to another coordinator from then on
// (the node re-attached to a new leader).

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';

const { protoPath, coordinator, nodeId, intervalMs, deadlineMs, channelOptions, refusalTrailer, tls } = workerData;
// common/transport.ts channelCredentials: this node's certificate; any server the job's CA signed.
const credentials = tls
  ? grpc.credentials.createSsl(Buffer.from(tls.ca), Buffer.from(tls.key), Buffer.from(tls.cert), { checkServerIdentity: () => undefined })
  : grpc.credentials.createInsecure();
const definition = protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
const proto = grpc.loadPackageDefinition(definition);
let client = new proto.ftrain.v1.Coordinator(coordinator, credentials, channelOptions);
/** Where the beats go now: each failure says which coordinator it came from. */
let beatingTo = coordinator;

/** Shortest time between two readings of the process's memory (common/process-memory.ts MEMORY_SAMPLE_MS). */
const MEMORY_SAMPLE_MS = 1000;
let memory = null;
let memoryAtMs = 0;
let mostSeenBytes = 0;

function peakFromKernel() {
  if (process.platform !== 'linux') return 0;
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function sampleMemory() {
  const now = Date.now();
  if (memory && now - memoryAtMs < MEMORY_SAMPLE_MS) return memory;
  const rssBytes = process.memoryUsage.rss();
  mostSeenBytes = Math.max(mostSeenBytes, rssBytes);
  memory = { rssBytes, peakRssBytes: Math.max(mostSeenBytes, peakFromKernel()) };
  memoryAtMs = now;
  return memory;
}

let taken = false;
let failing = false;

function answered() {
  // The first heartbeat the coordinator took: from now on the node's lease is the short one.
  if (!taken) parentPort.postMessage({ type: 'taken' });
  else if (failing) parentPort.postMessage({ type: 'beat' });
  taken = true;
  failing = false;
}

function failed(code, details, refusal) {
  failing = true;
  parentPort.postMessage({ type: 'failed', code, details, refusal, address: beatingTo });
}

// The beats go on one Heartbeats stream, opened at the first beat and again at the first beat
// after it ended. Its answers come in order: `sent` holds the beats not answered yet, oldest
// first. A beat not answered within `deadlineMs` counts as failed once, as a unary call's
// deadline would (a frozen coordinator: the node looks for the leader after a few); an answer
// that comes later still says the coordinator hears the node. The stream's end (a refusal, the
// connection) fails the beats on it once, with what ended it.
let stream = null;
let sent = [];

function open() {
  const s = client.Heartbeats();
  const pending = [];
  s.on('data', (reply) => {
    pending.shift();
    if (reply?.leaderUnsure) parentPort.postMessage({ type: 'unsure' });
    answered();
  });
  s.on('error', (err) => {
    if (stream !== s) return;
    stream = null;
    sent = [];
    const trailer = err.metadata?.get(refusalTrailer)[0];
    failed(err.code, err.details || err.message, Buffer.isBuffer(trailer) ? trailer : null);
  });
  // Ended with OK (the coordinator closing): the next beat opens another.
  s.on('status', (st) => {
    if (st.code !== grpc.status.OK || stream !== s) return;
    stream = null;
    sent = [];
  });
  stream = s;
  sent = pending;
}

function beat() {
  const now = Date.now();
  for (const b of sent) {
    if (b.late || now - b.atMs <= deadlineMs) continue;
    b.late = true;
    failed(grpc.status.DEADLINE_EXCEEDED, `no answer to a heartbeat within ${deadlineMs} ms`, null);
  }
  if (!stream) open();
  sent.push({ atMs: now, late: false });
  stream.write({ nodeId, memory: sampleMemory() });
}

function closeStream() {
  const s = stream;
  stream = null;
  sent = [];
  s?.cancel();
}

const timer = setInterval(beat, intervalMs);
beat();
parentPort.on('message', (m) => {
  if (m?.type === 'coordinator') {
    closeStream();
    client.close();
    client = new proto.ftrain.v1.Coordinator(m.address, credentials, channelOptions);
    beatingTo = m.address;
    beat();
    return;
  }
  if (m === 'stop') {
    clearInterval(timer);
    closeStream();
    client.close();
    parentPort.close();
  }
});
