// Loaded by a worker's snapshot writer thread when the job injects `worker-kill-mid-snapshot`
// (see worker-injector.ts): kills the whole process after the snapshot's bytes are written and
// before its commit record exists, when the worker has armed it for that step.

import type { SnapshotHeader } from '../domain/snapshot-slots.ts';

export function beforeCommit(header: SnapshotHeader, data: unknown): void {
  const flag = new Int32Array((data as { dieBeforeCommit: SharedArrayBuffer }).dieBeforeCommit);
  if (Atomics.load(flag, 0) === header.step + 1) process.kill(process.pid, 'SIGKILL');
}
