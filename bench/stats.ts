// The arithmetic every benchmark reports with, and the machine it ran on.

import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';

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

/** The machine a bench ran on, and how busy it was before (`loadAverage1mBefore`) and after it. */
export function machineFigures(loadAverage1mBefore: number) {
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemoryBytes: totalmem(),
    node: process.version,
    loadAverage1mBefore: sig(loadAverage1mBefore),
    loadAverage1mAfter: sig(loadavg()[0]!),
  };
}
