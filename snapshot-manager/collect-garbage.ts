// A full garbage collection of the calling thread's heap, run by the snapshot manager right after
// it lets go of shards. Each shard is a k-th of a stage's state, and V8 returns an unreachable
// buffer's memory only when it collects: on the manager's light JS load (and never on an idle
// coding thread) that can be many steps later, and the freed versions stay in the node's RAM
// beside the ones it holds. A collection of a heap this small takes milliseconds. It runs once the
// current task has returned, when what the task let go of is unreachable.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes let go of at once that are worth a full collection; V8's own collections see to less. */
export const COLLECT_AFTER_BYTES = 16 * 2 ** 20;

let scheduled = false;

/**
 * A full collection, once the task under way has returned: run at once, it would keep whatever
 * the caller's stack still references (a pool thread's request, with the shards handed over to
 * it, is alive until its handler returns). Several calls in one task make one collection.
 */
export function collectGarbage(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(() => {
    scheduled = false;
    gc();
  });
}
