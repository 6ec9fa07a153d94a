// Tensors received from pipeline neighbours, keyed by (kind, step, micro-batch, hop). A receiver may
// ask before or after the tensor arrives; each tensor is taken exactly once.

import { ProtocolError } from '../domain/errors.ts';
import type { PipeTensor } from './stage-trainer.ts';

export type PipeDirection = 'activation' | 'gradient';

interface Waiter {
  resolve(t: PipeTensor): void;
  reject(err: Error): void;
}

export class PipeMailbox {
  private readonly arrived = new Map<string, PipeTensor>();
  private readonly waiting = new Map<string, Waiter>();
  private failure: Error | null = null;

  private static key(kind: PipeDirection, step: number, microBatch: number, hop: number): string {
    return `${kind}:${step}:${microBatch}:${hop}`;
  }

  put(kind: PipeDirection, step: number, microBatch: number, hop: number, tensor: PipeTensor): void {
    const key = PipeMailbox.key(kind, step, microBatch, hop);
    const waiter = this.waiting.get(key);
    if (waiter) {
      this.waiting.delete(key);
      waiter.resolve(tensor);
      return;
    }
    if (this.arrived.has(key)) throw new ProtocolError(`duplicate ${kind} for step ${step} micro-batch ${microBatch} hop ${hop}`);
    this.arrived.set(key, tensor);
  }

  take(kind: PipeDirection, step: number, microBatch: number, hop: number): Promise<PipeTensor> {
    if (this.failure) return Promise.reject(this.failure);
    const key = PipeMailbox.key(kind, step, microBatch, hop);
    const ready = this.arrived.get(key);
    if (ready) {
      this.arrived.delete(key);
      return Promise.resolve(ready);
    }
    if (this.waiting.has(key)) return Promise.reject(new Error(`two receivers for ${key}`));
    return new Promise((resolve, reject) => this.waiting.set(key, { resolve, reject }));
  }

  /** Fails every pending and future take (the pipe is broken). */
  fail(err: Error): void {
    this.failure ??= err;
    for (const w of this.waiting.values()) w.reject(err);
    this.waiting.clear();
  }

  /** Tensors received but not yet taken. */
  get pending(): number {
    return this.arrived.size;
  }
}
