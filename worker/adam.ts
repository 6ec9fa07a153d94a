// Adam owned by ftrain rather than tfjs's optimizer: the whole state (moments and step count)
// is explicit, so a restored stage continues bit for bit. Bias corrections are computed in
// float64 from the step count, never from a running product.

import { assignOwned, tf, variableOf } from './tfjs-backend.ts';

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

  constructor(
    private readonly params: readonly tf.Variable[],
    readonly options: AdamOptions,
  ) {
    this.m = params.map((p) => variableOf(tf.zerosLike(p), false));
    this.v = params.map((p) => variableOf(tf.zerosLike(p), false));
  }

  /** Applies one update. `grads` are in parameter order; the caller keeps ownership of them. */
  apply(grads: readonly tf.Tensor[], learningRate = this.options.learningRate): void {
    const { beta1, beta2, epsilon } = this.options;
    this.t += 1;
    const bc1 = 1 - Math.pow(beta1, this.t);
    const bc2 = 1 - Math.pow(beta2, this.t);
    // A tidy per parameter and per moment: the temporaries of one update (up to six tensors of
    // its size) are freed before the next starts, so the backend's heap grows by a few times
    // the largest parameter, not by every temporary of every parameter at once. The operations
    // and their order are unchanged.
    this.params.forEach((p, i) => {
      const g = grads[i]!;
      const m = this.m[i]!;
      const v = this.v[i]!;
      tf.tidy(() => m.assign(tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1))));
      tf.tidy(() => v.assign(tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2))));
      tf.tidy(() => {
        const mHat = tf.div(m, bc1);
        const vHat = tf.div(v, bc2);
        p.assign(tf.sub(p, tf.mul(tf.div(mHat, tf.add(tf.sqrt(vHat), epsilon)), learningRate)));
      });
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
