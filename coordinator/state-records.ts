// The coordinator's durable state as store records: a few keys, each a JSON value, laid out so
// that what changes often changes few keys and one write never needs many (etcd takes at most 128
// operations in a transaction by default). Nodes, slots and survived failures go in buckets of a
// fixed size by position (registration order, slot index, order of survival): a step report
// changes one slot bucket, a node joining the last node bucket.
//
//   job            the job options (a standby builds its core from them)
//   run            phase, epoch, failure, the rest of the commit tracker, code, layouts,
//                  intervals, departures, announced failures and injections, the replicas' check
//   nodes/0000 ... up to NODES_PER_RECORD nodes each
//   slots/0000 ... up to SLOTS_PER_RECORD slots' commit records each
//   survived/0000 ... up to FAILURES_PER_RECORD survived failures each

import type { DurableCoordinatorState } from './core/durable-state.ts';

export const NODES_PER_RECORD = 32;
export const SLOTS_PER_RECORD = 32;
export const FAILURES_PER_RECORD = 64;

const bucketKey = (prefix: string, i: number) => `${prefix}/${String(i).padStart(4, '0')}`;

function buckets<T>(prefix: string, items: readonly T[], size: number, into: Map<string, string>): void {
  for (let i = 0; i * size < items.length; i++) into.set(bucketKey(prefix, i), JSON.stringify(items.slice(i * size, (i + 1) * size)));
}

function unbucket<T>(records: ReadonlyMap<string, string>, prefix: string): T[] {
  return [...records.keys()]
    .filter((k) => k.startsWith(`${prefix}/`))
    .sort()
    .flatMap((k) => JSON.parse(records.get(k)!) as T[]);
}

/** The records of a state. */
export function stateRecords(state: DurableCoordinatorState): Map<string, string> {
  const { job, nodes, commits, failures, ...run } = state;
  const { stages, ...commitRest } = commits;
  const { recovered, ...failureRest } = failures;
  const out = new Map<string, string>();
  out.set('job', JSON.stringify(job));
  out.set('run', JSON.stringify({ ...run, commits: commitRest, failures: failureRest }));
  buckets('nodes', nodes, NODES_PER_RECORD, out);
  buckets('slots', stages, SLOTS_PER_RECORD, out);
  buckets('survived', recovered, FAILURES_PER_RECORD, out);
  return out;
}

/** Thrown when the store holds no state, or a state with a part missing. */
export class StoredStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoredStateError';
  }
}

/** The state the records hold; throws `StoredStateError` when a part is missing. */
export function stateFromRecords(records: ReadonlyMap<string, string>): DurableCoordinatorState {
  const job = records.get('job');
  const run = records.get('run');
  if (job === undefined || run === undefined) throw new StoredStateError(`the store holds no coordinator state (${job === undefined ? 'no job' : 'no run'} record)`);
  const r = JSON.parse(run) as Omit<DurableCoordinatorState, 'job' | 'nodes' | 'commits' | 'failures'> & {
    commits: Omit<DurableCoordinatorState['commits'], 'stages'>;
    failures: Omit<DurableCoordinatorState['failures'], 'recovered'>;
  };
  return {
    ...r,
    job: JSON.parse(job) as DurableCoordinatorState['job'],
    nodes: unbucket(records, 'nodes'),
    commits: { ...r.commits, stages: unbucket(records, 'slots') },
    failures: { ...r.failures, recovered: unbucket(records, 'survived') },
  };
}

/** What to write to go from `before` to `after`: the records that changed or are new, and those gone. */
export function recordChanges(before: ReadonlyMap<string, string>, after: ReadonlyMap<string, string>): { puts: Map<string, string>; deletes: string[] } {
  const puts = new Map<string, string>();
  for (const [k, v] of after) if (before.get(k) !== v) puts.set(k, v);
  const deletes = [...before.keys()].filter((k) => !after.has(k));
  return { puts, deletes };
}
