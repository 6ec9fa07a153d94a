// The path a micro-batch takes through the pipeline: a list of hops, each a stage and the parts
// of the model it applies there. In order, a micro-batch visits stage 0 (embedding and its
// blocks), each stage's blocks, and the last stage (its blocks, then the head and the loss).
//
// CheckFree+ (out-of-order pipelining): on odd micro-batches the blocks of the first two stages
// run in swapped order, and so do those of the last two, so that each of them learns to stand in
// for its partner; a lost edge stage is then rebuilt by copying its partner's blocks. The
// embedding stays on stage 0 and the head on the last stage, so the swapped path goes back and
// forth between the partners and passes through a stage without computing where it must:
//
//   even: 0[embed blocks] 1[blocks] 2[blocks] ... N-1[blocks head]
//   odd:  0[embed] 1[blocks] 0[blocks] 1[] 2[blocks] ... N-3[blocks] N-2[] N-1[blocks] N-2[blocks] N-1[head]

export type StageOp = 'embed' | 'blocks' | 'head';

export interface Hop {
  readonly stage: number;
  /** What the stage applies; empty: the tensor only passes through. */
  readonly ops: readonly StageOp[];
}

/** Out-of-order pipelining needs two distinct pairs of stages to swap. */
export const MIN_STAGES_OUT_OF_ORDER = 4;

/** The route of micro-batch `microBatch` through `stages` stages. */
export function microBatchRoute(stages: number, microBatch: number, outOfOrder: boolean): Hop[] {
  if (!Number.isInteger(stages) || stages < 1) throw new RangeError(`a pipeline has at least 1 stage, not ${stages}`);
  if (outOfOrder && microBatch % 2 === 1) {
    if (stages < MIN_STAGES_OUT_OF_ORDER) throw new RangeError(`out-of-order pipelining needs at least ${MIN_STAGES_OUT_OF_ORDER} stages, not ${stages}`);
    const last = stages - 1;
    const hops: Hop[] = [
      { stage: 0, ops: ['embed'] },
      { stage: 1, ops: ['blocks'] },
      { stage: 0, ops: ['blocks'] },
      { stage: 1, ops: [] },
    ];
    for (let s = 2; s <= last - 2; s++) hops.push({ stage: s, ops: ['blocks'] });
    hops.push({ stage: last - 1, ops: [] }, { stage: last, ops: ['blocks'] }, { stage: last - 1, ops: ['blocks'] }, { stage: last, ops: ['head'] });
    return hops;
  }
  return Array.from({ length: stages }, (_, s) => ({
    stage: s,
    ops: [...(s === 0 ? (['embed'] as const) : []), 'blocks' as const, ...(s === stages - 1 ? (['head'] as const) : [])],
  }));
}

/** One stage's hops of a route, with their positions in it. */
export function hopsOf(route: readonly Hop[], stage: number): { readonly index: number; readonly hop: Hop }[] {
  return route.flatMap((hop, index) => (hop.stage === stage ? [{ index, hop }] : []));
}

/**
 * The stage a tensor for hop `index` comes from: the hop before it for an activation, the hop
 * after it for a gradient; null when there is none (the route's ends).
 */
export function senderOf(route: readonly Hop[], index: number, kind: 'activation' | 'gradient'): number | null {
  const from = kind === 'activation' ? index - 1 : index + 1;
  return from >= 0 && from < route.length ? route[from]!.stage : null;
}

/**
 * Under CheckFree+, the stage whose blocks stand in for a lost stage's (its swap partner), or
 * null for a stage rebuilt by averaging its two neighbours.
 */
export function swapPartner(stages: number, stage: number): number | null {
  if (stages < MIN_STAGES_OUT_OF_ORDER) return null;
  if (stage === 0) return 1;
  if (stage === 1) return 0;
  if (stage === stages - 1) return stages - 2;
  if (stage === stages - 2) return stages - 1;
  return null;
}
