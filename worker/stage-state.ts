// A stage's whole training state (parameters, Adam moments and step count) as one byte buffer
// for a snapshot, and back. Restoring it gives bit-identical training from that step on.

import type { SnapshotHeader, TensorEntry } from '../domain/snapshot-slots.ts';
import type { StageTrainer } from './stage-trainer.ts';
import { assignOwned, tf, unwritten, valuesToReadNow, valuesToWriteNow } from './tfjs-backend.ts';

/** Thrown when a snapshot does not fit the stage it is restored into. */
export class SnapshotMismatchError extends Error {
  override readonly name = 'SnapshotMismatchError';
}

function stateTensors(trainer: StageTrainer): { name: string; tensor: tf.Variable }[] {
  const names = trainer.model.names;
  return [
    ...trainer.model.variables.map((v, i) => ({ name: names[i]!, tensor: v })),
    ...trainer.adam.m.map((v, i) => ({ name: `adam.m/${names[i]!}`, tensor: v })),
    ...trainer.adam.v.map((v, i) => ({ name: `adam.v/${names[i]!}`, tensor: v })),
  ];
}

/** Bytes of a stage's state: parameters and both Adam moments, as float32. */
export function stageStateBytes(trainer: StageTrainer): number {
  return stateTensors(trainer).reduce((n, e) => n + e.tensor.size, 0) * 4;
}

/** The layout of the stage's state as a snapshot header gives it (names, shapes, byte offsets), reading no values. */
export function stageStateLayout(trainer: StageTrainer): TensorEntry[] {
  let offset = 0;
  return stateTensors(trainer).map((e) => {
    const t = { name: e.name, shape: e.tensor.shape, offset, length: e.tensor.size };
    offset += e.tensor.size * 4;
    return t;
  });
}

/**
 * The state as the backend holds it: the snapshot header (tensor layout, scalars) and each
 * tensor's values in order, as given by valuesToReadNow (on wasm, views of its heap). The views
 * must be read before tfjs runs anything else, and between steps: the weights must not change.
 */
export function stageStateViews(trainer: StageTrainer, gradNorm: number): { header: SnapshotHeader; values: Float32Array[] } {
  const tensors: TensorEntry[] = [];
  const values: Float32Array[] = [];
  let offset = 0;
  for (const e of stateTensors(trainer)) {
    const v = valuesToReadNow(e.tensor);
    values.push(v);
    tensors.push({ name: e.name, shape: e.tensor.shape, offset: offset * 4, length: v.length });
    offset += v.length;
  }
  return {
    header: { stage: trainer.slot, step: trainer.completedSteps, tensors, scalars: { adamT: trainer.adam.t, seed: trainer.job.seed, gradNorm } },
    values,
  };
}

/** Copies the state out of the backend into one new buffer (a disk checkpoint's). Call between steps. */
export function exportStageState(trainer: StageTrainer, gradNorm: number): { header: SnapshotHeader; buffer: ArrayBuffer } {
  const { header, values } = stageStateViews(trainer, gradNorm);
  const total = values.reduce((n, v) => n + v.length, 0);
  const buffer = new ArrayBuffer(total * 4);
  const all = new Float32Array(buffer);
  let offset = 0;
  for (const v of values) {
    all.set(v, offset);
    offset += v.length;
  }
  return { header, buffer };
}

/** The stage's state tensors, checked against a snapshot's layout (same names, sizes, order, back to back). */
function matchingTensors(trainer: StageTrainer, header: SnapshotHeader): { name: string; tensor: tf.Variable }[] {
  if (header.stage !== trainer.slot) throw new SnapshotMismatchError(`snapshot is of stage ${header.stage}, not stage ${trainer.slot}`);
  const entries = stateTensors(trainer);
  if (entries.length !== header.tensors.length) {
    throw new SnapshotMismatchError(`snapshot has ${header.tensors.length} tensors, stage ${trainer.stage} has ${entries.length}`);
  }
  let offset = 0;
  entries.forEach((e, i) => {
    const t = header.tensors[i]!;
    if (t.name !== e.name || t.length !== e.tensor.size || t.offset !== offset) {
      throw new SnapshotMismatchError(`snapshot tensor ${t.name} (${t.length} values at byte ${t.offset}) does not match ${e.name} (${e.tensor.size} values at byte ${offset})`);
    }
    offset += t.length * 4;
  });
  return entries;
}

/**
 * Where a snapshot's bytes go when it is loaded with one copy: the state tensors' own storage (on
 * wasm its heap, on cpu the backend's arrays), in the snapshot's order. Null, with nothing
 * changed, when the backend keeps no storage that can be written (the native one): use
 * importStageState then. Fill them before tfjs runs anything else, then call importedInPlace.
 */
export function inPlaceTargets(trainer: StageTrainer, header: SnapshotHeader): Uint8Array[] | null {
  const entries = matchingTensors(trainer, header);
  if (!entries.every((e) => valuesToWriteNow(e.tensor) !== null)) return null;
  // The wasm backend's matrix kernel keeps a packed copy of each weight it multiplies by, keyed by
  // the weight's storage and dropped only when that storage is freed: values written into the
  // storage a weight already had would leave the packed copy of the old values in use (a stage
  // rolled back to an older step would go on computing with its newer weights). So the
  // parameters get fresh storage first, one at a time: the old is freed, and its packed copy with
  // it. A stage that has not computed since its storage was made (just built) has no packed copy.
  if (trainer.model.computed) {
    for (const v of trainer.model.variables) assignOwned(v, unwritten(v.shape));
    trainer.model.computed = false;
  }
  const targets: Uint8Array[] = [];
  for (const e of entries) {
    const values = valuesToWriteNow(e.tensor);
    if (!values) return null;
    targets.push(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  return targets;
}

/** The targets of inPlaceTargets hold the snapshot `header` describes: the stage is at its step. */
export function importedInPlace(trainer: StageTrainer, header: SnapshotHeader): void {
  trainer.adam.t = header.scalars.adamT ?? 0;
  trainer.completedSteps = header.step;
  trainer.repaired();
}

/** Loads a snapshot (already checksum-verified) into the trainer. */
export function importStageState(trainer: StageTrainer, header: SnapshotHeader, data: Uint8Array): void {
  const entries = matchingTensors(trainer, header);
  entries.forEach((e, i) => {
    const t = header.tensors[i]!;
    // Copy out of the file buffer: it may not be 4-byte aligned (and Buffer.slice would share it).
    const bytes = new Uint8Array(t.length * 4);
    bytes.set(data.subarray(t.offset, t.offset + t.length * 4));
    const values = new Float32Array(bytes.buffer);
    const fresh = tf.tensor(values, e.tensor.shape, 'float32');
    e.tensor.assign(fresh);
    fresh.dispose();
  });
  trainer.adam.t = header.scalars.adamT ?? 0;
  trainer.completedSteps = header.step;
  trainer.repaired();
}
