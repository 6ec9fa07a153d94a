// The flat gradient vectors a step hands to the all-reduce when it is overlapped with the backward
// pass (`--overlap-reduce on`): one per owner of the step's work, each variable's sum copied in
// the moment it is final (the owner's last backward call has added into it), and the buckets of
// the vector (ring-all-reduce.ts `reduceBuckets`) said ready as their every variable is final in
// every part. The all-reduce sums a bucket while the backward pass goes on with the variables
// before it. No tfjs: the trainer hands over the values.

import { reduceBuckets, type ChunkRange, type ReducePlan } from './ring-all-reduce.ts';

export class GradientFlats {
  /** One flat vector per owner, variables in order. */
  readonly parts: Float32Array[];
  readonly plan: ReducePlan;
  private readonly offsets: number[];
  private readonly buckets: readonly ChunkRange[];
  /** The bucket each variable is in. */
  private readonly bucketOf: number[];
  /** Per owner, the variables already final. */
  private readonly final: boolean[][];
  /** Per bucket, the (owner, variable) pairs not final yet. */
  private readonly open: number[];
  private readonly gates: { readonly promise: Promise<void>; resolve(): void; reject(err: Error): void }[];

  /** `parts`: one vector per owner, of the variables' total length; every value is written before its bucket is ready. */
  constructor(
    private readonly sizes: readonly number[],
    parts: readonly Float32Array[],
    minBucketValues?: number,
  ) {
    const length = sizes.reduce((n, s) => n + s, 0);
    const owners = parts.length;
    if (parts.some((p) => p.length !== length)) throw new RangeError(`each part must hold the ${length} values of the variables`);
    this.parts = [...parts];
    this.offsets = [];
    let at = 0;
    for (const s of sizes) {
      this.offsets.push(at);
      at += s;
    }
    this.buckets = reduceBuckets(sizes, minBucketValues);
    this.bucketOf = this.offsets.map((o, i) => {
      // A variable of no values belongs to the bucket its offset starts (or the last, at the end).
      const b = this.buckets.findIndex((r) => o >= r.from && (o < r.to || (sizes[i] === 0 && o === r.to)));
      return b < 0 ? this.buckets.length - 1 : b;
    });
    this.final = Array.from({ length: owners }, () => sizes.map(() => false));
    this.open = this.buckets.map(() => 0);
    for (const b of this.bucketOf) this.open[b]! += owners;
    this.gates = this.buckets.map(() => {
      let resolve!: () => void;
      let reject!: (err: Error) => void;
      const promise = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
      promise.catch(() => {});
      return { promise, resolve, reject };
    });
    this.open.forEach((n, b) => n === 0 && this.gates[b]!.resolve());
    this.plan = { buckets: this.buckets, ready: (b) => this.gates[b]?.promise ?? Promise.reject(new RangeError(`no bucket ${b} of ${this.buckets.length}`)) };
  }

  /** Variable `i`'s sum for `owner` is final: its values go into the owner's part (once; later calls are ignored). */
  finalize(owner: number, i: number, values: Float32Array): void {
    const final = this.final[owner]!;
    if (final[i]) return;
    if (values.length !== this.sizes[i]) throw new RangeError(`variable ${i} has ${this.sizes[i]} values, not ${values.length}`);
    this.parts[owner]!.set(values, this.offsets[i]);
    final[i] = true;
    const b = this.bucketOf[i]!;
    if (--this.open[b]! === 0) this.gates[b]!.resolve();
  }

  /** Every variable of `owner` not final yet is now, its values read from `valuesOf`. */
  finalizeAll(owner: number, valuesOf: (i: number) => Float32Array): void {
    this.final[owner]!.forEach((done, i) => done || this.finalize(owner, i, valuesOf(i)));
  }

  /** The step is abandoned: every bucket not ready yet fails with `err`, and so does the all-reduce. */
  abandon(err: Error): void {
    this.gates.forEach((g, b) => this.open[b]! > 0 && g.reject(err));
  }
}
