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
import { refusalOf } from '../common/wire/refusal-wire.ts';
import { RefusalReason } from '../domain/refusal.ts';
import { channelCredentials } from '../common/transport.ts';

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
  /** The answering leader's term (0: a coordinator without a store); a new leader's is higher. */
  readonly term: number;
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
    return { nodes, phase: run.phase, epoch: run.epoch, completedSteps: run.completedSteps, failure: run.failure, failures: run.failures, term: Number(reply.term ?? 0) };
  } catch (err) {
    if (err instanceof WireError) throw new StatusFormatError(err.field, err.message, { cause: err });
    throw err;
  }
}

/** With several coordinators, a Status call to one that does not answer gives up after this long. */
export const STATUS_FAILOVER_DEADLINE_MS = 2000;

/**
 * A Status client with a deadline on every call. Given several coordinators (`A,B`, a job run
 * with --ha), it asks the one that answered last and, when that one refuses (a standby) or does
 * not answer, the others in turn: the leader is the one that answers.
 */
export class CoordinatorStatusClient {
  private readonly clients: readonly { readonly address: string; readonly client: CoordinatorClient }[];
  private current = 0;

  constructor(readonly address: string) {
    const proto = loadProto();
    this.clients = address.split(',').map((a) => ({ address: a, client: new proto.ftrain.v1.Coordinator(a, channelCredentials(), GRPC_CHANNEL_OPTIONS) }));
  }

  /** The coordinator that answered last: the leader, with several. */
  get leader(): string {
    return this.clients[this.current]!.address;
  }

  async status(): Promise<ClusterStatus> {
    let last: unknown = null;
    for (let k = 0; k < this.clients.length; k++) {
      const i = (this.current + k) % this.clients.length;
      try {
        const s = await this.ask(i);
        this.current = i;
        return s;
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** How many of the other coordinators answer as standbys (they refuse Status with NOT_LEADER). */
  async standbys(): Promise<number> {
    const answers = await Promise.all(
      this.clients.map((_, i) =>
        i === this.current
          ? Promise.resolve(false)
          : this.ask(i).then(
              () => false,
              (err: unknown) => refusalOf(err as grpc.ServiceError)?.reason === RefusalReason.notLeader,
            ),
      ),
    );
    return answers.filter(Boolean).length;
  }

  private ask(i: number): Promise<ClusterStatus> {
    const ms = this.clients.length > 1 ? STATUS_FAILOVER_DEADLINE_MS : undefined;
    return new Promise((resolve, reject) =>
      this.clients[i]!.client.Status({}, { deadline: deadline(ms) }, (err, reply) => {
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
    for (const c of this.clients) c.client.close();
  }
}
