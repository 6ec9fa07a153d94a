// `--inject STEP:STAGE:KIND,...`: failures to cause on purpose, for tests and demos. With
// `--replicas`, `STEP:STAGE@REPLICA:KIND` targets one replica's stage (replica 0 when not given).

import { OptionError } from './errors.ts';
import { SNAPSHOT_EVERY_AUTO, type SnapshotEvery } from './snapshot-schedule.ts';

export const InjectionKind = {
  /** SIGKILL to the stage's worker in the middle of step STEP. */
  workerKill: 'worker-kill',
  /** SIGKILL to the worker after its snapshot of step STEP is written but before it is committed. */
  workerKillMidSnapshot: 'worker-kill-mid-snapshot',
  /**
   * SIGKILL to the worker, the snapshot manager and the node agent of the stage's node together,
   * during step STEP (sent by the coordinator when every stage has finished the step before, to
   * all nodes killed in that step at once): the machine is gone, with the snapshots in its RAM.
   */
  nodeKill: 'node-kill',
  /**
   * SIGSTOP to the worker, the snapshot manager and the node agent of the stage's node during step
   * STEP (sent like node-kill): the machine hangs without closing a connection. A detached helper
   * sends SIGCONT after FREEZE_SECONDS; by then the node has been declared lost and is fenced.
   */
  freeze: 'freeze',
  /** SIGTERM to the stage's node during step STEP (sent like node-kill): a spot preemption notice. */
  preempt: 'preempt',
  /**
   * SIGKILL to every node of the zone the stage's node is in (`ftrain node --zone`), as node-kill
   * does to one, all at once during step STEP: the zone's capacity is reclaimed.
   */
  zoneKill: 'zone-kill',
  /**
   * Flips the sign of one weight of the stage's replica at the end of step STEP (after its
   * update): silent data corruption, for the replicas' consistency check (`--check-every`) to catch.
   */
  corrupt: 'corrupt',
} as const;
export type InjectionKind = (typeof InjectionKind)[keyof typeof InjectionKind];

/** How long an injected freeze lasts: well past the lease, so the node is lost and fenced when it wakes. */
export const FREEZE_SECONDS = 8;

/** Every injection kind, in the order help and errors list them. */
export const INJECTION_KINDS: readonly InjectionKind[] = Object.values(InjectionKind);

/** What each kind does, in a few words (help text). A kind added above without one fails to compile. */
export const INJECTION_KIND_SUMMARY: Readonly<Record<InjectionKind, string>> = {
  [InjectionKind.workerKill]: 'SIGKILL to the worker process',
  [InjectionKind.workerKillMidSnapshot]: 'SIGKILL to the worker between writing and committing its snapshot',
  [InjectionKind.nodeKill]: "SIGKILL to the node's worker, snapshot manager and agent at once",
  [InjectionKind.freeze]: `SIGSTOP to the same three, SIGCONT ${FREEZE_SECONDS} s later`,
  [InjectionKind.preempt]: 'SIGTERM to the node, a spot preemption notice',
  [InjectionKind.zoneKill]: "SIGKILL to every node of the stage's node's zone at once",
  [InjectionKind.corrupt]: "a flipped sign in one weight of the stage's replica (needs --replicas 3 or more to be repaired)",
};

export interface Injection {
  readonly step: number;
  readonly stage: number;
  /** Which replica's stage (`STEP:STAGE@REPLICA:KIND`); 0 when not given. */
  readonly replica: number;
  readonly kind: InjectionKind;
}

/** What of the job an injection must fit in to happen at all. */
export interface InjectionLimits {
  readonly stages: number;
  readonly replicas: number;
  /** `--steps`: steps 0 to steps - 1 run; null: until stopped. */
  readonly steps: number | null;
  /** `--snapshot-every`: a snapshot after every N-th step; 0: none; auto: chosen while training. */
  readonly snapshotEvery: SnapshotEvery;
}

/**
 * Parses `--inject`. Refuses, naming the item, an injection that could never happen: a stage or
 * kind that does not exist, a step the run never reaches, a snapshot kill with no snapshot then.
 */
export function parseInjections(raw: string | undefined | null, limits: InjectionLimits): Injection[] {
  if (raw === undefined || raw === null || raw.trim() === '') return [];
  const { stages, replicas, steps, snapshotEvery } = limits;
  const kinds = INJECTION_KINDS as readonly string[];
  return raw.split(',').map((item) => {
    const parts = item.trim().split(':');
    const [stepText, target, kind] = parts;
    const [stageText, replicaText, ...rest] = (target ?? '').split('@');
    const step = Number(stepText);
    const stage = Number(stageText);
    const replica = replicaText === undefined ? 0 : Number(replicaText);
    if (parts.length !== 3 || rest.length > 0 || !Number.isInteger(step) || step < 0 || stageText!.trim() === '' || !Number.isInteger(stage) || replicaText?.trim() === '' || !Number.isInteger(replica)) {
      throw new OptionError('--inject', `"${item}" is not STEP:STAGE:KIND or STEP:STAGE@REPLICA:KIND (e.g. 5:1:worker-kill, 5:1@1:node-kill)`);
    }
    if (stage < 0 || stage >= stages) throw new OptionError('--inject', `"${item}": stage ${stage} is out of range 0..${stages - 1}`);
    if (replica < 0 || replica >= replicas) {
      throw new OptionError('--inject', `"${item}": replica ${replica} is out of range 0..${replicas - 1}${replicas === 1 ? ' (one replica: set --replicas to have more)' : ''}`);
    }
    if (!kinds.includes(kind!)) throw new OptionError('--inject', `"${item}": kind must be one of ${kinds.join(', ')}`);
    if ((kind === InjectionKind.nodeKill || kind === InjectionKind.freeze || kind === InjectionKind.preempt || kind === InjectionKind.zoneKill) && step < 1) {
      throw new OptionError('--inject', `"${item}": ${kind} needs STEP >= 1 (it fires once step STEP - 1 is done)`);
    }
    if (steps !== null && step >= steps) {
      throw new OptionError('--inject', `"${item}": the run never reaches step ${step}: --steps ${steps} trains steps 0 to ${steps - 1}; use a STEP below ${steps} or raise --steps`);
    }
    if (kind === InjectionKind.workerKillMidSnapshot) {
      // Its step S is the snapshot of the state after S steps, taken after every N-th step.
      if (snapshotEvery === 0) throw new OptionError('--inject', `"${item}": ${kind} kills a snapshot, and --snapshot-every 0 takes none`);
      if (snapshotEvery === SNAPSHOT_EVERY_AUTO) {
        // Auto may stretch the interval past step S while training runs: the kill would then never happen.
        throw new OptionError(
          '--inject',
          `"${item}": ${kind} kills the snapshot of step ${step}, and with --snapshot-every auto (the default) the coordinator chooses while training which steps are snapshotted; fix the interval, e.g. --snapshot-every 1`,
        );
      }
      if (step < 1 || step % snapshotEvery !== 0) {
        throw new OptionError('--inject', `"${item}": no snapshot is taken of the state after ${step} step(s) with --snapshot-every ${snapshotEvery}; use a STEP that is a multiple of ${snapshotEvery}, from ${snapshotEvery} up`);
      }
    }
    return { step, stage, replica, kind: kind as InjectionKind };
  });
}
