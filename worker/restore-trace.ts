// Where a worker's time goes between an assignment and its ready report (sent with the report;
// the coordinator builds each recovery's phases from them).

import type { RestoreTrace } from '../domain/node-reports.ts';

/** Laps of one assignment: `lap()` gives the milliseconds since the previous lap (or the start). */
export class RestoreClock {
  readonly trace: { -readonly [K in keyof RestoreTrace]: RestoreTrace[K] } = {
    buildMs: 0,
    rebuildFetchMs: 0,
    rebuildDecodeMs: 0,
    rebuildMs: 0,
    restoreMs: 0,
    prepareMs: 0,
    connectMs: 0,
    bytes: 0,
  };
  private at = performance.now();

  lap(): number {
    const now = performance.now();
    const ms = now - this.at;
    this.at = now;
    return ms;
  }
}
