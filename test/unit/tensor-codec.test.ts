import { describe, expect, it } from 'vitest';
import { ProtocolError } from '../../domain/errors.ts';
import { chunkFloat32, float32Chunk, float32ChunkCount, joinFloat32 } from '../../domain/tensor-codec.ts';

describe('tensor codec', () => {
  it('round-trips through chunks, including unaligned received buffers', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => Math.sin(i) * 1e3);
    const chunks = chunkFloat32(values, 333);
    expect(chunks.length).toBe(Math.ceil(4000 / 333));
    // Simulate gRPC handing us buffers at odd offsets.
    const unaligned = chunks.map((c) => {
      const backing = Buffer.alloc(c.length + 1);
      c.copy(backing, 1);
      return backing.subarray(1);
    });
    expect(unaligned[0]!.byteOffset % 4).not.toBe(0);
    expect(joinFloat32(unaligned, [10, 100])).toEqual(values);
  });

  it('gives any one chunk on its own, as a view of the values, with the same bounds as the whole list', () => {
    const values = Float32Array.from({ length: 1000 }, (_, i) => i);
    const chunks = chunkFloat32(values, 333);
    expect(float32ChunkCount(values, 333)).toBe(chunks.length);
    chunks.forEach((c, i) => expect(float32Chunk(values, i, 333).equals(c)).toBe(true));
    expect(float32Chunk(values, 2, 333).buffer).toBe(values.buffer);
    expect(float32ChunkCount(new Float32Array(0))).toBe(1);
    expect(float32Chunk(new Float32Array(0), 0).length).toBe(0);
  });

  it('refuses bytes that do not fill the shape', () => {
    const chunks = chunkFloat32(new Float32Array(10));
    expect(() => joinFloat32(chunks, [11])).toThrow(ProtocolError);
  });
});
