// The arithmetic every benchmark reports with.

/** Bytes per GB in every *GBps figure. */
export const BYTES_PER_GB = 1e9;

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export function gbps(bytes: number, ms: number): number {
  return bytes / BYTES_PER_GB / (ms / 1000);
}

/** Four significant digits: the figures are not more precise than that. */
export function sig(x: number): number {
  return Number(x.toPrecision(4));
}

/** The median milliseconds of `repeats` calls of `f`. */
export function timeIt(repeats: number, f: () => void): number {
  const ms: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    f();
    ms.push(performance.now() - t0);
  }
  return median(ms);
}
