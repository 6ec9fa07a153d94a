import { createHash } from 'node:crypto';

/**
 * sha256 (hex) of parameters as little-endian float32, in the order given: every stage's
 * variables in stage order, then variable order within the stage.
 */
export function weightsDigest(tensors: readonly Float32Array[]): string {
  const hash = createHash('sha256');
  for (const t of tensors) hash.update(Buffer.from(t.buffer, t.byteOffset, t.byteLength));
  return hash.digest('hex');
}
