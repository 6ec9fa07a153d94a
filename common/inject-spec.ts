// `--inject STEP:STAGE:KIND,...`: failures to cause on purpose, for tests and demos.

import { OptionError } from './errors.ts';

export const InjectionKind = {
  /** SIGKILL to the stage's worker in the middle of step STEP. */
  workerKill: 'worker-kill',
  /** SIGKILL to the worker after its snapshot of step STEP is written but before it is committed. */
  workerKillMidSnapshot: 'worker-kill-mid-snapshot',
} as const;
export type InjectionKind = (typeof InjectionKind)[keyof typeof InjectionKind];

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
    return { step, stage, kind: kind as InjectionKind };
  });
}
