// The heartbeats of a load process's simulated nodes (bench/coordinator-load-process.ts), from a
// thread of their own, as a worker's heartbeat thread sends them (worker/heartbeat-thread.mjs):
// each node a channel and a connection of its own to the coordinator's heartbeat desk, a beat on
// its Heartbeats stream every heartbeat_ms (with the process's memory), the first at a random
// phase. A beat's time is measured from its write to its answer, on this thread: the load
// process's main loop (a thousand step reports a step) does not delay it.
//
// Plain JavaScript: worker threads do not inherit the TypeScript loader of the main thread.
// workerData: { protoPath, channelOptions }. From the load process:
//   { type: 'start', nodeId, address, heartbeatMs }  the node beats from now on;
//   { type: 'stop', nodeId }                          it stops (told to stop);
//   { type: 'silence', nodeId }                       it freezes: posts { type: 'silenced', nodeId, lastHeartbeatAtMs };
//   { type: 'measure', on }                           samples are kept while on;
//   { type: 'collect' }                               posts { type: 'samples', heartbeatMs, errors, fenced, eventLoopP99Ms };
//   { type: 'exit' }                                  cancels every stream and closes every channel.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { parentPort, workerData } from 'node:worker_threads';

const { protoPath, channelOptions } = workerData;
const proto = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true }));

const MEMORY_SAMPLE_MS = 1000;
let memory = null;
let memoryAtMs = 0;

function sampleMemory() {
  const now = Date.now();
  if (!memory || now - memoryAtMs >= MEMORY_SAMPLE_MS) {
    const rss = process.memoryUsage.rss();
    memory = { rssBytes: rss, peakRssBytes: Math.max(rss, memory?.peakRssBytes ?? 0) };
    memoryAtMs = now;
  }
  return memory;
}

let measuring = false;
const heartbeatMs = [];
const errors = {};
const fenced = [];
const loopDelay = monitorEventLoopDelay({ resolution: 10 });
/** By node id: { client, stream, sentAt, timer, lastAtMs, stopped }. */
const nodes = new Map();

/** As coordinator-load-process.ts errorKey: the refusal codes ftrain uses, by name. */
function errorKey(err) {
  if (err.metadata?.get('ftrain-refusal-bin').length > 0) {
    if (err.code === grpc.status.NOT_FOUND) return 'refused:fenced';
    if (err.code === grpc.status.UNAVAILABLE) return 'refused:not-leader';
    return `refused:${grpc.status[err.code] ?? err.code}`;
  }
  return `status:${grpc.status[err.code] ?? err.code}`;
}

function open(n, id) {
  const stream = n.client.Heartbeats();
  const beats = { stream, sentAt: [] };
  stream.on('data', () => {
    const t0 = beats.sentAt.shift();
    if (measuring && t0 !== undefined) heartbeatMs.push(performance.now() - t0);
  });
  stream.on('error', (err) => {
    if (n.beats === beats) n.beats = null;
    if (n.stopped && err.code === grpc.status.CANCELLED) return;
    const key = errorKey(err);
    errors[key] = (errors[key] ?? 0) + 1;
    if (key === 'refused:fenced' && !fenced.includes(id)) fenced.push(id);
  });
  stream.on('status', () => {
    if (n.beats === beats) n.beats = null;
  });
  n.beats = beats;
  return beats;
}

function beat(n, id) {
  if (n.stopped) return;
  n.lastAtMs = Date.now();
  const beats = n.beats ?? open(n, id);
  beats.sentAt.push(performance.now());
  beats.stream.write({ nodeId: id, memory: sampleMemory() });
}

function halt(n) {
  n.stopped = true;
  clearTimeout(n.timer);
  clearInterval(n.timer);
}

parentPort.on('message', (m) => {
  switch (m.type) {
    case 'start': {
      const client = new proto.ftrain.v1.Coordinator(m.address, grpc.credentials.createInsecure(), { ...channelOptions, 'grpc.use_local_subchannel_pool': 1 });
      const n = { client, beats: null, timer: null, lastAtMs: 0, stopped: false };
      nodes.set(m.nodeId, n);
      n.timer = setTimeout(() => {
        beat(n, m.nodeId);
        n.timer = setInterval(() => beat(n, m.nodeId), m.heartbeatMs);
      }, Math.random() * m.heartbeatMs);
      return;
    }
    case 'stop': {
      const n = nodes.get(m.nodeId);
      if (n) halt(n);
      return;
    }
    case 'silence': {
      const n = nodes.get(m.nodeId);
      if (!n) return;
      halt(n);
      parentPort.postMessage({ type: 'silenced', nodeId: m.nodeId, lastHeartbeatAtMs: n.lastAtMs });
      return;
    }
    case 'measure':
      measuring = m.on;
      if (m.on) loopDelay.enable();
      else loopDelay.disable();
      return;
    case 'collect':
      parentPort.postMessage({ type: 'samples', heartbeatMs, errors, fenced, eventLoopP99Ms: loopDelay.percentile(99) / 1e6 });
      return;
    case 'exit':
      for (const n of nodes.values()) {
        halt(n);
        n.beats?.stream.cancel();
        n.client.close();
      }
      parentPort.postMessage({ type: 'exited' });
  }
});
