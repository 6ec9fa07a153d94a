// Worker.FetchState (`--snapshot-shares`): a replica slot whose own share of a step is lost (its
// node went down with it) copies the stage's whole state from a live replica's worker, which holds
// that step in its tensors while it waits for the recovery. The state is taken in one copy the
// moment the call comes (nothing may change it between the checksum and the bytes), then streamed
// like a snapshot: the header with its crc32 and length first, then the bytes in chunks, with
// back-pressure.

import * as grpc from '@grpc/grpc-js';
import { once } from 'node:events';
import { crc32 } from 'node:zlib';
import { statusError } from '../common/proto.ts';
import { decodeOrRefuse } from '../common/wire/refusal-wire.ts';
import { encodeSnapshotStart } from '../common/wire/snapshot-manager-wire.ts';
import { decodeFetchState } from '../common/wire/worker-wire.ts';
import { errorMessage } from '../domain/errors.ts';
import type { FetchStateRequest__Output } from '../proto/generated/ftrain/v1/FetchStateRequest.ts';
import type { SnapshotChunk } from '../proto/generated/ftrain/v1/SnapshotChunk.ts';
import { exportStageState } from './stage-state.ts';
import type { StageTrainer } from './stage-trainer.ts';

/** State bytes per message (gRPC's default receive limit is 4 MiB). */
const STATE_CHUNK_BYTES = 1 << 20;

type StateCall = grpc.ServerWritableStream<FetchStateRequest__Output, SnapshotChunk>;

/** What the worker holds now: its slot's trainer and the epoch of its assignment; null before any. */
export interface HeldState {
  readonly slot: number;
  readonly epoch: number;
  readonly trainer: StageTrainer;
}

/** Serves one FetchState call. */
export function serveState(call: StateCall, held: HeldState | null): void {
  const request = decodeOrRefuse(() => decodeFetchState(call.request), (status) => call.emit('error', status));
  if (!request) return;
  const refuse = (why: string) => call.emit('error', statusError(grpc.status.FAILED_PRECONDITION, why));
  if (!held || held.slot !== request.slot) {
    refuse(`this worker holds ${held ? `slot ${held.slot}` : 'no stage'}, not slot ${request.slot}`);
    return;
  }
  const t = held.trainer;
  if (t.torn || t.unwritten || t.completedSteps !== request.step) {
    refuse(`slot ${held.slot} holds ${t.torn ? 'a torn state (an update abandoned half way)' : t.unwritten ? 'no state yet (it is being restored)' : `step ${t.completedSteps}`}, not step ${request.step}`);
    return;
  }
  let state: ReturnType<typeof exportStageState>;
  try {
    state = exportStageState(t, 0);
  } catch (err) {
    call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err)));
    return;
  }
  const bytes = new Uint8Array(state.buffer);
  void (async () => {
    if (!call.write(encodeSnapshotStart({ ...state.header, epoch: held.epoch }, crc32(bytes), bytes.byteLength))) await once(call, 'drain');
    for (let at = 0; at < bytes.byteLength; at += STATE_CHUNK_BYTES) {
      if (call.destroyed) return;
      if (!call.write({ data: bytes.subarray(at, at + STATE_CHUNK_BYTES) })) await once(call, 'drain');
    }
    call.end();
  })().catch((err: unknown) => call.emit('error', statusError(grpc.status.INTERNAL, errorMessage(err))));
}
