// Coordinator.Status as `ftrain chaos` reads it: the nodes (with the pids to signal) and the
// run so far (phase, steps, the failures recovered). The reply is JSON inside the proto; it is
// checked here, at the edge, so the rest of chaos works on typed values.

import * as grpc from '@grpc/grpc-js';
import type { NodeSummary, RecoveredFailure } from '../coordinator/coordinator-core.ts';
import { NodeState } from '../coordinator/node-lifecycle.ts';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import type { CoordinatorClient } from '../proto/generated/ftrain/v1/Coordinator.ts';

/** A node as the coordinator lists it, checked on receipt. */
export type StatusNode = NodeSummary;

export interface ClusterStatus {
  readonly nodes: readonly StatusNode[];
  /** coordinator-core RunPhase: 'training' means no recovery is under way. */
  readonly phase: string;
  readonly epoch: number;
  readonly completedSteps: number;
  /** The failure that ended the run, if it failed. */
  readonly failure: { readonly nodeId: string; readonly stage: number | null; readonly detail: string } | null;
  /** Failures recovered so far, in the order they were recovered. */
  readonly failures: readonly RecoveredFailure[];
}

/** Thrown when a Status reply does not have the shape the proto comment promises. */
export class StatusFormatError extends Error {
  override readonly name = 'StatusFormatError';
  constructor(
    readonly field: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`Coordinator.Status ${field}: ${message}`, options);
  }
}

function parseJson(field: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new StatusFormatError(field, 'is not JSON', { cause: err });
  }
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NODE_STATES = new Set<string>(Object.values(NodeState));

/** Checks and types a StatusReply's two JSON fields. */
export function parseStatus(nodesJson: string, reportJson: string): ClusterStatus {
  const nodesRaw = parseJson('nodesJson', nodesJson);
  if (!Array.isArray(nodesRaw)) throw new StatusFormatError('nodesJson', 'is not an array');
  const nodes = nodesRaw.map((n, i): StatusNode => {
    if (!isRecord(n) || typeof n.nodeId !== 'string' || typeof n.state !== 'string' || !NODE_STATES.has(n.state)) {
      throw new StatusFormatError('nodesJson', `entry ${i} has no nodeId or a state that is not a node state`);
    }
    const num = (v: unknown) => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : 0);
    return {
      nodeId: n.nodeId,
      state: n.state as NodeState,
      stage: typeof n.stage === 'number' ? n.stage : null,
      pid: num(n.pid),
      smpPid: num(n.smpPid),
      agentPid: num(n.agentPid),
      hostname: typeof n.hostname === 'string' ? n.hostname : '',
      address: typeof n.address === 'string' ? n.address : '',
    };
  });
  const report = parseJson('reportJson', reportJson);
  if (!isRecord(report) || typeof report.phase !== 'string' || typeof report.completedSteps !== 'number' || !Array.isArray(report.failures)) {
    throw new StatusFormatError('reportJson', 'lacks phase, completedSteps or failures');
  }
  for (const [i, f] of report.failures.entries()) {
    if (!isRecord(f) || typeof f.nodeId !== 'string' || typeof f.detectedAtMs !== 'number' || typeof f.recoverMs !== 'number') {
      throw new StatusFormatError('reportJson', `failure ${i} lacks nodeId, detectedAtMs or recoverMs`);
    }
  }
  const failure = isRecord(report.failure) ? (report.failure as unknown as ClusterStatus['failure']) : null;
  return {
    nodes,
    phase: report.phase,
    epoch: typeof report.epoch === 'number' ? report.epoch : 0,
    completedSteps: report.completedSteps,
    failure,
    failures: report.failures as RecoveredFailure[],
  };
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
          resolve(parseStatus(reply.nodesJson, reply.reportJson));
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
