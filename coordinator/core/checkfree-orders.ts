// CheckFree's orders for the lost stages: each rebuilt from its neighbours' weights, weighed by
// their gradient norms (or, under CheckFree+, from its swap partner's blocks), with a learning
// rate a little higher; and the notice that says so. Pure: the recovery (recovery.ts) sends them.

import { checkfreeWeights, type CheckfreeOrder, type StageSource } from '../../domain/checkfree.ts';
import { swapPartner } from '../../domain/pipeline-route.ts';

export interface CheckfreeInput {
  readonly stages: number;
  readonly plus: boolean;
  readonly learningRateScale: number;
  /** Training goes on from this step (the notices say it). */
  readonly fromStep: number;
  /** Where a stage's weights are fetched from. */
  source(stage: number): StageSource;
  /** A stage's last clipped gradient norm. */
  clippedGradNorm(stage: number): number;
}

/** The order for each lost stage, and one notice each. */
export function checkfreeOrders(v: CheckfreeInput, lost: readonly number[]): { orders: Map<number, CheckfreeOrder>; notices: string[] } {
  const orders = new Map<number, CheckfreeOrder>();
  const notices: string[] = [];
  const scale = v.learningRateScale;
  const goesOn = `the other stages keep their weights; training goes on from step ${v.fromStep}`;
  for (const stage of lost) {
    const partner = v.plus ? swapPartner(v.stages, stage) : null;
    if (partner !== null) {
      orders.set(stage, { kind: 'copy', from: v.source(partner), learningRateScale: scale });
      const edge = stage === 0 ? ' and its embedding from the copy stage 1 keeps' : stage === v.stages - 1 ? ` and its head from the copy stage ${partner} keeps` : '';
      notices.push(`CheckFree+: stage ${stage} rebuilt with the blocks of its swap partner (stage ${partner})${edge}, learning rate x${scale}; ${goesOn}`);
      continue;
    }
    const weights = checkfreeWeights(v.clippedGradNorm(stage + 1), v.clippedGradNorm(stage - 1));
    orders.set(stage, { kind: 'average', prev: v.source(stage - 1), next: v.source(stage + 1), weights, learningRateScale: scale });
    notices.push(`${v.plus ? 'CheckFree+' : 'CheckFree'}: stage ${stage} rebuilt from stages ${stage - 1} and ${stage + 1} (weights ${weights.b.toFixed(4)} : ${weights.a.toFixed(4)}), learning rate x${scale}; ${goesOn}`);
  }
  return { orders, notices };
}
