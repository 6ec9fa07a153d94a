// One optimizer step of one stage under the GPipe schedule: all micro-batches forward, then all
// backward in micro-batch order, then gradient clipping and the Adam update. Each micro-batch
// follows its route (pipeline-route.ts): in order, one hop per stage; under CheckFree+ the odd
// ones visit some stages twice. The hop that computes the loss runs its backward right after its
// forward, so gradients start flowing back early; every other hop's backward waits for the
// backward phase, taken in micro-batch order and, within one, in reverse route order. A replica
// that trains a lost replica's micro-batches as well (`StepWork`) runs them after its own, as
// items of one longer list, and keeps each owner's gradient sum apart for the all-reduce.
//
// Ordering contract: the optimizer update happens after the last backward and before the next
// step's first forward is taken from the pipe. With a `yieldInUpdate` hook it yields between
// parameters (so a Halt is heard at once); meanwhile the stage's tensors are half-updated, and
// whatever reads them (FetchWeights) first awaits `consistent()`. An update abandoned half-way
// leaves the stage `torn` until a snapshot is restored into it (`repaired()`).

import { writeFileSync, mkdirSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { join } from 'node:path';
import type { Corpus } from '../domain/corpus.ts';
import { microBatchFor } from '../domain/corpus.ts';
import type { JobOptions } from '../domain/job-options.ts';
import { Adam } from './adam.ts';
import { GptStage } from './gpt-stage.ts';
import { tf } from './tfjs-backend.ts';
import { hopsOf, microBatchRoute, type Hop, type StageOp } from '../domain/pipeline-route.ts';
import { batchMicroBatch, replicaOfSlot, stageOfSlot } from '../domain/replica-slots.ts';
import { GradientFlats } from './gradient-flats.ts';
import type { ReducePlan } from './ring-all-reduce.ts';

export interface PipeTensor {
  readonly shape: readonly number[];
  readonly data: Float32Array;
}

/**
 * What a stage needs from its pipeline neighbours. `hop` is the position in the micro-batch's
 * route of the hop that takes the tensor; `toStage` is that hop's stage.
 */
export interface PipeIO {
  recvActivation(step: number, microBatch: number, hop: number): Promise<PipeTensor>;
  recvGradient(step: number, microBatch: number, hop: number): Promise<PipeTensor>;
  sendActivation(toStage: number, step: number, microBatch: number, hop: number, tensor: PipeTensor): Promise<void>;
  sendGradient(toStage: number, step: number, microBatch: number, hop: number, tensor: PipeTensor): Promise<void>;
}

export interface StepStats {
  readonly step: number;
  /** Mean loss over the step's micro-batches (every owner's); null except on the last stage. */
  readonly loss: number | null;
  readonly gradNorm: number;
  readonly clippedGradNorm: number;
  readonly computeMs: number;
  readonly waitMs: number;
  readonly stepMs: number;
  /** Time in the gradient all-reduce (replicas; 0 with one). */
  readonly allReduceMs: number;
  readonly tokens: number;
}

/** Calls into the worker at fixed points of a step. */
export interface StepHooks {
  /**
   * After the first micro-batch's forward (failure injection); on the stage with the loss, whose
   * forward runs with its backward, before that call: no gradient of the step has left the stage.
   */
  readonly midStep?: (step: number) => Promise<void>;
  /** Right before the optimizer update: the previous snapshot's copy must be complete. */
  readonly beforeUpdate?: () => Promise<void>;
  /**
   * With replicas: sums this stage's flat gradients with the other replicas' of the stage; every
   * replica gets the same bits back (worker/replica-ring.ts). `parts` holds one flat vector per
   * owner of the step's work (`StepWork.owners`, in that order): the sum of that owner's
   * micro-batches, variables in order, as that owner's own replica would have made it. The parts
   * are not written, and are read until the promise settles. Throwing abandons the step, which
   * has changed nothing yet. With `--overlap-reduce on` it is called when the step begins, with a
   * plan: the parts are filled in as the backward pass finishes each variable, and each bucket is
   * summed once the plan says it is ready (worker/gradient-flats.ts).
   */
  readonly allReduce?: (step: number, parts: readonly Float32Array[], plan?: ReducePlan) => Promise<Float32Array>;
  /**
   * Awaited between the phases of the update and between its parameters. Throwing abandons the
   * step there: before the first parameter is touched, nothing changed; after, the stage is torn.
   */
  readonly yieldInUpdate?: () => Promise<void>;
  /**
   * Awaited between the pieces of each backward pass (GptStage.backwardInPieces): throwing
   * abandons the step, which has changed nothing yet. Without it, each backward is one block.
   */
  readonly betweenPieces?: () => Promise<void>;
}

/**
 * Whose micro-batches a stage trains in a step, and what the step's mean divides by. `owners[0]`
 * is the stage's own replica; the others are guests (`--on-replica-loss keep`: replicas out of
 * the ring whose micro-batches this replica trains for them). `replicasInBatch`: the replicas
 * whose micro-batches make the step's batch (all D under keep, the D' in the ring under shrink).
 */
export interface StepWork {
  readonly owners: readonly number[];
  readonly replicasInBatch: number;
}

/** The gradients of a stage in one flat vector, variables in order, written into `flat`. */
function flattenGradients(grads: readonly tf.Tensor[], flat: Float32Array): Float32Array {
  let at = 0;
  for (const g of grads) {
    flat.set(g.dataSync() as Float32Array, at);
    at += g.size;
  }
  return flat;
}

export class StageTrainer {
  readonly model: GptStage;
  readonly adam: Adam;
  /** Steps completed (the next step to run). */
  completedSteps = 0;
  /**
   * An update was abandoned half-way: some parameters and moments hold the next step's values.
   * Nothing may read the tensors until a snapshot is restored into them (`repaired()`).
   */
  torn = false;
  /** Built with zeros, to be restored at once: no state is held until one is loaded (`repaired()`). */
  unwritten: boolean;
  /** Closed while the tensors are not those of a completed step (an update under way, or torn). */
  private gate: { readonly promise: Promise<void>; readonly open: () => void } | null = null;
  /**
   * The flat gradient vectors handed to the all-reduce, one per owner, kept from step to step: a
   * new array of the stage's gradient every step costs a page fault per 4 KiB written.
   */
  private readonly flatParts: Float32Array[] = [];
  /** Multiplies the job's learning rate: a stage rebuilt by CheckFree trains a little faster. */
  learningRateScale = 1;
  /** Micro-batch routes: out of order on odd micro-batches under CheckFree+. */
  readonly routes: readonly (readonly Hop[])[];
  /** The stage within its replica, and the replica (domain/replica-slots.ts). */
  readonly stage: number;
  readonly replica: number;

  constructor(
    readonly job: JobOptions,
    /** The stage slot: replica * stages + stage (the stage itself with one replica). */
    readonly slot: number,
    private readonly corpus: Corpus | null,
    /** 'zeros': the stage is restored from a snapshot at once, so its initial weights are not made. */
    weights: 'initial' | 'zeros' = 'initial',
  ) {
    const stage = stageOfSlot(job, slot);
    this.stage = stage;
    this.replica = replicaOfSlot(job, slot);
    this.unwritten = weights === 'zeros';
    this.model = new GptStage({ stage, numStages: job.stages }, job.model, job.seed, weights);
    this.adam = new Adam(this.model.variables, job, weights === 'zeros' ? 'unwritten' : 'zeros');
    const outOfOrder = job.recovery === 'checkfree-plus';
    this.routes = Array.from({ length: job.microBatches }, (_, mb) => microBatchRoute(job.stages, mb, outOfOrder));
    if ((this.model.isFirst || this.model.isLast) && !corpus) {
      throw new Error(`stage ${stage} needs the training text`);
    }
  }

  /** Resolves once the tensors hold a completed step: no update under way, none half-applied. */
  consistent(): Promise<void> {
    return this.gate?.promise ?? Promise.resolve();
  }

  /** A whole state was loaded into the tensors (a snapshot restored): no longer torn. */
  repaired(): void {
    this.torn = false;
    this.unwritten = false;
    this.openGate();
  }

  private openGate(): void {
    this.gate?.open();
    this.gate = null;
  }

  /** The state of a fresh start: initial weights, fresh Adam, no step done. */
  reset(): void {
    this.model.resetWeights();
    this.adam.reset();
    this.completedSteps = 0;
    this.learningRateScale = 1;
  }

  /** Replica `owner`'s micro-batch `mb` of the step: replica r trains the step's micro-batches r*M ... (r+1)*M-1. */
  private batch(step: number, owner: number, mb: number) {
    const index = batchMicroBatch(this.job.microBatches, owner, mb);
    return microBatchFor(this.corpus!, this.job.seed, step, index, this.job.microBatchSize, this.job.model.seqLen);
  }

  /** The work of a step without guests: this replica's own micro-batches, every replica in the batch. */
  get ownWork(): StepWork {
    return { owners: [this.replica], replicasInBatch: this.job.replicas };
  }

  /** Throws for work this stage cannot train: the owners must start with its own replica, the others distinct replicas of the job. */
  private checkWork(work: StepWork): void {
    const { owners, replicasInBatch } = work;
    const { replicas } = this.job;
    const known = owners.every((o, i) => Number.isInteger(o) && o >= 0 && o < replicas && owners.indexOf(o) === i);
    if (owners[0] !== this.replica || !known) throw new RangeError(`replica ${this.replica} of ${replicas} cannot train the micro-batches of replicas [${owners.join(', ')}]: its own must come first, then distinct others`);
    if (!Number.isInteger(replicasInBatch) || replicasInBatch < owners.length || replicasInBatch > replicas) {
      throw new RangeError(`a step's batch of ${replicasInBatch} replica(s) cannot hold the ${owners.length} this one trains, of ${replicas}`);
    }
  }

  /**
   * One step. `work` (default: `ownWork`) says whose micro-batches it trains. The work list is
   * owner-major: owner k's micro-batch mb is item k*M + mb, the key of its tensors in every PipeIO
   * call (every stage of the replica is given the same owners, so the keys agree), and follows
   * route `routes[mb]`. Each owner has its own gradient sums, added to in that owner's micro-batch
   * order, so each part handed to `allReduce` is, operands and order, what the owner's own replica
   * computes in a step without guests.
   */
  async runStep(step: number, io: PipeIO, hooks: StepHooks = {}, work: StepWork = this.ownWork): Promise<StepStats> {
    this.checkWork(work);
    const { microBatches: mbs, microBatchSize: rows } = this.job;
    const { owners, replicasInBatch } = work;
    const started = performance.now();
    let waitMs = 0;
    const wait = async <T>(p: Promise<T>): Promise<T> => {
      const t0 = performance.now();
      try {
        return await p;
      } finally {
        waitMs += performance.now() - t0;
      }
    };
    /** The gradient sums, one set per owner; after the all-reduce, the first set holds the total. */
    const sumsOf: tf.Tensor[][] = owners.map(() => this.model.variables.map((v) => tf.zerosLike(v)));
    const sums = sumsOf[0]!;
    const losses: number[] = [];
    const shape = this.model.activationShape(rows);

    /** Adds a gradient of variable i into owner k's sum (and frees it). */
    const accumulateInto = (k: number) => (i: number, g: tf.Tensor) => {
      const into = sumsOf[k]!;
      const next = tf.add(into[i]!, g);
      into[i]!.dispose();
      g.dispose();
      into[i] = next;
    };
    /** Sends the gradient of a hop's input back to the hop before it (none before the first); `mb` is the pipe key. */
    const sendBack = async (route: readonly Hop[], mb: number, index: number, dInput: tf.Tensor | PipeTensor | null) => {
      if (!dInput || index === 0) return;
      let tensor: PipeTensor;
      if (dInput instanceof tf.Tensor) {
        tensor = { shape, data: dInput.dataSync() as Float32Array };
        dInput.dispose();
      } else {
        tensor = dInput;
      }
      await io.sendGradient(route[index - 1]!.stage, step, mb, index - 1, tensor);
    };
    /** Every hop's input, by work item and hop: the backward phase recomputes from them. */
    const inputs = new Map<string, tf.Tensor>();
    const items = owners.length * mbs;
    // Overlapped with the backward pass: the all-reduce begins now and sums each bucket of the
    // gradient once every owner's last backward call has added into all of its variables.
    const flats = this.job.replicas > 1 && this.job.overlapReduce && hooks.allReduce ? new GradientFlats(this.model.variables.map((v) => v.size), this.partsFor(owners.length)) : null;
    const lastCalls = flats ? this.lastBackwardCalls(owners.length) : [];
    /** Where a backward call's gradients go: into owner k's sums and, from its last call on, into its flat part as well. */
    const addFor = (k: number, key: number, index: number) => {
      const add = accumulateInto(k);
      if (!flats || lastCalls[k] !== `${key}:${index}`) return add;
      return (i: number, g: tf.Tensor) => {
        add(i, g);
        flats.finalize(k, i, sumsOf[k]![i]!.dataSync() as Float32Array);
      };
    };
    /** After a backward call: once it was owner k's last, every variable of its part is final (those it did not touch too). */
    const afterCall = (k: number, key: number, index: number) => {
      if (flats && lastCalls[k] === `${key}:${index}`) flats.finalizeAll(k, (i) => sumsOf[k]![i]!.dataSync() as Float32Array);
    };
    const reducing = flats ? hooks.allReduce!(step, flats.parts, flats.plan) : null;
    reducing?.catch(() => {}); // awaited below; a step abandoned before then fails it (abandon)

    /** The failure point of the step (hooks.midStep), once. */
    let midStepDone = false;
    const midStep = async () => {
      if (midStepDone || !hooks.midStep) return;
      midStepDone = true;
      await hooks.midStep(step);
    };
    try {
      // Forward pass over all work items (owner-major); the hop with the loss also runs its backward at once.
      for (let key = 0; key < items; key++) {
        const k = Math.floor(key / mbs);
        const owner = owners[k]!;
        const mb = key % mbs;
        const route = this.routes[mb]!;
        for (const { index, hop } of hopsOf(route, this.stage)) {
          if (hop.ops.length === 0) {
            // Passing through: on to the next hop, untouched.
            const received = await wait(io.recvActivation(step, key, index));
            await io.sendActivation(route[index + 1]!.stage, step, key, index + 1, received);
            continue;
          }
          let input: tf.Tensor;
          if (hop.ops.includes('embed')) {
            input = tf.tensor1d(this.batch(step, owner, mb).inputs, 'int32');
          } else {
            const received = await wait(io.recvActivation(step, key, index));
            input = tf.tensor(received.data, [...received.shape], 'float32');
          }
          inputs.set(`${key}:${index}`, input);
          if (hop.ops.includes('head')) {
            // The hop with the loss runs its forward with its backward: the failure point comes
            // before both, so no gradient of the step has left the stage when it is hit.
            if (key === 0) await midStep();
            const targets = tf.tensor1d(this.batch(step, owner, mb).targets, 'int32');
            const result = await this.backward(input, { targets }, hop.ops, hooks, addFor(k, key, index));
            afterCall(k, key, index);
            losses.push(result.loss!);
            await sendBack(route, key, index, result.dInput);
          } else {
            const out = this.model.forward(input, rows, hop.ops);
            const data = out.dataSync() as Float32Array;
            out.dispose();
            await io.sendActivation(route[index + 1]!.stage, step, key, index + 1, { shape, data });
          }
        }
        if (key === 0) await midStep();
      }
      // Backward pass in work-item order, each item's hops in reverse route order.
      for (let key = 0; key < items; key++) {
        const k = Math.floor(key / mbs);
        const route = this.routes[key % mbs]!;
        for (const { index, hop } of hopsOf(route, this.stage).reverse()) {
          if (hop.ops.includes('head')) continue; // done in the forward pass
          const received = await wait(io.recvGradient(step, key, index));
          if (hop.ops.length === 0) {
            await sendBack(route, key, index, received);
            continue;
          }
          const dOutput = tf.tensor(received.data, [...received.shape], 'float32');
          const result = await this.backward(inputs.get(`${key}:${index}`)!, { dOutput }, hop.ops, hooks, addFor(k, key, index));
          afterCall(k, key, index);
          await sendBack(route, key, index, result.dInput);
        }
      }

      // Each result replaces its input in `sums` at once, so one set of gradients is alive at a
      // time (the state's third, not a multiple of it); the operations and their order are those
      // of the maths.
      const replace = (i: number, next: tf.Tensor) => {
        sums[i]!.dispose();
        sums[i] = next;
      };
      // The time the step waits for the all-reduce once its backward pass is over.
      let allReduceMs = 0;
      if (this.job.replicas > 1) {
        const t0 = performance.now();
        if (!hooks.allReduce) throw new Error(`stage ${this.stage} of replica ${this.replica} has no all-reduce to sum its gradients with its ${this.job.replicas - 1} other replica(s)`);
        sumsOf.forEach((set, k) => flats?.finalizeAll(k, (i) => set[i]!.dataSync() as Float32Array));
        const parts = this.partsFor(sumsOf.length);
        const total = await (reducing ?? hooks.allReduce(step, sumsOf.map((set, k) => flattenGradients(set, parts[k]!))));
        // The guests' sums are in the total now.
        for (const t of sumsOf.splice(1).flat()) t.dispose();
        let at = 0;
        sums.forEach((s, i) => {
          replace(i, tf.tensor(total.subarray(at, at + s.size), s.shape, 'float32'));
          at += s.size;
        });
        allReduceMs = performance.now() - t0;
      }
      if (hooks.beforeUpdate) await hooks.beforeUpdate();
      // Mean over the step's micro-batches (every replica's in the batch), then per-stage clipping and the update.
      sums.forEach((s, i) => replace(i, tf.div(s, mbs * replicasInBatch)));
      await hooks.yieldInUpdate?.();
      const norm = Math.sqrt(sums.reduce((acc, g) => acc + tf.tidy(() => (tf.sum(tf.square(g)).dataSync() as Float32Array)[0]!), 0));
      if (step === this.completedSteps && step === 0 && this.job.dumpGradsDir) this.dumpGradients(sums);
      const scale = norm > this.job.clipNorm ? this.job.clipNorm / norm : 1;
      if (scale !== 1) sums.forEach((g, i) => replace(i, tf.mul(g, scale)));
      const learningRate = this.job.learningRate * this.learningRateScale;
      if (hooks.yieldInUpdate) {
        await hooks.yieldInUpdate();
        let open!: () => void;
        this.gate = { promise: new Promise<void>((resolve) => (open = resolve)), open };
        try {
          await this.adam.applyYielding(sums, learningRate, hooks.yieldInUpdate);
        } catch (err) {
          this.torn = true;
          throw err;
        }
        this.openGate();
      } else {
        this.adam.apply(sums, learningRate);
      }
      const gradNorm = norm;
      const clippedGradNorm = norm * scale;
      this.completedSteps = step + 1;
      const stepMs = performance.now() - started;
      const loss = losses.length > 0 ? losses.reduce((a, b) => a + b, 0) / losses.length : null;
      return {
        step,
        loss,
        gradNorm,
        clippedGradNorm,
        computeMs: stepMs - waitMs,
        waitMs,
        stepMs,
        allReduceMs,
        tokens: items * rows * this.job.model.seqLen,
      };
    } catch (err) {
      flats?.abandon(err instanceof Error ? err : new Error(String(err)));
      throw err;
    } finally {
      for (const t of [...inputs.values(), ...sumsOf.flat()]) t.dispose();
    }
  }

  /** `owners` flat vectors of the stage's gradient, reused from the last step where they fit. */
  private partsFor(owners: number): Float32Array[] {
    const length = this.model.variables.reduce((n, v) => n + v.size, 0);
    for (let k = 0; k < owners; k++) if (this.flatParts[k]?.length !== length) this.flatParts[k] = new Float32Array(length);
    return this.flatParts.slice(0, owners);
  }

  /**
   * The last backward call of each owner's micro-batches on this stage, as `key:hop index`: the
   * calls of the hops with the loss come in the forward phase, the others after, in work-item
   * order and each item's hops in reverse route order (see `runStep`).
   */
  private lastBackwardCalls(owners: number): string[] {
    const mbs = this.job.microBatches;
    const last: string[] = [];
    const items = owners * mbs;
    for (let key = 0; key < items; key++) {
      for (const { index, hop } of hopsOf(this.routes[key % mbs]!, this.stage)) if (hop.ops.includes('head')) last[Math.floor(key / mbs)] = `${key}:${index}`;
    }
    for (let key = 0; key < items; key++) {
      for (const { index, hop } of hopsOf(this.routes[key % mbs]!, this.stage).reverse()) {
        if (!hop.ops.includes('head') && hop.ops.length > 0) last[Math.floor(key / mbs)] = `${key}:${index}`;
      }
    }
    return last;
  }

  /**
   * A hop's backward pass, in pieces when the hooks ask for it (each piece's gradients added to
   * the sums as soon as it is done: one piece's are alive at a time); frees `from`'s tensor
   * either way. The gradients go to `add`, not back to the caller.
   */
  private async backward(input: tf.Tensor, from: { dOutput: tf.Tensor } | { targets: tf.Tensor }, ops: readonly StageOp[], hooks: StepHooks, add: (i: number, g: tf.Tensor) => void) {
    const rows = this.job.microBatchSize;
    try {
      if (hooks.betweenPieces) return await this.model.backwardInPieces(input, rows, from, ops, hooks.betweenPieces, add);
      const result = this.model.backward(input, rows, from, ops);
      const indices = this.model.varIndices(ops);
      result.grads.forEach((g, j) => add(indices[j]!, g));
      return result;
    } finally {
      ('targets' in from ? from.targets : from.dOutput).dispose();
    }
  }

  private dumpGradients(grads: readonly tf.Tensor[]): void {
    const dir = this.job.dumpGradsDir!;
    mkdirSync(dir, { recursive: true });
    const out: Record<string, number[]> = {};
    grads.forEach((g, i) => {
      out[this.model.names[i]!] = Array.from(g.dataSync() as Float32Array);
    });
    writeFileSync(join(dir, `stage-${this.stage}.json`), JSON.stringify(out));
  }

  /**
   * crc32 of the stage's parameters (little-endian float32, variable order): what the replicas of
   * a stage compare (`--check-every`).
   */
  weightsCrc(): number {
    let crc = 0;
    for (const v of this.model.variables) {
      const data = v.dataSync() as Float32Array;
      crc = crc32(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), crc);
    }
    return crc;
  }

  /** The fault port's silent corruption: the sign of the first parameter's first value flipped in place. */
  flipFirstWeight(): void {
    const v = this.model.variables[0]!;
    const values = Float32Array.from(v.dataSync() as Float32Array);
    values[0] = -values[0]! || 1;
    v.assign(tf.tensor(values, v.shape, 'float32'));
  }

  /** Its tensors were freed (the node dropped the stage). */
  disposed = false;

  dispose(): void {
    this.disposed = true;
    this.model.dispose();
    this.adam.dispose();
    this.openGate();
  }
}
