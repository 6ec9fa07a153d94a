// Adam owned by ftrain rather than tfjs's optimizer: the whole state (moments and step count)
// is explicit, so a restored stage continues bit for bit. Bias corrections are computed in
// float64 from the step count, never from a running product.

import { assignOwned, tf, unwritten, variableOf } from './tfjs-backend.ts';

export interface AdamOptions {
  readonly learningRate: number;
  readonly beta1: number;
  readonly beta2: number;
  readonly epsilon: number;
}

export class Adam {
  /** Optimizer steps applied so far. */
  t = 0;
  readonly m: tf.Variable[];
  readonly v: tf.Variable[];

  /** `moments` 'unwritten': the state is restored from a snapshot at once (see `unwritten`). */
  constructor(
    private readonly params: readonly tf.Variable[],
    readonly options: AdamOptions,
    moments: 'zeros' | 'unwritten' = 'zeros',
  ) {
    const make = (p: tf.Variable) => (moments === 'zeros' ? tf.zerosLike(p) : unwritten(p.shape));
    this.m = params.map((p) => variableOf(make(p), false));
    this.v = params.map((p) => variableOf(make(p), false));
  }

  /** Applies one update. `grads` are in parameter order; the caller keeps ownership of them. */
  apply(grads: readonly tf.Tensor[], learningRate = this.options.learningRate): void {
    const corrections = this.begin();
    this.params.forEach((_, i) => this.applyOne(i, grads[i]!, learningRate, corrections));
  }

  /**
   * The same update, bit for bit, with `between()` awaited after each parameter, so that the
   * event loop runs (a Halt is heard within one parameter's update, not the whole stage's). If
   * `between` throws, the update stops there and the error propagates: the parameters before it
   * and the step count are updated, the rest not. Such a half-applied state must be replaced
   * (restored from a snapshot) before anything reads it.
   */
  async applyYielding(grads: readonly tf.Tensor[], learningRate: number, between: () => Promise<void>): Promise<void> {
    const corrections = this.begin();
    for (let i = 0; i < this.params.length; i++) {
      this.applyOne(i, grads[i]!, learningRate, corrections);
      if (i + 1 < this.params.length) await between();
    }
  }

  private begin(): { bc1: number; bc2: number } {
    const { beta1, beta2 } = this.options;
    this.t += 1;
    return { bc1: 1 - Math.pow(beta1, this.t), bc2: 1 - Math.pow(beta2, this.t) };
  }

  // Per parameter, each intermediate is freed as soon as the next operation has used it: the
  // backend's heap grows by about three tensors of the largest parameter's size, not by every
  // temporary of every parameter at once. The operations and their order are the maths' own.
  private applyOne(i: number, g: tf.Tensor, learningRate: number, { bc1, bc2 }: { bc1: number; bc2: number }): void {
    const { beta1, beta2, epsilon } = this.options;
    const p = this.params[i]!;
    const m = this.m[i]!;
    const v = this.v[i]!;
    tf.tidy(() => m.assign(sum(tf.mul(m, beta1), tf.mul(g, 1 - beta1))));
    tf.tidy(() => v.assign(sum(tf.mul(v, beta2), then(tf.square(g), (sq) => tf.mul(sq, 1 - beta2)))));
    tf.tidy(() => {
      const mHat = tf.div(m, bc1);
      const denominator = then(then(tf.div(v, bc2), tf.sqrt), (root) => tf.add(root, epsilon));
      const ratio = tf.div(mHat, denominator);
      mHat.dispose();
      denominator.dispose();
      p.assign(then(then(ratio, (r) => tf.mul(r, learningRate)), (update) => tf.sub(p, update)));
    });
  }

  /** A fresh state: zero moments, no step taken. */
  reset(): void {
    this.t = 0;
    for (const x of [...this.m, ...this.v]) assignOwned(x, tf.zerosLike(x));
  }

  dispose(): void {
    for (const t of [...this.m, ...this.v]) t.dispose();
  }
}

/** `op` applied to `input`, an intermediate no one else holds, which is freed at once. */
function then(input: tf.Tensor, op: (t: tf.Tensor) => tf.Tensor): tf.Tensor {
  const out = op(input);
  input.dispose();
  return out;
}

/** a + b, both intermediates, freed at once. */
function sum(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const out = tf.add(a, b);
  a.dispose();
  b.dispose();
  return out;
}
