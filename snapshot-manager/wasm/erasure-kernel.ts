// The narrow interface between the erasure codec (layout, stripes, checksums) and the code that
// does the GF(2^8) work over shard bytes. Reed-Solomon works column by column (byte x of every
// output depends only on byte x of the inputs), so a kernel is driven over chunks of columns that
// stay in cache, whatever the snapshot's stripe layout.
//
// Two kernels: 'simd', ftrain's own wasm SIMD kernel (the default), and 'reference', the
// @subspace/reed-solomon-erasure.wasm package, which checks the first and stays available.

export const ErasureKernelName = {
  simd: 'simd',
  reference: 'reference',
} as const;
export type ErasureKernelName = (typeof ErasureKernelName)[keyof typeof ErasureKernelName];

export const ERASURE_KERNEL_NAMES: readonly ErasureKernelName[] = Object.values(ErasureKernelName);

/**
 * One coding step over a chunk of columns, in the kernel's own memory. Ownership: the views that
 * input() and output() return belong to the kernel and stay valid only until another coder of
 * the same kernel is made; a coder is used synchronously, start to end, then dropped.
 */
export interface ChunkCoder {
  /** The most columns one run() takes. A multiple of 64. */
  readonly chunkBytes: number;
  /** Where the caller puts input i's bytes for the next run(); chunkBytes long. */
  input(i: number): Uint8Array;
  /** Where run() leaves output j; chunkBytes long, of which the first `bytes` are meaningful. */
  output(j: number): Uint8Array;
  /** Computes the outputs' first `bytes` columns (bytes <= chunkBytes) from the inputs' first `bytes`. */
  run(bytes: number): void;
}

export interface ErasureKernel {
  readonly name: ErasureKernelName;
  /**
   * Inputs: the k data pieces; outputs: the m parity pieces. `shardBytes`, the columns to be
   * coded in all, only sizes the chunks (a small snapshot gets small ones).
   */
  encoder(dataShards: number, parityShards: number, shardBytes: number): ChunkCoder;
  /**
   * Inputs: the pieces of the k shards `present` (ascending shard indices, any k intact ones);
   * outputs: the pieces of the data shards `lost` (ascending, all < k, none in `present`).
   */
  decoder(dataShards: number, parityShards: number, present: readonly number[], lost: readonly number[], shardBytes: number): ChunkCoder;
}

/** Thrown when a kernel refuses a call it was given (a bug in the caller or the kernel). */
export class ErasureKernelError extends Error {
  override readonly name = 'ErasureKernelError';
  constructor(
    readonly kernel: ErasureKernelName,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${kernel} erasure kernel: ${message}`, options);
  }
}
