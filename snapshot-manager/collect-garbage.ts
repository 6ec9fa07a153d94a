// A full garbage collection of the calling thread's heap, run by the snapshot manager right after
// it lets go of shards. Each shard is a k-th of a stage's state, and V8 returns an unreachable
// buffer's memory only when it collects: on the manager's light JS load (and never on an idle
// coding thread) that can be many steps later, and the freed versions stay in the node's RAM
// beside the ones it holds. A collection of a heap this small takes milliseconds.

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Bytes let go of at once that are worth a full collection; V8's own collections see to less. */
export const COLLECT_AFTER_BYTES = 16 * 2 ** 20;

export function collectGarbage(): void {
  gc();
}
