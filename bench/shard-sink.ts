// A real snapshot manager process as the far end of shard streams, for benchmarks that time
// PutShard over loopback: `bench scale` (the fetch of a rebuild) and `bench tls` (plaintext
// against mutual TLS). The sink is an `ftrain snapshot-manager` child with its slot directory on
// tmpfs; it keeps one shard at a time, as each timed shard is a newer step of the same stage
// whose header frees the older one before its memory is taken (shard-store.ts `free`).

import type * as grpc from '@grpc/grpc-js';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import { parseVmHwmBytes } from '../common/process-memory.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { readSmpInfo } from '../domain/snapshot-slots.ts';
import type { SnapshotManagerClient } from '../proto/generated/ftrain/v1/SnapshotManager.ts';
import { writeShard } from '../snapshot-manager/shard-transfer.ts';

const SHM = '/dev/shm';
/** How long a sink may take to write its address (smp.json) before the bench gives up. */
const SINK_START_TIMEOUT_MS = 30_000;
const SINK_START_POLL_MS = 100;
/** Deadline of one timed PutShard stream. */
const PUT_SHARD_DEADLINE_MS = 120_000;

export interface ShardSinkOptions {
  /** The sink's node id: with TLS, its certificate's name in `tlsDir`. */
  readonly nodeId: string;
  /** A TLS directory with ca.crt and NODE_ID.crt/.key: the sink serves mutual TLS. Null: plaintext. */
  readonly tlsDir: string | null;
}

export interface ShardSinkProcess {
  readonly address: string;
  readonly pid: number;
  /** The sink process's peak resident set (VmHWM), or null where /proc does not tell it. */
  peakRssBytes(): number | null;
  /** Kills the process and removes its slot directory. */
  stop(): void;
}

/** Starts the sink and waits for its address; a sink that does not start in 30 s is killed and rejects. */
export async function startShardSink(o: ShardSinkOptions): Promise<ShardSinkProcess> {
  const dir = mkdtempSync(join(SHM, 'ftrain-bench-sink-'));
  const tls = o.tlsDir === null ? [] : ['--tls-dir', o.tlsDir];
  const child = spawn(process.execPath, [FTRAIN_BIN, 'snapshot-manager', '--dir', dir, '--listen', '127.0.0.1:0', '--node-id', o.nodeId, ...tls, '--log-level', 'error'], { stdio: 'ignore' });
  let exitCode: number | null = null;
  child.on('exit', (code) => (exitCode = code ?? -1));
  const stop = () => {
    child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  let info = readSmpInfo(dir);
  for (let waited = 0; !info && exitCode === null && waited < SINK_START_TIMEOUT_MS; waited += SINK_START_POLL_MS) {
    await new Promise((r) => setTimeout(r, SINK_START_POLL_MS));
    info = readSmpInfo(dir);
  }
  if (!info) {
    stop();
    throw new Error(exitCode === null ? `the snapshot manager of the shard measurement did not start within ${SINK_START_TIMEOUT_MS / 1000} s` : `the snapshot manager of the shard measurement exited with ${exitCode} at start`);
  }
  const pid = child.pid!;
  return {
    address: info.address,
    pid,
    peakRssBytes: () => {
      try {
        return parseVmHwmBytes(readFileSync(`/proc/${pid}/status`, 'utf8'));
      } catch {
        return null;
      }
    },
    stop,
  };
}

/** A SnapshotManager client of the sink with the given credentials (the caller closes it). */
export function shardSinkClient(address: string, credentials: grpc.ChannelCredentials): SnapshotManagerClient {
  const proto = loadProto();
  return new proto.ftrain.v1.SnapshotManager(address, credentials, GRPC_CHANNEL_OPTIONS);
}

/** A shard's bytes and checksum, made once and sent as many times as timed. */
export interface ShardPayload {
  readonly data: Uint8Array;
  readonly crc32: number;
}

export function shardPayload(bytes: number): ShardPayload {
  const data = new Uint8Array(bytes).fill(7);
  return { data, crc32: crc32(data) };
}

/**
 * Milliseconds of one PutShard stream of `payload` as shard 0 of stage 0 at `step`, owned by
 * `ownerNodeId` (with TLS the sink takes it only if that is the name of the client's
 * certificate), until the sink answered. Each call must use a newer step than the last on the
 * same sink: its header then frees the older shard before the new one's memory is taken.
 */
export async function putShardMs(client: SnapshotManagerClient, ownerNodeId: string, step: number, payload: ShardPayload): Promise<number> {
  const bytes = payload.data.byteLength;
  const header = {
    ownerNodeId,
    stage: 0,
    step,
    epoch: 0,
    index: 0,
    crc32: payload.crc32,
    bytes,
    layout: { dataShards: 1, parityShards: 1, totalBytes: bytes, stripeBytes: bytes, stripes: 1 },
    snapshot: { stage: 0, step, tensors: [], scalars: {} },
    protectedCommitStep: step,
  };
  const t0 = performance.now();
  await new Promise<void>((resolve, reject) => {
    const call = client.PutShard({ deadline: deadline(PUT_SHARD_DEADLINE_MS) }, (err) => (err ? reject(new Error(err.details || err.message)) : resolve()));
    writeShard(call, header, payload.data).then(() => call.end(), reject);
  });
  return performance.now() - t0;
}
