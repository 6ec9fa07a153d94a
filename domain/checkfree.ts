// CheckFree (arXiv 2506.15461): a lost intermediate stage i is rebuilt from its neighbours'
// weights, W_i = (a W_{i+1} + b W_{i-1}) / (a + b), where a and b are the L2 norms of the
// neighbours' clipped gradients of their last step plus 1e-4 (a weighs the next stage, b the
// previous one). The rebuilt stage starts with a fresh Adam state and a scaled learning rate;
// the other stages keep their weights (no rollback).

/** Added to each gradient norm, so that a stage with a zero gradient still counts. */
export const CHECKFREE_NORM_EPSILON = 1e-4;

export interface CheckfreeWeights {
  /** Weight of the next stage's parameters: ||g_{i+1}|| + 1e-4. */
  readonly a: number;
  /** Weight of the previous stage's parameters: ||g_{i-1}|| + 1e-4. */
  readonly b: number;
}

export function checkfreeWeights(nextGradNorm: number, prevGradNorm: number): CheckfreeWeights {
  return { a: nextGradNorm + CHECKFREE_NORM_EPSILON, b: prevGradNorm + CHECKFREE_NORM_EPSILON };
}

/** (a next + b prev) / (a + b), element by element. */
export function checkfreeAverage(w: CheckfreeWeights, next: Float32Array, prev: Float32Array): Float32Array {
  if (next.length !== prev.length) throw new RangeError(`neighbour tensors differ in size: ${next.length} vs ${prev.length}`);
  const out = new Float32Array(next.length);
  const sum = w.a + w.b;
  for (let i = 0; i < out.length; i++) out[i] = (w.a * next[i]! + w.b * prev[i]!) / sum;
  return out;
}

/**
 * The name, on stage `to`, of the parameter that plays the part of `name` on stage `from`:
 * the same place in the same-numbered block of the stage (`block5.attn.wq` on stage 2 of 2
 * blocks per stage is `block7.attn.wq` on stage 3). Null for parameters outside the blocks
 * (embeddings, final norm, head), which no intermediate stage has.
 */
export function counterpartName(name: string, from: number, to: number, layersPerStage: number): string | null {
  const m = /^block(\d+)\.(.+)$/.exec(name);
  if (!m) return null;
  const local = Number(m[1]) - from * layersPerStage;
  if (local < 0 || local >= layersPerStage) return null;
  return `block${to * layersPerStage + local}.${m[2]}`;
}

/** Where a stage's weights are read from. */
export interface StageSource {
  readonly stage: number;
  readonly address: string;
}

/** What a node that takes over a lost stage by CheckFree is told. */
export type CheckfreeOrder =
  /** The weighted mean of the two neighbours' blocks. */
  | { readonly kind: 'average'; readonly prev: StageSource; readonly next: StageSource; readonly weights: CheckfreeWeights; readonly learningRateScale: number }
  /**
   * CheckFree+: the blocks of the swap partner, which out-of-order pipelining trained to stand in;
   * an edge stage also takes back its embedding or head from the copy the partner keeps.
   */
  | { readonly kind: 'copy'; readonly from: StageSource; readonly learningRateScale: number };
