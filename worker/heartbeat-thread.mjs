// Heartbeats to the coordinator from a worker thread. tfjs blocks the worker's main event loop
// for seconds per micro-batch on CPU backends, so heartbeats sent from it would let the lease
// of a healthy node expire. This thread has its own event loop; a frozen process (SIGSTOP)
// stops it too, so the lease still catches freezes.
//
// Plain JavaScript: worker threads do not inherit the TypeScript loader of the main thread.
// workerData: { protoPath, coordinator, nodeId, intervalMs, deadlineMs, channelOptions, refusalTrailer }.
// Posts { type: 'failed', code, details, refusal } for each failed heartbeat (`refusal`: the bytes of
// the typed refusal trailer, decoded by the main thread; null when the call failed otherwise).
// Message 'stop' ends it.

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { parentPort, workerData } from 'node:worker_threads';

const { protoPath, coordinator, nodeId, intervalMs, deadlineMs, channelOptions, refusalTrailer } = workerData;
const definition = protoLoader.loadSync(protoPath, { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
const proto = grpc.loadPackageDefinition(definition);
const client = new proto.ftrain.v1.Coordinator(coordinator, grpc.credentials.createInsecure(), channelOptions);

function beat() {
  client.Heartbeat({ nodeId }, { deadline: new Date(Date.now() + deadlineMs) }, (err) => {
    if (!err) return;
    const trailer = err.metadata?.get(refusalTrailer)[0];
    parentPort.postMessage({ type: 'failed', code: err.code, details: err.details || err.message, refusal: Buffer.isBuffer(trailer) ? trailer : null });
  });
}

const timer = setInterval(beat, intervalMs);
beat();
parentPort.on('message', (m) => {
  if (m === 'stop') {
    clearInterval(timer);
    client.close();
    parentPort.close();
  }
});
