// Replicas of the pipeline (`--replicas D`): D pipelines of S stages, trained data-parallel.
// Each (replica, stage) is a slot, numbered replica * S + stage, so with one replica a slot is its
// stage. The coordinator, the snapshot managers and every report name a node's stage by its
// slot; the model, the pipeline links and the training data use the stage within its replica.

/** What of a job the slots depend on. */
export interface ReplicaShape {
  readonly stages: number;
  readonly replicas: number;
}

/** Stage slots of the job: one node each. */
export function slotCount(job: ReplicaShape): number {
  return job.stages * job.replicas;
}

export function slotOf(job: ReplicaShape, replica: number, stage: number): number {
  return replica * job.stages + stage;
}

/** The stage within its replica of a slot. */
export function stageOfSlot(job: ReplicaShape, slot: number): number {
  return slot % job.stages;
}

export function replicaOfSlot(job: ReplicaShape, slot: number): number {
  return Math.floor(slot / job.stages);
}

/** Every slot of one stage, by replica. */
export function slotsOfStage(job: ReplicaShape, stage: number): number[] {
  return Array.from({ length: job.replicas }, (_, r) => slotOf(job, r, stage));
}

/**
 * A slot as people read it: `stage 2` with one replica, `stage 2@1` (stage 2 of replica 1) with
 * more, as `--inject STEP:STAGE@REPLICA:KIND` writes it.
 */
export function slotName(job: ReplicaShape, slot: number): string {
  const stage = stageOfSlot(job, slot);
  return job.replicas > 1 ? `stage ${stage}@${replicaOfSlot(job, slot)}` : `stage ${stage}`;
}

/**
 * The index in its step's batch of replica `replica`'s micro-batch `microBatch`: a step trains
 * D x M micro-batches, a pure function of (seed, step), and replica r takes r*M ... (r+1)*M-1.
 */
export function batchMicroBatch(microBatches: number, replica: number, microBatch: number): number {
  return replica * microBatches + microBatch;
}
