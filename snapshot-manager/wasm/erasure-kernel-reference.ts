// The reference erasure kernel: @subspace/reed-solomon-erasure.wasm, the Rust reed-solomon-erasure
// crate compiled to wasm (no SIMD). One wasm instance per thread with one work region malloc'd in
// its heap and kept, holding n slots of chunkBytes; the raw exports `encode` and `reconstruct` work
// on it in place. The package's JavaScript wrapper is not used, see reconstruct below.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { ErasureKernelError, ErasureKernelName, type ChunkCoder, type ErasureKernel } from './erasure-kernel.ts';
import { wasmApi, type WasmMemory } from './wasm-api.ts';

/** Columns per call at most: the package was fastest on pieces of about 1 MiB. */
export const REFERENCE_CHUNK_BYTES = 1024 * 1024;
/** The work region (n slots) stays under this, so wide codes get smaller chunks. */
const REFERENCE_WORK_BYTES_MAX = 32 * 1024 * 1024;
const REFERENCE_CHUNK_BYTES_MIN = 4096;

/** The crate's result codes (RESULT_* of the package), for error messages. */
const RESULT_NAMES: Readonly<Record<number, string>> = {
  1: 'too few shards',
  2: 'too many shards',
  3: 'too few data shards',
  4: 'too many data shards',
  5: 'too few parity shards',
  6: 'too many parity shards',
  7: 'too few buffer shards',
  8: 'too many buffer shards',
  9: 'incorrect shard size',
  10: 'too few shards present',
  11: 'empty shard',
  12: 'invalid shard flags',
  13: 'invalid index',
};

interface ReedSolomonExports {
  readonly memory: WasmMemory;
  __wbindgen_malloc(bytes: number): number;
  __wbindgen_free(ptr: number, bytes: number): void;
  encode(shardsPtr: number, shardsBytes: number, dataShards: number, parityShards: number): number;
  reconstruct(shardsPtr: number, shardsBytes: number, dataShards: number, parityShards: number, flagsPtr: number, flagsBytes: number): number;
}

let compiled: object | null = null;

function instantiate(): ReedSolomonExports {
  if (!compiled) {
    const require = createRequire(import.meta.url);
    compiled = new wasmApi.Module(readFileSync(require.resolve('@subspace/reed-solomon-erasure.wasm/dist/reed_solomon_erasure_bg.wasm')));
  }
  return new wasmApi.Instance(compiled).exports as unknown as ReedSolomonExports;
}

export class ReferenceErasureKernel implements ErasureKernel {
  readonly name = ErasureKernelName.reference;
  private readonly wasm = instantiate();
  private work = { ptr: 0, bytes: 0 };

  encoder(dataShards: number, parityShards: number, shardBytes: number): ChunkCoder {
    return this.coder(
      dataShards,
      parityShards,
      shardBytes,
      Array.from({ length: dataShards }, (_, i) => i),
      Array.from({ length: parityShards }, (_, j) => dataShards + j),
      (ptr, bytes) => this.wasm.encode(ptr, bytes, dataShards, parityShards),
    );
  }

  decoder(dataShards: number, parityShards: number, present: readonly number[], lost: readonly number[], shardBytes: number): ChunkCoder {
    const n = dataShards + parityShards;
    const flags = new Uint8Array(n);
    for (const i of present) flags[i] = 1;
    return this.coder(dataShards, parityShards, shardBytes, present, lost, (ptr, bytes) => {
      // The crate takes `shards_present` as an owned Vec and frees it when it returns. The
      // package's wrapper frees it again: that double free corrupted wee_alloc's free list, after
      // which reconstructs failed with "too few shards present" or trapped (the reason the codec
      // used to make a fresh instance per call). So: malloc the flags per call, never free them.
      const flagsPtr = this.wasm.__wbindgen_malloc(n);
      new Uint8Array(this.wasm.memory.buffer, flagsPtr, n).set(flags);
      return this.wasm.reconstruct(ptr, bytes, dataShards, parityShards, flagsPtr, n);
    });
  }

  /** Slot s of the work region holds shard s's piece; inputs and outputs name slots. */
  private coder(
    dataShards: number,
    parityShards: number,
    shardBytes: number,
    inputSlots: readonly number[],
    outputSlots: readonly number[],
    call: (ptr: number, bytes: number) => number,
  ): ChunkCoder {
    const n = dataShards + parityShards;
    const fit = Math.floor(REFERENCE_WORK_BYTES_MAX / n / 64) * 64;
    const C = Math.min(Math.max(REFERENCE_CHUNK_BYTES_MIN, Math.min(REFERENCE_CHUNK_BYTES, fit)), Math.ceil(Math.max(1, shardBytes) / 64) * 64);
    const ptr = this.workRegion(n * C);
    // The crate allocates (the flags, its matrices), and a heap that grows replaces the memory's
    // buffer: views are remade whenever that happened.
    let heap = new Uint8Array(0);
    let inputs: Uint8Array[] = [];
    let outputs: Uint8Array[] = [];
    const views = () => {
      if (heap.buffer !== this.wasm.memory.buffer) {
        heap = new Uint8Array(this.wasm.memory.buffer);
        const slot = (s: number) => heap.subarray(ptr + s * C, ptr + (s + 1) * C);
        inputs = inputSlots.map(slot);
        outputs = outputSlots.map(slot);
      }
      return { inputs, outputs };
    };
    return {
      chunkBytes: C,
      input: (i) => views().inputs[i]!,
      output: (j) => views().outputs[j]!,
      run: (bytes) => {
        if (!(bytes >= 0 && bytes <= C)) throw new ErasureKernelError(this.name, `run(${bytes}) outside 0..${C}`);
        // The crate's shards are whole slots: columns past `bytes` are computed too, from whatever they hold.
        const result = call(ptr, n * C);
        if (result !== 0) throw new ErasureKernelError(this.name, `the crate returned ${result} (${RESULT_NAMES[result] ?? 'unknown'})`);
      },
    };
  }

  /** The work region, at least `bytes` long: kept across calls, replaced only when too small. */
  private workRegion(bytes: number): number {
    if (this.work.bytes < bytes) {
      if (this.work.bytes > 0) this.wasm.__wbindgen_free(this.work.ptr, this.work.bytes);
      this.work = { ptr: this.wasm.__wbindgen_malloc(bytes), bytes };
    }
    return this.work.ptr;
  }
}
