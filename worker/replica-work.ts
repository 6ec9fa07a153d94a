// What a replica's stage trains in each step under its assignment, and the ranks it plays in its
// stage's ring, while every replica trains (or one is out, `--on-replica-loss keep|shrink`):
//
// - keep: this replica trains its guests' micro-batches as well as its own (owners: its own, then
//   the guests) and plays their ranks in the ring of D; a guest's address is this node's. The
//   batch counts all D replicas.
// - shrink: the replicas out are out of the ring and the batch. The ring's members are the others,
//   ascending, and a rank is a position in that list (a ReduceChunk's `from_replica` names it);
//   the batch counts the D' members.
//
// A pure function of the assignment: every stage of a replica is given the same lists, so its
// stages agree on the owners (and the pipe keys) of each step.

import type { AssignCommand } from '../domain/commands.ts';
import { ProtocolError } from '../domain/errors.ts';
import type { RingPlace } from './replica-ring.ts';
import type { StepWork } from './stage-trainer.ts';

export interface ReplicaWork {
  readonly work: StepWork;
  /** This worker's place in its stage's ring; null with one replica (no ring). */
  readonly place: RingPlace | null;
  /**
   * Whether this stage writes the disk checkpoints of its stage's replicas (they hold the same
   * bits): replica 0's, or while replica 0 is out its host's (keep) or the lowest replica left's
   * (shrink).
   */
  readonly writesCheckpoints: boolean;
}

/** The work and the ring place of an assignment of a job of `replicas` replicas. */
export function replicaWorkOf(a: Pick<AssignCommand, 'stage' | 'epoch' | 'replica' | 'replicaAddresses' | 'guestReplicas' | 'outReplicas'>, replicas: number): ReplicaWork {
  const out = a.outReplicas ?? [];
  const owners = [a.replica, ...(a.guestReplicas ?? [])];
  if (replicas === 1) return { work: { owners, replicasInBatch: 1 }, place: null, writesCheckpoints: true };
  const members = Array.from({ length: replicas }, (_, r) => r).filter((r) => !out.includes(r));
  const writesCheckpoints = owners.includes(members[0]!);
  const ranks = owners.map((r) => members.indexOf(r));
  if (ranks.includes(-1)) throw new ProtocolError(`replica ${a.replica} cannot train replicas [${owners.join(', ')}] with replicas [${out.join(', ')}] out of the ring`);
  if (a.replicaAddresses.length !== replicas) throw new ProtocolError(`${a.replicaAddresses.length} replica addresses for ${replicas} replicas`);
  return {
    work: { owners, replicasInBatch: members.length },
    writesCheckpoints,
    place: { stage: a.stage, epoch: a.epoch, ranks, size: members.length, addresses: members.map((r) => a.replicaAddresses[r]!) },
  };
}
