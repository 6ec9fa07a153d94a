// An assignment's work and where its time goes: building the stage, bringing its snapshot in and
// restoring it (whole, or gathered from its replicas' shares), readying the slots for the share it
// snapshots, and the trace of phases sent with the ready report (the coordinator builds each
// recovery's phases from them).

import { checkCorpusFits, loadCorpus, type Corpus } from '../domain/corpus.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { RestoreTrace } from '../domain/node-reports.ts';
import type { Logger } from '../common/logging.ts';
import type { ReceivedAssign } from '../domain/commands.ts';
import { stageOfSlot } from '../domain/replica-slots.ts';
import { snapshotsOn } from '../domain/snapshot-schedule.ts';
import { grpcShareFetch, grpcStateFetch } from './share-restore.ts';
import type { SnapshotLink } from './snapshot-link.ts';
import type { StageSnapshots } from './stage-snapshots.ts';
import { stageStateBytes } from './stage-state.ts';
import { StageTrainer } from './stage-trainer.ts';
import { useBackend } from './tfjs-backend.ts';

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

/**
 * Makes a stage for an assignment: the backend, the training text where the stage needs it
 * (checked against the coordinator's), and the model with its optimizer. `weights` 'zeros': the
 * stage is restored from a snapshot at once, so its initial values are not made.
 */
export async function buildStage(job: JobOptions, slot: number, dataSha256: string | null, weights: 'initial' | 'zeros'): Promise<StageTrainer> {
  await useBackend(job.backend);
  const stage = stageOfSlot(job, slot);
  let corpus: Corpus | null = null;
  if (stage === 0 || stage === job.stages - 1) {
    corpus = loadCorpus(job.data);
    checkCorpusFits(corpus, job.model.seqLen);
    if (dataSha256 && corpus.sha256 !== dataSha256) {
      throw new Error(`training text ${job.data} on this node differs from the coordinator's (sha256 ${corpus.sha256.slice(0, 12)} vs ${dataSha256.slice(0, 12)}); give every node the same file`);
    }
  }
  return new StageTrainer(job, slot, corpus, weights);
}

/**
 * Brings the snapshot an assignment restores into this node's slots when the node does not hold
 * it: rebuilt from erasure shards on peers, or copied from a live replica's snapshot manager, by
 * the node's own snapshot manager. Its time goes into the clock's trace. Nothing to do otherwise.
 */
export async function fetchSnapshot(smp: SnapshotLink | null, a: ReceivedAssign, clock: RestoreClock, timeoutMs: number, log: Logger): Promise<void> {
  const { trace } = clock;
  if (a.rebuild) {
    if (!smp) throw new Error(`told to rebuild step ${a.restoreStep} from erasure shards, but this node runs no snapshot manager`);
    clock.lap();
    const reply = await smp.rebuild(a.rebuild, timeoutMs);
    trace.rebuildMs = clock.lap();
    trace.rebuildFetchMs = reply.fetchMs;
    trace.rebuildDecodeMs = reply.decodeMs;
    log.info({ step: a.restoreStep, bytes: reply.bytes, used: reply.usedShards, corrupt: reply.corruptShards, ms: trace.rebuildMs, fetchMs: reply.fetchMs, decodeMs: reply.decodeMs }, 'snapshot rebuilt by the snapshot manager');
  }
  if (a.replicaCopy) {
    if (!smp) throw new Error(`told to copy step ${a.restoreStep} from a live replica, but this node runs no snapshot manager`);
    clock.lap();
    const reply = await smp.copyFromReplica(a.replicaCopy, timeoutMs);
    trace.rebuildMs = clock.lap();
    trace.rebuildFetchMs = reply.fetchMs;
    log.info({ step: a.restoreStep, bytes: reply.bytes, from: a.replicaCopy.fromStage, ms: trace.rebuildMs }, 'snapshot copied from a live replica by the snapshot manager');
  }
}

/**
 * Restores the snapshot an assignment names (restore_step) into its stage, after fetchSnapshot:
 * from this node's slots, or gathered from the shares of the stage's replicas (this node's own and
 * the assignment's share sources). Without one, the slots of an earlier run are dropped. `seen`:
 * the stage was held until now, so its neighbours read it (FetchWeights) and must never see it
 * half restored; a whole snapshot is then read on this thread, and shares are gathered first and
 * copied in with no await between. A stage no one sees yet reads on the pool.
 */
export async function restoreAssigned(snapshots: StageSnapshots | null, trainer: StageTrainer, seen: boolean, a: ReceivedAssign, clock: RestoreClock, timeoutMs: number): Promise<void> {
  if (a.restoreStep < 0) {
    snapshots?.destroy();
    return;
  }
  if (!snapshots) throw new Error(`told to restore step ${a.restoreStep}, but this node keeps no snapshots`);
  const state = a.stateSource;
  const sources = state ? [{ slot: state.slot, smpAddress: state.address }] : (a.shareSources ?? []);
  const fromShares = snapshots.restoresFromShares(a.restoreStep, sources);
  if (seen && !fromShares) snapshots.restoreNow(trainer, a.restoreStep);
  else await snapshots.restore(trainer, a.restoreStep, state ? { sources, fetch: grpcStateFetch(timeoutMs), whole: true } : { sources, fetch: grpcShareFetch(timeoutMs) });
  clock.trace.restoreMs = clock.lap();
  clock.trace.bytes = fromShares ? stageStateBytes(trainer) : snapshots.last.bytes;
}

/** After an assignment: the share of the state the slot snapshots from now on, and its slots readied for that many bytes. */
export function readySnapshots(snapshots: StageSnapshots | null, trainer: StageTrainer, a: ReceivedAssign, job: JobOptions): void {
  if (!snapshots) return;
  snapshots.setShare(a.shareIndex ?? 0, a.shareCount ?? 0);
  if (!snapshotsOn(job.snapshotEvery)) return;
  snapshots.startWriter(job);
  snapshots.prepare(snapshots.snapshotBytes(stageStateBytes(trainer)));
}
