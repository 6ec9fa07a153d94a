// ftrain's erasure kernel: the GF(2^8) split-nibble multiply of gf256.wat (wasm SIMD128) applied
// to chunks of columns, with matrices built by gf256.ts. Parity = the parity rows of the crate's
// encoding matrix times the data pieces; rebuild = the rows of the lost data shards in the inverse
// of the surviving rows' k x k square, times the surviving pieces.

import { GF256_WASM_BASE64 } from './gf256-wasm.ts';
import { encodingMatrix, gfInvert, gfSelectRows, splitNibbleTables, type GfMatrix } from './gf256.ts';
import { ErasureKernelError, ErasureKernelName, type ChunkCoder, type ErasureKernel } from './erasure-kernel.ts';
import { WASM_PAGE_BYTES, wasmApi, type WasmMemory } from './wasm-api.ts';

/**
 * Columns per kernel call. Alone, the RS(4,2) kernel ran alike (~10 GB/s from cache) on chunks of
 * 16 KiB to 1 MiB. In a whole 64 MiB encode, where the copies and crc32s of a chunk follow while
 * it is in cache, 16 KiB to 1 MiB were within the machine's noise, larger ones a little ahead
 * (fewer calls); 256 KiB keeps RS(4,2)'s six slots (1.5 MiB) near the 1 MiB L2. A multiple of 64.
 */
export const SIMD_CHUNK_BYTES = 256 * 1024;
/** The kernel's loop takes 32 columns at a time. */
const KERNEL_COLUMN_BYTES = 32;
/** Slots start 64-byte aligned (cache lines). */
const SLOT_ALIGN_BYTES = 64;
/** Decode matrices kept, keyed by code and surviving shards: an inversion is O(k^3). */
const MATRIX_CACHE_ENTRIES = 64;

interface Gf256Exports {
  readonly memory: WasmMemory;
  apply(tab: number, src: number, srcStride: number, q: number, dst: number, dstStride: number, p: number, len: number): void;
}

function alignUp(x: number, to: number): number {
  return Math.ceil(x / to) * to;
}

export class SimdErasureKernel implements ErasureKernel {
  readonly name = ErasureKernelName.simd;
  private readonly wasm: Gf256Exports;
  private readonly matrices = new Map<string, GfMatrix>();

  constructor(readonly chunkBytes = SIMD_CHUNK_BYTES) {
    if (chunkBytes <= 0 || chunkBytes % SLOT_ALIGN_BYTES !== 0) throw new RangeError(`chunkBytes must be a positive multiple of ${SLOT_ALIGN_BYTES}, not ${chunkBytes}`);
    const module = new wasmApi.Module(Buffer.from(GF256_WASM_BASE64, 'base64'));
    this.wasm = new wasmApi.Instance(module).exports as unknown as Gf256Exports;
  }

  encoder(dataShards: number, parityShards: number, shardBytes: number): ChunkCoder {
    const rows = this.cached(`e${dataShards},${parityShards}`, () => {
      const all = encodingMatrix(dataShards, parityShards);
      return gfSelectRows(all, Array.from({ length: parityShards }, (_, j) => dataShards + j));
    });
    return this.coder(rows, shardBytes);
  }

  decoder(dataShards: number, parityShards: number, present: readonly number[], lost: readonly number[], shardBytes: number): ChunkCoder {
    if (present.length !== dataShards) throw new ErasureKernelError(this.name, `a decoder needs ${dataShards} present shards, got ${present.length}`);
    if (lost.length === 0 || lost.some((i) => i >= dataShards || present.includes(i))) {
      throw new ErasureKernelError(this.name, `lost shards [${lost.join(', ')}] must be data shards (< ${dataShards}) not among the present [${present.join(', ')}]`);
    }
    const rows = this.cached(`d${dataShards},${parityShards}:${present.join(',')}:${lost.join(',')}`, () => {
      const inverse = gfInvert(gfSelectRows(encodingMatrix(dataShards, parityShards), present));
      return gfSelectRows(inverse, lost);
    });
    return this.coder(rows, shardBytes);
  }

  private cached(key: string, make: () => GfMatrix): GfMatrix {
    let m = this.matrices.get(key);
    if (!m) {
      if (this.matrices.size >= MATRIX_CACHE_ENTRIES) this.matrices.delete(this.matrices.keys().next().value!);
      m = make();
      this.matrices.set(key, m);
    }
    return m;
  }

  /** Lays out [tables | q input slots | p output slots] in the wasm memory for `rows` (p x q). */
  private coder(rows: GfMatrix, shardBytes: number): ChunkCoder {
    const { rows: p, cols: q } = rows;
    const C = Math.min(this.chunkBytes, Math.max(SLOT_ALIGN_BYTES, alignUp(shardBytes, SLOT_ALIGN_BYTES)));
    const tables = splitNibbleTables(rows);
    const inputsAt = alignUp(tables.length, SLOT_ALIGN_BYTES);
    const outputsAt = inputsAt + q * C;
    const end = outputsAt + p * C;
    const memory = this.wasm.memory;
    const have = memory.buffer.byteLength;
    if (end > have) memory.grow(Math.ceil((end - have) / WASM_PAGE_BYTES));
    const heap = new Uint8Array(memory.buffer);
    heap.set(tables, 0);
    const inputs = Array.from({ length: q }, (_, i) => heap.subarray(inputsAt + i * C, inputsAt + (i + 1) * C));
    const outputs = Array.from({ length: p }, (_, j) => heap.subarray(outputsAt + j * C, outputsAt + (j + 1) * C));
    const apply = this.wasm.apply;
    return {
      chunkBytes: C,
      input: (i) => inputs[i]!,
      output: (j) => outputs[j]!,
      run: (bytes) => {
        if (!(bytes >= 0 && bytes <= C)) throw new ErasureKernelError(ErasureKernelName.simd, `run(${bytes}) outside 0..${C}`);
        // Columns past `bytes` up to the next 32 are computed from whatever the slots hold there.
        apply(0, inputsAt, C, q, outputsAt, C, p, alignUp(bytes, KERNEL_COLUMN_BYTES));
      },
    };
  }
}
