// One pipeline stage of a byte-level GPT: token + position embedding on the first stage,
// pre-norm transformer blocks on every stage, final norm + head + cross-entropy on the last.
//
// Parameter names are global (`block5.attn.wq`) and initial values depend only on (seed, name),
// so the same model split over any number of stages starts from the same weights.

import { VOCAB_SIZE } from '../domain/corpus.ts';
import type { ModelOptions } from '../domain/job-options.ts';
import { Prng, hashString, mixSeed } from '../domain/prng.ts';
import type { StageOp } from '../domain/pipeline-route.ts';
import { assignOwned, tf, unwritten, valuesToWriteNow, variableOf } from './tfjs-backend.ts';

const INIT_STD = 0.02;
const LAYER_NORM_EPS = 1e-5;
const MASKED = -1e9;
const GELU_C = Math.sqrt(2 / Math.PI);

export interface StageLayout {
  readonly stage: number;
  readonly numStages: number;
}

interface ParamSpec {
  readonly name: string;
  readonly shape: number[];
  readonly init: 'normal' | 'ones' | 'zeros';
  readonly std: number;
}

function blockSpecs(block: number, m: ModelOptions, totalBlocks: number): ParamSpec[] {
  const d = m.dModel;
  const f = d * m.ffnMult;
  const residualStd = INIT_STD / Math.sqrt(2 * totalBlocks);
  const p = `block${block}`;
  return [
    { name: `${p}.ln1.gain`, shape: [d], init: 'ones', std: 0 },
    { name: `${p}.ln1.bias`, shape: [d], init: 'zeros', std: 0 },
    { name: `${p}.attn.wq`, shape: [d, d], init: 'normal', std: INIT_STD },
    { name: `${p}.attn.wk`, shape: [d, d], init: 'normal', std: INIT_STD },
    { name: `${p}.attn.wv`, shape: [d, d], init: 'normal', std: INIT_STD },
    { name: `${p}.attn.wo`, shape: [d, d], init: 'normal', std: residualStd },
    { name: `${p}.ln2.gain`, shape: [d], init: 'ones', std: 0 },
    { name: `${p}.ln2.bias`, shape: [d], init: 'zeros', std: 0 },
    { name: `${p}.mlp.w1`, shape: [d, f], init: 'normal', std: INIT_STD },
    { name: `${p}.mlp.w2`, shape: [f, d], init: 'normal', std: residualStd },
  ];
}

/** Parameter specs of one stage, in the stage's variable order. */
export function stageParamSpecs(layout: StageLayout, m: ModelOptions): ParamSpec[] {
  const totalBlocks = layout.numStages * m.layersPerStage;
  const specs: ParamSpec[] = [];
  if (layout.stage === 0) {
    specs.push({ name: 'tok_emb', shape: [VOCAB_SIZE, m.dModel], init: 'normal', std: INIT_STD });
    specs.push({ name: 'pos_emb', shape: [m.seqLen, m.dModel], init: 'normal', std: INIT_STD / 2 });
  }
  for (let i = 0; i < m.layersPerStage; i++) {
    specs.push(...blockSpecs(layout.stage * m.layersPerStage + i, m, totalBlocks));
  }
  if (layout.stage === layout.numStages - 1) {
    specs.push({ name: 'ln_f.gain', shape: [m.dModel], init: 'ones', std: 0 });
    specs.push({ name: 'ln_f.bias', shape: [m.dModel], init: 'zeros', std: 0 });
    specs.push({ name: 'head', shape: [m.dModel, VOCAB_SIZE], init: 'normal', std: INIT_STD });
  }
  return specs;
}

/** The part of the model a parameter belongs to. */
export function opOfParam(name: string): StageOp {
  if (name === 'tok_emb' || name === 'pos_emb') return 'embed';
  if (name === 'head' || name.startsWith('ln_f.')) return 'head';
  return 'blocks';
}

