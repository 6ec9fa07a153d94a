// Refusals at the gRPC edge: a domain Refusal becomes a status code for generic clients plus the
// typed Refusal message in the `ftrain-refusal-bin` trailer; a caller turns a ServiceError back
// into the Refusal (or the matching error class) and switches on its reason.

import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { RefusalReason, refusedError, type Refusal, type RefusedError } from '../../domain/refusal.ts';
import { PROTO_PATH } from '../proto.ts';
import { WireError } from './wire-check.ts';

/** The trailer that carries the typed refusal (binary metadata keys end in -bin). */
export const REFUSAL_TRAILER = 'ftrain-refusal-bin';

const REASON_NAMES: Readonly<Record<RefusalReason, string>> = {
  invalid: 'REFUSAL_REASON_INVALID',
  fenced: 'REFUSAL_REASON_FENCED',
  duplicate: 'REFUSAL_REASON_DUPLICATE',
  'run-ended': 'REFUSAL_REASON_RUN_ENDED',
  stopping: 'REFUSAL_REASON_STOPPING',
  'not-training': 'REFUSAL_REASON_NOT_TRAINING',
  'stale-epoch': 'REFUSAL_REASON_STALE_EPOCH',
  'wrong-stage': 'REFUSAL_REASON_WRONG_STAGE',
  'wrong-step': 'REFUSAL_REASON_WRONG_STEP',
  'wrong-state': 'REFUSAL_REASON_WRONG_STATE',
  'not-leader': 'REFUSAL_REASON_NOT_LEADER',
  'not-member': 'REFUSAL_REASON_NOT_MEMBER',
  unknown: 'REFUSAL_REASON_UNSPECIFIED',
};
const REASONS_BY_NAME = new Map(Object.entries(REASON_NAMES).map(([reason, name]) => [name, reason as RefusalReason]));

/** The gRPC status code a refusal is sent with. */
export const REFUSAL_CODES: Readonly<Record<RefusalReason, grpc.status>> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  fenced: grpc.status.NOT_FOUND,
  duplicate: grpc.status.ALREADY_EXISTS,
  'run-ended': grpc.status.FAILED_PRECONDITION,
  stopping: grpc.status.FAILED_PRECONDITION,
  'not-training': grpc.status.FAILED_PRECONDITION,
  'stale-epoch': grpc.status.FAILED_PRECONDITION,
  'wrong-stage': grpc.status.FAILED_PRECONDITION,
  'wrong-step': grpc.status.FAILED_PRECONDITION,
  'wrong-state': grpc.status.FAILED_PRECONDITION,
  'not-leader': grpc.status.UNAVAILABLE,
  'not-member': grpc.status.PERMISSION_DENIED,
  unknown: grpc.status.UNKNOWN,
};

let refusalType: protobuf.Type | undefined;

function messageType(): protobuf.Type {
  refusalType ??= protobuf.loadSync(PROTO_PATH).lookupType('ftrain.v1.Refusal');
  return refusalType;
}

/** A ServiceError that carries `refusal`, for a handler's callback or a stream's 'error'. */
export function refusalStatus(refusal: Refusal): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  const type = messageType();
  const bytes = type
    .encode(
      type.fromObject({
        reason: REASON_NAMES[refusal.reason],
        message: refusal.message,
        runEpoch: refusal.runEpoch ?? 0,
        givenEpoch: refusal.givenEpoch ?? 0,
        leaderAddress: refusal.leaderAddress ?? '',
        leaderTerm: refusal.leaderTerm ?? 0,
      }),
    )
    .finish();
  metadata.set(REFUSAL_TRAILER, Buffer.from(bytes));
  const err = new Error(refusal.message) as grpc.ServiceError;
  err.code = REFUSAL_CODES[refusal.reason];
  err.details = refusal.message;
  err.metadata = metadata;
  return err;
}

/** A codec's WireError (or anything else thrown while decoding) as an INVALID_ARGUMENT refusal. */
export function invalidStatus(err: unknown): grpc.ServiceError {
  const message = err instanceof WireError ? err.message : `malformed request: ${err instanceof Error ? err.message : String(err)}`;
  return refusalStatus({ reason: RefusalReason.invalid, message });
}

/**
 * Runs a codec's decode of a request. On a malformed one, answers it with INVALID_ARGUMENT through
 * `refuse` (a unary callback, or a stream's error) and returns undefined: the handler stops there.
 */
export function decodeOrRefuse<T extends object>(decode: () => T, refuse: (status: grpc.ServiceError) => void): T | undefined {
  try {
    return decode();
  } catch (err) {
    refuse(invalidStatus(err));
    return undefined;
  }
}

/**
 * The refusal a failed call carries, or null when the call failed for another reason (the
 * connection, a deadline, a peer without the trailer).
 */
export function refusalOf(err: grpc.ServiceError | null | undefined): Refusal | null {
  const raw = err?.metadata?.get(REFUSAL_TRAILER)[0];
  return Buffer.isBuffer(raw) ? refusalFromTrailer(raw, err?.details ?? '') : null;
}

/** The refusal in a trailer's bytes (as a thread passed them on), or null when they do not decode. */
export function refusalFromTrailer(raw: Uint8Array, details: string): Refusal | null {
  let decoded: { reason?: string; message?: string; runEpoch?: number; givenEpoch?: number; leaderAddress?: string; leaderTerm?: number };
  try {
    const type = messageType();
    decoded = type.toObject(type.decode(raw), { enums: String, longs: Number, defaults: true }) as typeof decoded;
  } catch {
    return null;
  }
  const reason = REASONS_BY_NAME.get(decoded.reason ?? '') ?? RefusalReason.unknown;
  return {
    reason,
    message: decoded.message || details,
    ...(reason === RefusalReason.staleEpoch ? { runEpoch: decoded.runEpoch ?? 0, givenEpoch: decoded.givenEpoch ?? 0 } : {}),
    ...(reason === RefusalReason.notLeader ? { leaderAddress: decoded.leaderAddress ?? '', leaderTerm: decoded.leaderTerm ?? 0 } : {}),
  };
}

/** The error a caller throws for a failed call: the refusal's class, or the ServiceError itself. */
export function callError(err: grpc.ServiceError, rpc: string): RefusedError | grpc.ServiceError {
  const refusal = refusalOf(err);
  return refusal ? refusedError(refusal, rpc, err) : err;
}
