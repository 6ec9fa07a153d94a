// CheckFree+ edge copies and rebuilds: stage 0 sends its embedding to stage 1 after every update,
// and the last stage its final norm and head to the stage before it; each keeps the newest copy.
// A stage rebuilt by CheckFree takes the weighted mean of its neighbours' blocks (or, under
// CheckFree+, its swap partner's blocks and, for an edge stage, the copy its partner keeps), with
// a fresh optimizer.

import { fetchStageWeights } from '../common/stage-weights.ts';
import { checkfreeAverage, counterpartName, type CheckfreeOrder } from '../domain/checkfree.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { swapPartner } from '../domain/pipeline-route.ts';
import { edgeParamSpecs, opOfParam } from './gpt-stage.ts';
import type { StageTrainer } from './stage-trainer.ts';
import { assignOwned, tf } from './tfjs-backend.ts';

/** CheckFree+: the edge stage whose embedding or head `stage` keeps a copy of, or null. */
export function edgeCopySource(stage: number, job: JobOptions): number | null {
  if (job.recovery !== 'checkfree-plus') return null;
  const partner = swapPartner(job.stages, stage);
  return partner === 0 || partner === job.stages - 1 ? partner : null;
}

/** Values in the copy of an edge stage's embedding or head. */
export function edgeCopySize(edge: number, job: JobOptions): number {
  return edgeParamSpecs({ stage: edge, numStages: job.stages }, job.model, edge === 0 ? 'embed' : 'head').reduce((n, s) => n + s.shape.reduce((x, y) => x * y, 1), 0);
}

/** The embedding (stage 0) or the final norm and head (the last stage) as one array, for its partner; null for other stages. */
export function edgeCopyOf(trainer: StageTrainer): Float32Array | null {
  const { job, stage } = trainer;
  if (job.recovery !== 'checkfree-plus' || (stage !== 0 && stage !== job.stages - 1)) return null;
  const parts = trainer.model.varIndices([stage === 0 ? 'embed' : 'head']).map((i) => trainer.model.variables[i]!.dataSync() as Float32Array);
  const data = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.length;
  }
  return data;
}

/**
 * CheckFree: the stage's blocks become the weighted mean of its neighbours' or, under CheckFree+,
 * a copy of its swap partner's, and an edge stage takes back its embedding or head from the copy
 * its partner keeps. Adam starts fresh (the trainer is new).
 */
export async function rebuildByCheckfree(trainer: StageTrainer, order: CheckfreeOrder): Promise<Record<string, number | undefined>> {
  const started = performance.now();
  const L = trainer.job.model.layersPerStage;
  const byName = (ws: { name: string; values: Float32Array }[]) => new Map(ws.map((w) => [w.name, w.values]));
  const values: Float32Array[] = [];
  if (order.kind === 'average') {
    const [prev, next] = (await Promise.all([fetchStageWeights(order.prev.address, order.prev.stage), fetchStageWeights(order.next.address, order.next.stage)])).map(byName);
    for (const name of trainer.model.names) {
      const p = prev!.get(counterpartName(name, trainer.stage, order.prev.stage, L) ?? '');
      const n = next!.get(counterpartName(name, trainer.stage, order.next.stage, L) ?? '');
      if (!p || !n) throw new Error(`CheckFree: ${name} of stage ${trainer.stage} has no counterpart on stage ${!p ? order.prev.stage : order.next.stage}`);
      values.push(checkfreeAverage(order.weights, n, p));
    }
  } else {
    const edge = trainer.model.isFirst || trainer.model.isLast;
    const [blocks, copy] = await Promise.all([
      fetchStageWeights(order.from.address, order.from.stage).then(byName),
      edge ? fetchStageWeights(order.from.address, trainer.stage, true).then(byName) : Promise.resolve(new Map<string, Float32Array>()),
    ]);
    for (const name of trainer.model.names) {
      const found = opOfParam(name) === 'blocks' ? blocks.get(counterpartName(name, trainer.stage, order.from.stage, L) ?? '') : copy.get(name);
      if (!found) throw new Error(`CheckFree+: ${name} of stage ${trainer.stage} has no copy on stage ${order.from.stage}`);
      values.push(found);
    }
  }
  trainer.model.variables.forEach((v, i) => {
    if (values[i]!.length !== v.size) throw new Error(`CheckFree: ${trainer.model.names[i]} has ${values[i]!.length} values, not ${v.size}`);
    assignOwned(v, tf.tensor(values[i]!, v.shape, 'float32'));
  });
  trainer.learningRateScale = order.learningRateScale;
  const from = order.kind === 'average' ? { prev: order.prev.stage, next: order.next.stage, a: order.weights.a, b: order.weights.b } : { copiedFrom: order.from.stage };
  return { stage: trainer.stage, ...from, lrScale: order.learningRateScale, ms: performance.now() - started };
}