/** Specs of the parameters of one part (embedding or head) of an edge stage, in variable order. */
export function edgeParamSpecs(layout: StageLayout, m: ModelOptions, op: 'embed' | 'head'): ParamSpec[] {
  return stageParamSpecs(layout, m).filter((s) => opOfParam(s.name) === op);
}

/** Writes a parameter's initial values (a function of seed and name) into `values`, which holds zeros. */
function fillInitialValues(spec: ParamSpec, seed: number, values: Float32Array): void {
  if (spec.init === 'ones') values.fill(1);
  else if (spec.init === 'normal') {
    const rng = new Prng(mixSeed(seed, hashString(spec.name)));
    for (let i = 0; i < values.length; i++) values[i] = rng.nextNormal() * spec.std;
  }
}

/**
 * Gives `v`, which holds zeros, its initial values: written straight into its own storage where
 * the backend allows it, so no copy of them is made in JS memory (a third of the stage's state,
 * which the process would keep after it is freed); assigned from a fresh tensor elsewhere.
 */
function setInitialValues(v: tf.Variable, spec: ParamSpec, seed: number): void {
  const own = valuesToWriteNow(v);
  if (own) {
    fillInitialValues(spec, seed, own);
    return;
  }
  const values = new Float32Array(spec.shape.reduce((a, b) => a * b, 1));
  fillInitialValues(spec, seed, values);
  assignOwned(v, tf.tensor(values, spec.shape, 'float32'));
}

export interface StageGradients {
  /** Gradient of the stage's input activation, [rows, seqLen, dModel]; null on the first stage. */
  readonly dInput: tf.Tensor | null;
  /** One gradient per variable the hop used, in variable order. */
  readonly grads: tf.Tensor[];
  /** Mean cross-entropy of the micro-batch (last stage only). */
  readonly loss: number | null;
}

export class GptStage {
  readonly names: readonly string[];
  readonly variables: readonly tf.Variable[];
  private readonly specs: readonly ParamSpec[];
  readonly isFirst: boolean;
  readonly isLast: boolean;
  private readonly byName: ReadonlyMap<string, tf.Variable>;
  private readonly causalMask: tf.Tensor2D;

  constructor(
    readonly layout: StageLayout,
    readonly model: ModelOptions,
    private readonly seed: number,
    /**
     * 'initial': the initial weights (a function of seed and name); 'zeros': a stage about to be
     * restored, whose weights are overwritten at once (on wasm not even zeroed: `unwritten`).
     */
    weights: 'initial' | 'zeros' = 'initial',
  ) {
    this.isFirst = layout.stage === 0;
    this.isLast = layout.stage === layout.numStages - 1;
    const specs = stageParamSpecs(layout, model);
    this.specs = specs;
    this.names = specs.map((s) => s.name);
    // Generating the initial values costs about a second per 20 M parameters: a stage that is
    // restored next has no use for them.
    this.variables = specs.map((s) => {
      const v = variableOf(weights === 'initial' ? tf.zeros(s.shape, 'float32') : unwritten(s.shape), true, `${s.name}`);
      if (weights === 'initial') setInitialValues(v, s, seed);
      return v;
    });
    this.byName = new Map(this.names.map((n, i) => [n, this.variables[i]!]));
    const t = model.seqLen;
    const mask = new Float32Array(t * t);
    for (let i = 0; i < t; i++) for (let j = i + 1; j < t; j++) mask[i * t + j] = MASKED;
    this.causalMask = tf.tensor2d(mask, [t, t]);
  }

  private v(name: string): tf.Variable {
    const found = this.byName.get(name);
    if (!found) throw new Error(`stage ${this.layout.stage} has no parameter ${name}`);
    return found;
  }

  /** Shape of the activation between stages for a micro-batch of `rows` sequences. */
  activationShape(rows: number): [number, number, number] {
    return [rows, this.model.seqLen, this.model.dModel];
  }

