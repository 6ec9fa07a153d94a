// What the coordinator asks of nodes itself (everything else comes to it): a failed node's
// snapshot manager, whether it still answers; and at the end of the run, every stage's weights.

import * as grpc from '@grpc/grpc-js';
import { GRPC_CHANNEL_OPTIONS, deadline, loadProto } from '../common/proto.ts';
import { fetchStageWeights } from '../common/stage-weights.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { slotOf } from '../domain/replica-slots.ts';
import { weightsDigest } from '../domain/weights-digest.ts';
import type { CoordinatorStatus } from './core/coordinator-status.ts';
import { channelCredentials } from '../common/transport.ts';

/** How long a failed node's snapshot manager gets to answer before the node counts as lost. */
export const SMP_PROBE_DEADLINE_MS = 1000;

/** Asks the snapshot manager at `address` for its status: `probed(alive, detail)` once it answers or does not. */
export function probeSnapshotManager(address: string, probed: (alive: boolean, detail: string) => void): void {
  const client = new (loadProto().ftrain.v1.SnapshotManager)(address, channelCredentials(), GRPC_CHANNEL_OPTIONS);
  client.Configure({ plan: null, protectedCommitStep: -1 }, { deadline: deadline(SMP_PROBE_DEADLINE_MS) }, (err) => {
    client.close();
    probed(!err, err ? `snapshot manager at ${address}: ${err.details || err.message}` : `snapshot manager at ${address} answered`);
  });
}

/**
 * Reads every stage's weights in stage order and digests them. With replicas, each replica's
 * stages are digested alike, and the run's digest is replica 0's (the first replica's that
 * trained to the end); `replicaDigests` has each replica's ('' for one out at the end), empty
 * without replicas.
 */
export async function finalDigests(status: CoordinatorStatus, job: JobOptions): Promise<{ digest: string; replicaDigests: string[] }> {
  const digests: string[] = [];
  for (let replica = 0; replica < job.replicas; replica++) {
    // A replica out when the run ended (the others trained on without it) holds no final weights: ''.
    if (status.stages[slotOf(job, replica, 0)]!.out) {
      digests.push('');
      continue;
    }
    const all: Float32Array[] = [];
    for (let stage = 0; stage < job.stages; stage++) {
      const slot = status.stages[slotOf(job, replica, stage)]!;
      const node = status.nodes.find((n) => n.nodeId === slot.nodeId)!;
      all.push(...(await fetchStageWeights(node.address, slot.stage)).map((w) => w.values));
    }
    digests.push(weightsDigest(all));
  }
  return { digest: digests.find((d) => d !== '')!, replicaDigests: job.replicas > 1 ? digests : [] };
}
