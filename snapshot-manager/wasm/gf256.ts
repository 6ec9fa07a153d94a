// GF(2^8) arithmetic and the small matrices of the Reed-Solomon code, in plain TypeScript: the
// bulk work over shard bytes is the wasm kernel's (gf256-kernel.ts); this builds what it applies.
//
// The field and the encoding matrix are those of the Rust reed-solomon-erasure crate (which the
// reference codec, @subspace/reed-solomon-erasure.wasm, is built from), so that shards are
// byte-identical whichever codec made them: polynomial x^8+x^4+x^3+x^2+1 (0x11D), generator 2.

/** The field's reduction polynomial, x^8 + x^4 + x^3 + x^2 + 1. */
export const GF256_POLYNOMIAL = 0x11d;

const EXP = new Uint8Array(510);
const LOG = new Uint8Array(256);
{
  let x = 1;
  for (let i = 0; i < 255; i++) {
    EXP[i] = x;
    LOG[x] = i;
    x <<= 1;
    if (x & 0x100) x ^= GF256_POLYNOMIAL;
  }
  for (let i = 255; i < 510; i++) EXP[i] = EXP[i - 255]!;
}

/** Thrown when a matrix that must be invertible is not (a bug: any k rows of the code are). */
export class SingularMatrixError extends Error {
  override readonly name = 'SingularMatrixError';
  constructor(readonly size: number) {
    super(`a ${size}x${size} GF(2^8) matrix has no inverse`);
  }
}

export function gfMul(a: number, b: number): number {
  return a === 0 || b === 0 ? 0 : EXP[LOG[a]! + LOG[b]!]!;
}

export function gfInv(a: number): number {
  if (a === 0) throw new RangeError('0 has no inverse in GF(2^8)');
  return EXP[255 - LOG[a]!]!;
}

/** a^n, with 0^0 = 1 as the crate has it. */
export function gfPow(a: number, n: number): number {
  if (n === 0) return 1;
  if (a === 0) return 0;
  return EXP[(LOG[a]! * n) % 255]!;
}

/** A row-major matrix over GF(2^8). */
export interface GfMatrix {
  readonly rows: number;
  readonly cols: number;
  /** rows * cols entries, row after row. */
  readonly data: Uint8Array;
}

export function gfMatrix(rows: number, cols: number, entry: (r: number, c: number) => number = () => 0): GfMatrix {
  const data = new Uint8Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) data[r * cols + c] = entry(r, c);
  return { rows, cols, data };
}

export function gfAt(m: GfMatrix, r: number, c: number): number {
  return m.data[r * m.cols + c]!;
}

export function gfMultiply(a: GfMatrix, b: GfMatrix): GfMatrix {
  if (a.cols !== b.rows) throw new RangeError(`cannot multiply ${a.rows}x${a.cols} by ${b.rows}x${b.cols}`);
  return gfMatrix(a.rows, b.cols, (r, c) => {
    let sum = 0;
    for (let i = 0; i < a.cols; i++) sum ^= gfMul(gfAt(a, r, i), gfAt(b, i, c));
    return sum;
  });
}

/** The given rows of m, in that order. */
export function gfSelectRows(m: GfMatrix, rows: readonly number[]): GfMatrix {
  return gfMatrix(rows.length, m.cols, (r, c) => gfAt(m, rows[r]!, c));
}

/** The inverse of a square matrix, by Gauss-Jordan elimination. */
export function gfInvert(m: GfMatrix): GfMatrix {
  const n = m.rows;
  if (m.cols !== n) throw new RangeError(`cannot invert a ${m.rows}x${m.cols} matrix`);
  const w = 2 * n;
  const a = new Uint8Array(n * w); // [m | I]
  for (let r = 0; r < n; r++) {
    a.set(m.data.subarray(r * n, (r + 1) * n), r * w);
    a[r * w + n + r] = 1;
  }
  for (let col = 0; col < n; col++) {
    let pivot = col;
    while (pivot < n && a[pivot * w + col] === 0) pivot++;
    if (pivot === n) throw new SingularMatrixError(n);
    if (pivot !== col) {
      const tmp = a.slice(pivot * w, (pivot + 1) * w);
      a.copyWithin(pivot * w, col * w, (col + 1) * w);
      a.set(tmp, col * w);
    }
    const scale = gfInv(a[col * w + col]!);
    for (let c = 0; c < w; c++) a[col * w + c] = gfMul(a[col * w + c]!, scale);
    for (let r = 0; r < n; r++) {
      const f = a[r * w + col]!;
      if (r === col || f === 0) continue;
      for (let c = 0; c < w; c++) a[r * w + c]! ^= gfMul(f, a[col * w + c]!);
    }
  }
  return gfMatrix(n, n, (r, c) => a[r * w + n + c]!);
}

/**
 * The (k+m) x k systematic encoding matrix of the crate: the Vandermonde matrix V[r][c] = r^c
 * times the inverse of its top k x k square, so the top k rows are the identity (shard i < k is
 * data piece i) and rows k.. give the parity shards. Any k of its rows are invertible.
 */
export function encodingMatrix(dataShards: number, parityShards: number): GfMatrix {
  const vandermonde = gfMatrix(dataShards + parityShards, dataShards, (r, c) => gfPow(r, c));
  const top = gfMatrix(dataShards, dataShards, (r, c) => gfAt(vandermonde, r, c));
  return gfMultiply(vandermonde, gfInvert(top));
}

/**
 * Split-nibble tables of every entry of m, in the kernel's layout: entry (r, c) at
 * (r*cols + c)*32, bytes 0..15 = e*v and 16..31 = e*(v << 4) for v = 0..15.
 */
export function splitNibbleTables(m: GfMatrix): Uint8Array {
  const out = new Uint8Array(m.rows * m.cols * 32);
  for (let e = 0; e < m.data.length; e++) {
    const coef = m.data[e]!;
    for (let v = 0; v < 16; v++) {
      out[e * 32 + v] = gfMul(coef, v);
      out[e * 32 + 16 + v] = gfMul(coef, v << 4);
    }
  }
  return out;
}
