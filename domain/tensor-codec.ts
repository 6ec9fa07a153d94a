// Float32 tensors on the wire: little-endian bytes in chunks small enough for gRPC's
// default 4 MiB receive limit.

import { ProtocolError } from './errors.ts';

/** Bytes per chunk of a streamed tensor. */
export const TENSOR_CHUNK_BYTES = 1 << 20;

const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) throw new Error('ftrain needs a little-endian machine (float32 wire format)');

/** How many chunks a float32 array is sent in (one, empty, for an empty array). */
export function float32ChunkCount(values: Float32Array, chunkBytes = TENSOR_CHUNK_BYTES): number {
  return Math.max(1, Math.ceil(values.byteLength / chunkBytes));
}

/** Chunk `index` of a float32 array's bytes: a view of `values`, not a copy. */
export function float32Chunk(values: Float32Array, index: number, chunkBytes = TENSOR_CHUNK_BYTES): Buffer {
  const from = Math.min(index * chunkBytes, values.byteLength);
  return Buffer.from(values.buffer, values.byteOffset + from, Math.min(chunkBytes, values.byteLength - from));
}

/** Splits a float32 array into byte chunks. The chunks view `values`: do not mutate it until sent. */
export function chunkFloat32(values: Float32Array, chunkBytes = TENSOR_CHUNK_BYTES): Buffer[] {
  return Array.from({ length: float32ChunkCount(values, chunkBytes) }, (_, i) => float32Chunk(values, i, chunkBytes));
}

/**
 * Joins received chunks into an aligned Float32Array. Received buffers may start at any byte
 * offset, so the bytes are always copied before they are viewed as float32.
 */
export function joinFloat32(chunks: readonly Uint8Array[], shape: readonly number[]): Float32Array {
  const expected = shape.reduce((a, b) => a * b, 1);
  let total = 0;
  for (const c of chunks) total += c.byteLength;
  if (total !== expected * 4) {
    throw new ProtocolError(
      `tensor of shape [${shape.join(',')}] needs ${expected * 4} bytes, received ${total}`,
    );
  }
  const out = new Float32Array(expected);
  const outBytes = new Uint8Array(out.buffer);
  let off = 0;
  for (const c of chunks) {
    outBytes.set(c, off);
    off += c.byteLength;
  }
  return out;
}

export function shapeSize(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
