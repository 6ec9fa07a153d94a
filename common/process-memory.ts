// The memory of this process as a node reports it: its resident set now
// (process.memoryUsage.rss()) and its high-water mark: VmHWM of /proc/self/status on Linux (the
// kernel's own peak, so a spike between two samples is not missed), elsewhere the most this
// sampler has seen. Sampled at most once per MEMORY_SAMPLE_MS, however often it is asked.
// worker/heartbeat-thread.mjs takes the same reading in plain JavaScript (a thread without the
// TypeScript loader): keep the two alike.

import { readFileSync } from 'node:fs';
import type { ProcessMemory } from '../domain/node-reports.ts';

/** Shortest time between two readings of one process's memory. */
export const MEMORY_SAMPLE_MS = 1000;

/** VmHWM (peak resident set) of a /proc/PID/status text, in bytes; null when it has none. */
export function parseVmHwmBytes(status: string): number | null {
  const m = /^VmHWM:\s+(\d+)\s+kB$/m.exec(status);
  return m ? Number(m[1]) * 1024 : null;
}

/** This process's peak resident set from the kernel, or null where there is no /proc (not Linux). */
export function readVmHwmBytes(): number | null {
  if (process.platform !== 'linux') return null;
  try {
    return parseVmHwmBytes(readFileSync('/proc/self/status', 'utf8'));
  } catch {
    return null;
  }
}

export interface MemoryReadings {
  /** Resident set now, in bytes. */
  rssBytes(): number;
  /** The kernel's peak resident set, in bytes, or null when unknown. */
  peakRssBytes(): number | null;
}

const PROCESS_READINGS: MemoryReadings = { rssBytes: () => process.memoryUsage.rss(), peakRssBytes: readVmHwmBytes };

/** A process's memory, read at most once per `minIntervalMs`; the peak is never below the current value. */
export class ProcessMemorySampler {
  private last: ProcessMemory | null = null;
  private lastAtMs = 0;
  private mostSeenBytes = 0;

  constructor(
    private readonly readings: MemoryReadings = PROCESS_READINGS,
    private readonly minIntervalMs = MEMORY_SAMPLE_MS,
  ) {}

  /** `nowMs`: the caller's clock; a reading younger than minIntervalMs is given again. */
  sample(nowMs: number): ProcessMemory {
    if (this.last && nowMs - this.lastAtMs < this.minIntervalMs) return this.last;
    const rssBytes = this.readings.rssBytes();
    this.mostSeenBytes = Math.max(this.mostSeenBytes, rssBytes);
    this.last = { rssBytes, peakRssBytes: Math.max(this.mostSeenBytes, this.readings.peakRssBytes() ?? 0) };
    this.lastAtMs = nowMs;
    return this.last;
  }
}
