// crc32 (the zlib one node:zlib computes) of a concatenation from the crc32s of its parts:
// crc32Combine(crc32(A), crc32(B), |B|) === crc32(A || B), in O(log |B|) without the bytes. What
// lets bytes coded in column order (column-coder.ts) be checked against a checksum taken in file
// order. The method of zlib's crc32_combine (1.2.12 and later): multiply crc32(A) by x^(8|B|)
// modulo the CRC polynomial, in the reflected bit order, and add crc32(B).

/** The CRC-32 polynomial, reflected. */
const POLY = 0xedb88320;

/** a * b modulo POLY, both reflected (bit 31 is x^0). */
function multModP(a: number, b: number): number {
  let m = 0x8000_0000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ POLY : b >>> 1;
  }
  return p >>> 0;
}

/** X2N[n] = x^(2^n) modulo POLY. */
const X2N: readonly number[] = (() => {
  const table = [0x4000_0000]; // x^1
  for (let n = 1; n < 32; n++) table.push(multModP(table[n - 1]!, table[n - 1]!));
  return table;
})();

/** x^(n * 2^k) modulo POLY. */
function x2nModP(n: number, k: number): number {
  let p = 0x8000_0000; // x^0
  while (n > 0) {
    if (n % 2 === 1) p = multModP(X2N[k & 31]!, p);
    n = Math.floor(n / 2);
    k++;
  }
  return p;
}

/** crc32(A || B) from crcA = crc32(A), crcB = crc32(B) and bBytes = |B|. */
export function crc32Combine(crcA: number, crcB: number, bBytes: number): number {
  if (!Number.isSafeInteger(bBytes) || bBytes < 0) throw new RangeError(`crc32Combine: a length must be a non-negative integer, not ${bBytes}`);
  return (multModP(x2nModP(bBytes, 3), crcA >>> 0) ^ crcB) >>> 0;
}
