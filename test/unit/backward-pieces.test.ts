// A backward pass made one piece of the model at a time (so a Halt is heard between pieces) gives
// the gradients of the one-tape backward bit for bit, on the first, a middle and the last stage,
// on cpu and on wasm; and one abandoned between pieces frees what it made.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GptStage } from '../../worker/gpt-stage.ts';
import { tf, useBackend } from '../../worker/tfjs-backend.ts';

const MODEL = { seqLen: 8, dModel: 16, heads: 2, layersPerStage: 2, ffnMult: 4 };
const ROWS = 2;

function bytes(t: tf.Tensor | null): Buffer {
  if (!t) return Buffer.alloc(0);
  const v = t.dataSync() as Float32Array;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

describe.each(['cpu', 'wasm'] as const)('backward in pieces on %s', (backend) => {
  const stages: GptStage[] = [];
  beforeAll(async () => {
    await useBackend(backend);
    for (let s = 0; s < 3; s++) stages.push(new GptStage({ stage: s, numStages: 3 }, MODEL, 7));
  });
  afterAll(() => {
    for (const s of stages) s.dispose();
  });

  const ids = () => tf.tensor1d(Array.from({ length: ROWS * MODEL.seqLen }, (_, i) => (i * 7 + 3) % 60), 'int32');
  const activation = (seed: number) => tf.randomNormal([ROWS, MODEL.seqLen, MODEL.dModel], 0, 1, 'float32', seed);

  for (const stage of [0, 1, 2]) {
    it(`stage ${stage} of 3: the same bytes, and one await between pieces`, async () => {
      const m = stages[stage]!;
      const input = stage === 0 ? ids() : activation(1);
      const from = stage === 2 ? { targets: ids() } : { dOutput: activation(2) };
      const one = m.backward(input, ROWS, from);
      let awaits = 0;
      const before = tf.memory().numTensors;
      const pieces = await m.backwardInPieces(input, ROWS, from, m.inOrderOps, async () => {
        awaits += 1;
      });
      // The pieces: the embedding (stage 0), two blocks in two halves each, the head (stage 2); an
      // await between each two.
      expect(awaits).toBe(2 * 2 + (stage === 0 || stage === 2 ? 1 : 0) - 1);
      expect(pieces.loss).toBe(one.loss);
      expect(bytes(pieces.dInput).equals(bytes(one.dInput))).toBe(true);
      expect(pieces.grads.length).toBe(one.grads.length);
      pieces.grads.forEach((g, i) => expect(bytes(g).equals(bytes(one.grads[i]!)), m.names[m.varIndices(m.inOrderOps)[i]!]).toBe(true));
      // What it returns is all it keeps.
      expect(tf.memory().numTensors - before).toBe(pieces.grads.length + (pieces.dInput ? 1 : 0));
      for (const t of [...one.grads, ...pieces.grads, one.dInput, pieces.dInput, input, 'targets' in from ? from.targets : from.dOutput]) t?.dispose();
    });
  }

  it('abandoned between two pieces: the error comes through and nothing is left behind', async () => {
    const m = stages[1]!;
    const input = activation(3);
    const dOutput = activation(4);
    const before = tf.memory().numTensors;
    await expect(
      m.backwardInPieces(input, ROWS, { dOutput }, m.inOrderOps, async () => {
        throw new Error('halted');
      }),
    ).rejects.toThrow('halted');
    expect(tf.memory().numTensors).toBe(before);
    input.dispose();
    dOutput.dispose();
  });
});