  private layerNorm(x: tf.Tensor, prefix: string): tf.Tensor {
    const mean = tf.mean(x, -1, true);
    const centered = tf.sub(x, mean);
    const variance = tf.mean(tf.square(centered), -1, true);
    const normed = tf.mul(centered, tf.rsqrt(tf.add(variance, LAYER_NORM_EPS)));
    return tf.add(tf.mul(normed, this.v(`${prefix}.gain`)), this.v(`${prefix}.bias`));
  }

  /**
   * The weights have been computed with since their storage was made (or last made anew): the
   * wasm backend may hold packed copies of them keyed by that storage (see inPlaceTargets).
   */
  computed = false;

  private block(x: tf.Tensor, b: number, rows: number): tf.Tensor {
    return this.mlpHalf(this.attentionHalf(x, b, rows), b, rows);
  }

  /** A block's first half: x + attention(ln1(x)). Its input has no consumer outside it. */
  private attentionHalf(x: tf.Tensor, b: number, rows: number): tf.Tensor {
    this.computed = true;
    const { seqLen: t, dModel: d, heads: h } = this.model;
    const dh = d / h;
    const p = `block${b}`;
    const flat = tf.reshape(this.layerNorm(x, `${p}.ln1`), [rows * t, d]);
    const heads = (w: string) => tf.transpose(tf.reshape(tf.matMul(flat, this.v(`${p}.attn.${w}`)), [rows, t, h, dh]), [0, 2, 1, 3]);
    const q = heads('wq');
    const k = heads('wk');
    const val = heads('wv');
    const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(dh)), this.causalMask);
    const attended = tf.matMul(tf.softmax(scores), val);
    const merged = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [rows * t, d]);
    return tf.add(x, tf.reshape(tf.matMul(merged, this.v(`${p}.attn.wo`)), [rows, t, d]));
  }

  /** A block's second half: y + mlp(ln2(y)). Its input has no consumer outside it. */
  private mlpHalf(afterAttn: tf.Tensor, b: number, rows: number): tf.Tensor {
    this.computed = true;
    const { seqLen: t, dModel: d } = this.model;
    const p = `block${b}`;
    const flat2 = tf.reshape(this.layerNorm(afterAttn, `${p}.ln2`), [rows * t, d]);
    const hidden = gelu(tf.matMul(flat2, this.v(`${p}.mlp.w1`)));
    return tf.add(afterAttn, tf.reshape(tf.matMul(hidden, this.v(`${p}.mlp.w2`)), [rows, t, d]));
  }

  /** The parts of the model this stage applies when the pipeline runs in order. */
  get inOrderOps(): StageOp[] {
    return [...(this.isFirst ? (['embed'] as const) : []), 'blocks', ...(this.isLast ? (['head'] as const) : [])];
  }

  /** Indices, in variable order, of the variables the given parts use. */
  varIndices(ops: readonly StageOp[]): number[] {
    return this.names.flatMap((n, i) => (ops.includes(opOfParam(n)) ? [i] : []));
  }

  /**
   * The embedding and/or the stage's blocks: token ids [rows*seqLen] (with 'embed') or
   * activations -> activations. The head is applied by `loss`.
   */
  applyOps(ops: readonly StageOp[], input: tf.Tensor, rows: number): tf.Tensor {
    this.computed = true;
    const { seqLen: t, dModel: d, layersPerStage } = this.model;
    let x = input;
    if (ops.includes('embed')) {
      // Embedding as matMul(oneHot(ids), E): the wasm backend has no gradient for gather, and its
      // oneHot ignores a float dtype (writes int bits), hence the cast.
      const tokens = tf.matMul(tf.cast(tf.oneHot(input as tf.Tensor1D, VOCAB_SIZE), 'float32'), this.v('tok_emb'));
      x = tf.add(tf.reshape(tokens, [rows, t, d]), this.v('pos_emb'));
    }
    if (ops.includes('blocks')) {
      const first = this.layout.stage * layersPerStage;
      for (let b = first; b < first + layersPerStage; b++) x = this.block(x, b, rows);
    }
    return x;
  }

  /** The stage's function in order: token ids (first stage) or activations -> activations. */
  apply(input: tf.Tensor, rows: number): tf.Tensor {
    return this.applyOps(this.inOrderOps, input, rows);
  }

  /** Mean next-token cross-entropy of the last stage's output. */
  loss(hidden: tf.Tensor, targets: tf.Tensor, rows: number): tf.Scalar {
    this.computed = true;
    const { seqLen: t, dModel: d } = this.model;
    const normed = tf.reshape(this.layerNorm(hidden, 'ln_f'), [rows * t, d]);
    const logits = tf.matMul(normed, this.v('head'));
    const labels = tf.cast(tf.oneHot(targets as tf.Tensor1D, VOCAB_SIZE), 'float32');
    return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
  }

  /** Forward only (no head), for sending activations on. The caller owns the result. */
  forward(input: tf.Tensor, rows: number, ops: readonly StageOp[] = this.inOrderOps): tf.Tensor {
    if (ops.includes('head')) throw new Error('forward does not apply the head; backward computes the loss');
    return tf.tidy(() => this.applyOps(ops, input, rows));
  }

  /**
   * Recomputes the forward pass of `ops` under the tape and returns gradients of the input and
   * of the variables those ops use (in `varIndices(ops)` order). A hop that ends in the head
   * passes `targets` and differentiates the loss; any other passes `dOutput`, the gradient of
   * its output.
   */
  backward(input: tf.Tensor, rows: number, from: { dOutput: tf.Tensor } | { targets: tf.Tensor }, ops: readonly StageOp[] = this.inOrderOps): StageGradients {
    if (ops.includes('head') !== 'targets' in from) throw new Error(`backward of [${ops.join(' ')}] needs ${ops.includes('head') ? 'targets' : 'dOutput'}`);
    const takesInput = !ops.includes('embed');
    const vars = this.varIndices(ops).map((i) => this.variables[i]!);
    const xs: tf.Tensor[] = takesInput ? [input, ...vars] : vars;
    let lossValue: number | null = null;
    const result = tf.engine().gradients(
      () => {
        const out = this.applyOps(ops, input, rows);
        return 'targets' in from ? this.loss(out, from.targets, rows) : out;
      },
      xs,
      'dOutput' in from ? from.dOutput : undefined,
    );
    if ('targets' in from) lossValue = (result.value.dataSync() as Float32Array)[0]!;
    result.value.dispose();
    const grads = result.grads;
    const dInput = takesInput ? grads.shift()! : null;
    return { dInput, grads, loss: lossValue };
  }

  /**
   * `backward`, the same gradients bit for bit, one piece of the model at a time (the embedding,
   * each block's attention half and MLP half, the head with the loss), last first, with
   * `between()` awaited after each piece: the event loop runs (a Halt is heard) within half a
   * block's backward rather than the stage's.
   * Each piece's input comes from a forward pass outside the tape; each piece differentiates its
   * own ops from that input, seeded with the gradient of its output from the piece after it. A
   * tensor a piece hands on has that one consumer, so no gradient is summed across pieces, and
   * each piece records the ops of `backward`'s tape in the same order. If `between` throws, the
   * pieces' tensors are freed and nothing is returned.
   *
   * With `take`, each piece's gradients go to it as soon as the piece is done (by variable index,
   * the caller owning them) and `grads` comes back empty: one piece's gradients are alive at a
   * time, not the whole hop's.
   */
  async backwardInPieces(
    input: tf.Tensor,
    rows: number,
    from: { dOutput: tf.Tensor } | { targets: tf.Tensor },
    ops: readonly StageOp[],
    between: () => Promise<void>,
    take?: (varIndex: number, grad: tf.Tensor) => void,
  ): Promise<StageGradients> {
    if (ops.includes('head') !== 'targets' in from) throw new Error(`backward of [${ops.join(' ')}] needs ${ops.includes('head') ? 'targets' : 'dOutput'}`);
    type Piece = { readonly names: readonly string[]; readonly apply: (x: tf.Tensor) => tf.Tensor };
    const { layersPerStage } = this.model;
    const pieces: Piece[] = [];
    if (ops.includes('embed')) pieces.push({ names: this.names.filter((n) => opOfParam(n) === 'embed'), apply: (x) => this.applyOps(['embed'], x, rows) });
    if (ops.includes('blocks')) {
      const first = this.layout.stage * layersPerStage;
      for (let b = first; b < first + layersPerStage; b++) {
        const of = (parts: readonly string[]) => this.names.filter((n) => parts.some((part) => n.startsWith(`block${b}.${part}.`)));
        pieces.push({ names: of(['ln1', 'attn']), apply: (x) => this.attentionHalf(x, b, rows) });
        pieces.push({ names: of(['ln2', 'mlp']), apply: (x) => this.mlpHalf(x, b, rows) });
      }
    }
    const withHead = 'targets' in from;
    // The inputs of the pieces, made outside the tape; the first is the caller's.
    const inputs: tf.Tensor[] = [input];
    for (const piece of pieces.slice(0, withHead ? pieces.length : pieces.length - 1)) inputs.push(tf.tidy(() => piece.apply(inputs.at(-1)!)));
    const owned = inputs.slice(1);
    const grads = new Map<string, tf.Tensor>();
    const index = new Map(this.names.map((n, i) => [n, i]));
    // With `take`, the gradients made so far go to it (and leave the map).
    const handOver = () => {
      if (!take) return;
      for (const [n, g] of grads) take(index.get(n)!, g);
      grads.clear();
    };
    let lossValue: number | null = null;
    let dy: tf.Tensor | null = null;
    try {
      if (withHead) {
        const x = inputs.at(-1)!;
        const headVars = this.names.filter((n) => opOfParam(n) === 'head');
        const r = tf.engine().gradients(() => this.loss(x, from.targets, rows), [x, ...headVars.map((n) => this.v(n))]);
        lossValue = (r.value.dataSync() as Float32Array)[0]!;
        r.value.dispose();
        dy = r.grads[0]!;
        headVars.forEach((n, i) => grads.set(n, r.grads[i + 1]!));
        handOver();
        await between();
      } else {
        dy = from.dOutput;
      }
      for (let i = pieces.length - 1; i >= 0; i--) {
        const piece = pieces[i]!;
        const x = inputs[i]!;
        const takesInput = !(i === 0 && ops.includes('embed'));
        const vars = piece.names.map((n) => this.v(n));
        const seed: tf.Tensor = dy!;
        const r: { value: tf.Tensor; grads: tf.Tensor[] } = tf.engine().gradients(() => piece.apply(x), takesInput ? [x, ...vars] : vars, seed);
        r.value.dispose();
        if (seed !== ('dOutput' in from ? from.dOutput : null)) seed.dispose();
        dy = takesInput ? r.grads[0]! : null;
        piece.names.forEach((n, j) => grads.set(n, r.grads[j + (takesInput ? 1 : 0)]!));
        handOver();
        if (i > 0) await between();
      }
    } catch (err) {
      for (const g of grads.values()) g.dispose();
      if (dy && dy !== ('dOutput' in from ? from.dOutput : null)) dy.dispose();
      throw err;
    } finally {
      for (const t of owned) t.dispose();
    }
    const order = take ? [] : this.varIndices(ops).map((i) => this.names[i]!);
    return { dInput: ops.includes('embed') ? null : dy, grads: order.map((n) => grads.get(n)!), loss: lossValue };
  }

  /** Back to the initial weights (a function of seed and name, as at construction). */
  resetWeights(): void {
    this.specs.forEach((s, i) => {
      assignOwned(this.variables[i]!, tf.zeros(s.shape, 'float32'));
      setInitialValues(this.variables[i]!, s, this.seed);
    });
  }

  dispose(): void {
    for (const v of this.variables) v.dispose();
    this.causalMask.dispose();
  }
}

function gelu(x: tf.Tensor): tf.Tensor {
  // tanh approximation, as in GPT-2.
  const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), GELU_C);
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
}
