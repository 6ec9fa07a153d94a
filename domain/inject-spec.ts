// `--inject STEP:STAGE:KIND,...`: failures to cause on purpose, for tests and demos.

import { OptionError } from './errors.ts';

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
} as const;
export type InjectionKind = (typeof InjectionKind)[keyof typeof InjectionKind];

/** How long an injected freeze lasts: well past the lease, so the node is lost and fenced when it wakes. */
export const FREEZE_SECONDS = 8;

export interface Injection {
  readonly step: number;
  readonly stage: number;
  readonly kind: InjectionKind;
}

export function parseInjections(raw: string | undefined | null, stages: number): Injection[] {
  if (raw === undefined || raw === null || raw.trim() === '') return [];
  const kinds = Object.values(InjectionKind) as string[];
  return raw.split(',').map((item) => {
    const parts = item.trim().split(':');
    const [stepText, stageText, kind] = parts;
    const step = Number(stepText);
    const stage = Number(stageText);
    if (parts.length !== 3 || !Number.isInteger(step) || step < 0 || !Number.isInteger(stage)) {
      throw new OptionError('--inject', `"${item}" is not STEP:STAGE:KIND (e.g. 5:1:worker-kill)`);
    }
    if (stage < 0 || stage >= stages) throw new OptionError('--inject', `"${item}": stage ${stage} is out of range 0..${stages - 1}`);
    if (!kinds.includes(kind!)) throw new OptionError('--inject', `"${item}": kind must be one of ${kinds.join(', ')}`);
    if ((kind === InjectionKind.nodeKill || kind === InjectionKind.freeze || kind === InjectionKind.preempt) && step < 1) {
      throw new OptionError('--inject', `"${item}": ${kind} needs STEP >= 1 (it fires once step STEP - 1 is done)`);
    }
    return { step, stage, kind: kind as InjectionKind };
  });
}
