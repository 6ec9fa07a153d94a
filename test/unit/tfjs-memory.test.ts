// The memory-saving changes to how ftrain drives tfjs keep the maths: the wasm backend's Identity
// shares its input instead of copying it, and Adam frees each intermediate as soon as it is used.
// Both are checked bit for bit against the way they were computed before.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { Adam } from '../../worker/adam.ts';
import { exportStageState, importedInPlace, inPlaceTargets } from '../../worker/stage-state.ts';
import { StageTrainer } from '../../worker/stage-trainer.ts';
import { assignOwned, tf, useBackend, valuesToWriteNow, variableOf } from '../../worker/tfjs-backend.ts';

const OPTIONS = { learningRate: 0.01, beta1: 0.9, beta2: 0.999, epsilon: 1e-8 };

function random(seed: number, n: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

function bytes(t: tf.Tensor): Buffer {
  const v = t.dataSync() as Float32Array;
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

/** Adam as it was computed before: one tidy per moment and per update, every temporary kept to its end. */
function referenceAdam(params: tf.Variable[], m: tf.Variable[], v: tf.Variable[], grads: tf.Tensor[], t: number): void {
  const { beta1, beta2, epsilon, learningRate } = OPTIONS;
  const bc1 = 1 - Math.pow(beta1, t);
  const bc2 = 1 - Math.pow(beta2, t);
  params.forEach((p, i) => {
    const g = grads[i]!;
    tf.tidy(() => m[i]!.assign(tf.add(tf.mul(m[i]!, beta1), tf.mul(g, 1 - beta1))));
    tf.tidy(() => v[i]!.assign(tf.add(tf.mul(v[i]!, beta2), tf.mul(tf.square(g), 1 - beta2))));
    tf.tidy(() => p.assign(tf.sub(p, tf.mul(tf.div(tf.div(m[i]!, bc1), tf.add(tf.sqrt(tf.div(v[i]!, bc2)), epsilon)), learningRate))));
  });
}

describe.each(['cpu', 'wasm'] as const)('Adam on %s', (backend) => {
  beforeAll(async () => {
    await useBackend(backend);
  });

  it('gives the same bytes as the formulation that kept its temporaries, and leaks none', () => {
    const shapes = [[7, 5], [5], [3, 4, 2]];
    const make = () => shapes.map((s, i) => variableOf(tf.tensor(random(i + 1, s.reduce((a, b) => a * b, 1)), s), true));
    const ours = make();
    const theirs = make();
    const adam = new Adam(ours, OPTIONS);
    const m = theirs.map((p) => variableOf(tf.zerosLike(p), false));
    const v = theirs.map((p) => variableOf(tf.zerosLike(p), false));
    for (let step = 1; step <= 4; step++) {
      const grads = shapes.map((s, i) => tf.tensor(random(100 * step + i, s.reduce((a, b) => a * b, 1)), s));
      const before = tf.memory().numTensors;
      adam.apply(grads);
      expect(tf.memory().numTensors).toBe(before);
      referenceAdam(theirs, m, v, grads, step);
      for (const g of grads) g.dispose();
    }
    ours.forEach((p, i) => expect(bytes(p).equals(bytes(theirs[i]!))).toBe(true));
    adam.m.forEach((x, i) => expect(bytes(x).equals(bytes(m[i]!))).toBe(true));
    adam.v.forEach((x, i) => expect(bytes(x).equals(bytes(v[i]!))).toBe(true));
    for (const x of [...ours, ...theirs, ...m, ...v]) x.dispose();
    adam.dispose();
  });

  it('yielding between parameters gives the same bytes, and stopping half-way leaves the rest untouched', async () => {
    const shapes = [[7, 5], [5], [3, 4, 2]];
    const make = () => shapes.map((s, i) => variableOf(tf.tensor(random(i + 1, s.reduce((a, b) => a * b, 1)), s), true));
    const sync = make();
    const yielding = make();
    const a = new Adam(sync, OPTIONS);
    const b = new Adam(yielding, OPTIONS);
    let yields = 0;
    for (let step = 1; step <= 3; step++) {
      const grads = shapes.map((s, i) => tf.tensor(random(100 * step + i, s.reduce((x, y) => x * y, 1)), s));
      a.apply(grads);
      await b.applyYielding(grads, OPTIONS.learningRate, async () => {
        yields += 1;
      });
      for (const g of grads) g.dispose();
    }
    expect(yields).toBe(3 * (shapes.length - 1));
    sync.forEach((p, i) => expect(bytes(p).equals(bytes(yielding[i]!))).toBe(true));
    a.m.forEach((x, i) => expect(bytes(x).equals(bytes(b.m[i]!))).toBe(true));
    expect(b.t).toBe(a.t);

    // Stopped after the first parameter: it moved, the others did not, and the step count did.
    const before = yielding.map(bytes);
    const grads = shapes.map((s, i) => tf.tensor(random(900 + i, s.reduce((x, y) => x * y, 1)), s));
    await expect(
      b.applyYielding(grads, OPTIONS.learningRate, async () => {
        throw new Error('halt');
      }),
    ).rejects.toThrow('halt');
    expect(bytes(yielding[0]!).equals(before[0]!)).toBe(false);
    expect(yielding.slice(1).map((p, i) => bytes(p).equals(before[i + 1]!))).toEqual([true, true]);
    expect(b.t).toBe(4);
    for (const x of [...sync, ...yielding, ...grads]) x.dispose();
    a.dispose();
    b.dispose();
  });
});

describe('the wasm backend', () => {
  let backend: { refCount(dataId: object): number; incRef(dataId: object): void; makeOutput(shape: number[], dtype: string): { dataId: object }; typedArrayFromHeap(t: unknown): Float32Array };
  beforeAll(async () => {
    await useBackend('wasm');
    backend = tf.backend() as unknown as typeof backend;
  });
  afterAll(async () => {
    await useBackend('wasm'); // puts the sharing Identity back, whatever a test left
  });

  it('clones by sharing the data, which outlives the tensor it was cloned from', () => {
    const x = tf.tensor1d([1, 2, 3]);
    const c = tf.clone(x);
    expect(c.dataId).toBe(x.dataId);
    expect(backend.refCount(x.dataId)).toBe(2);
    x.dispose();
    expect(Array.from(c.dataSync())).toEqual([1, 2, 3]);
    expect(backend.refCount(c.dataId)).toBe(1);
    c.dispose();
  });

  it('refuses an in-place write into data that another tensor shares', () => {
    const v = variableOf(tf.tensor1d([1, 2, 3]), true);
    expect(valuesToWriteNow(v)).not.toBeNull();
    const c = tf.clone(v);
    expect(valuesToWriteNow(v)).toBeNull();
    c.dispose();
    expect(valuesToWriteNow(v)).not.toBeNull();
    v.dispose();
  });

  it('computes with the restored weights after a restore in place, not with the packed copy of the ones it replaced', () => {
    const job = compileJobOptions({ nodes: 3, microBatchSize: 2, seqLen: 8, dModel: 16, heads: 2, seed: 4, backend: 'wasm' });
    const trainer = new StageTrainer(job, 1, null);
    const shape = trainer.model.activationShape(2);
    const x = tf.tensor(random(9, shape.reduce((a, b) => a * b, 1)), shape);
    const forward = () => {
      const y = trainer.model.forward(x, 2);
      const out = bytes(y);
      y.dispose();
      return out;
    };
    const before = forward();
    const { header, buffer } = exportStageState(trainer, 0);
    // Newer weights, multiplied once so that the matrix kernel packs them (as the step under way
    // when a stage is rolled back has).
    for (const v of trainer.model.variables) assignOwned(v, tf.add(v, 0.5));
    expect(forward().equals(before)).toBe(false);
    const targets = inPlaceTargets(trainer, header);
    expect(targets).not.toBeNull();
    let at = 0;
    for (const t of targets!) {
      t.set(new Uint8Array(buffer, at, t.byteLength));
      at += t.byteLength;
    }
    importedInPlace(trainer, header);
    expect(forward().equals(before)).toBe(true);
    x.dispose();
    trainer.dispose();
  });

  it('gives the same gradients as a copying Identity, the weights it saved for the backward shared', () => {
    const w1 = variableOf(tf.tensor(random(1, 24 * 40), [24, 40]), true);
    const w2 = variableOf(tf.tensor(random(2, 40 * 24), [40, 24]), true);
    const x = tf.tensor(random(3, 6 * 24), [6, 24]);
    const f = () => tf.sum(tf.square(tf.matMul(tf.tanh(tf.matMul(x, w1)), w2))) as tf.Scalar;
    const run = () => {
      const { value, grads } = tf.variableGrads(f, [w1, w2]);
      const out = [bytes(value), bytes(grads[w1.name]!), bytes(grads[w2.name]!)];
      value.dispose();
      for (const g of Object.values(grads)) g.dispose();
      return out;
    };
    const shared = run();
    tf.unregisterKernel('Identity', 'wasm');
    tf.registerKernel({
      kernelName: 'Identity',
      backendName: 'wasm',
      kernelFunc: (({ inputs: { x: input } }: { inputs: { x: tf.Tensor } }) => {
        const out = backend.makeOutput([...input.shape], input.dtype);
        backend.typedArrayFromHeap(out).set(backend.typedArrayFromHeap(input));
        return out;
      }) as unknown as tf.KernelFunc,
    });
    const copied = run();
    shared.forEach((b, i) => expect(b.equals(copied[i]!)).toBe(true));
    for (const t of [w1, w2, x]) t.dispose();
  });
});
