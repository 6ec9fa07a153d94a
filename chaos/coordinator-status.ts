// Coordinator.Status as `ftrain chaos` reads it: the nodes (with the pids to signal) and the
// run so far (phase, steps, the failures recovered), checked by the wire codec at the edge so the
// rest of chaos works on typed values.

import * as grpc from '@grpc/grpc-js';
import type { NodeSummary, RecoveredFailure } from '../domain/run-status.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';
import type { StatusReply__Output } from '../proto/generated/ftrain/v1/StatusReply.ts';
import { decodeRunStatus } from '../common/wire/coordinator-wire.ts';
import { WireError } from '../common/wire/wire-check.ts';

/** A node as the coordinator lists it, checked on receipt. */
export type StatusNode = NodeSummary;

export interface ClusterStatus {
  readonly nodes: readonly StatusNode[];
  /** The run's phase (domain/run-status.ts RunPhase): 'training' means no recovery is under way. */
  readonly phase: string;
  readonly epoch: number;
  readonly completedSteps: number;
  /** The failure that ended the run, if it failed. */
  readonly failure: { readonly nodeId: string; readonly stage: number | null; readonly detail: string } | null;
  /** Failures recovered so far, in the order they were recovered. */
  readonly failures: readonly RecoveredFailure[];
}

/** Thrown when a Status reply does not have the shape the proto promises. */
export class StatusFormatError extends Error {
  override readonly name = 'StatusFormatError';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`Coordinator.Status ${message}`, options);
  }
}

/** Checks and types a StatusReply (common/wire/coordinator-wire.ts). */
export function parseStatus(reply: StatusReply__Output): ClusterStatus {
  try {
    const { nodes, run } = decodeRunStatus(reply);
    return { nodes, phase: run.phase, epoch: run.epoch, completedSteps: run.completedSteps, failure: run.failure, failures: run.failures };
  } catch (err) {
    if (err instanceof WireError) throw new StatusFormatError(err.field, err.message, { cause: err });
    throw err;
  }
}

/** A Status client with a deadline on every call. */
export class CoordinatorStatusClient {
  private readonly client: CoordinatorClient;

  constructor(readonly address: string) {
    const proto = loadProto();
    this.client = new proto.ftrain.v1.Coordinator(address, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
  }

  status(): Promise<ClusterStatus> {
    return new Promise((resolve, reject) =>
      this.client.Status({}, { deadline: deadline() }, (err, reply) => {
        if (err || !reply) {
          reject(err ?? new Error('empty Status reply'));
          return;
        }
        try {
          resolve(parseStatus(reply));
        } catch (e) {
          reject(e);
        }
      }),
    );
  }

  close(): void {
    this.client.close();
  }
}
