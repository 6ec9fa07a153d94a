// The shards one snapshot manager holds for other nodes' stages, in RAM, by stage, step and
// epoch, with the rules that free the versions consistency no longer needs.

import type { ShardHeader } from '../domain/erasure-protection.ts';

interface StoredShard {
  readonly header: ShardHeader;
  readonly bytes: Uint8Array;
}

/** Versions of one stage a store keeps at most, whatever the commit step says. */
export const MAX_VERSIONS_PER_STAGE = 4;

/**
 * The shards one snapshot manager holds for other nodes' stages, by stage, step and epoch.
 * Versions older than the protected commit step are freed; so are versions of an abandoned
 * timeline (an older epoch, past the commit step) once a newer epoch's shard arrives.
 */
export class ShardStore {
  private readonly versions = new Map<string, { stage: number; step: number; epoch: number; shards: Map<number, StoredShard> }>();

  private static key(stage: number, step: number, epoch: number): string {
    return `${stage}:${step}:${epoch}`;
  }

  put(header: ShardHeader, bytes: Uint8Array): void {
    const key = ShardStore.key(header.stage, header.step, header.epoch);
    let v = this.versions.get(key);
    if (!v) {
      v = { stage: header.stage, step: header.step, epoch: header.epoch, shards: new Map() };
      this.versions.set(key, v);
    }
    v.shards.set(header.index, { header, bytes });
    this.free(header.stage, header.protectedCommitStep, header.epoch);
  }

  /** Every shard held of one version. */
  get(stage: number, step: number, epoch: number): StoredShard[] {
    return [...(this.versions.get(ShardStore.key(stage, step, epoch))?.shards.values() ?? [])];
  }

  /** Frees what `stage` no longer needs once `commitStep` is protected in `epoch`. */
  free(stage: number, commitStep: number, epoch: number): void {
    const mine = [...this.versions.entries()].filter(([, v]) => v.stage === stage);
    for (const [key, v] of mine) {
      const stale = v.step < commitStep || (v.epoch < epoch && v.step > commitStep);
      if (stale) this.versions.delete(key);
    }
    const left = [...this.versions.entries()].filter(([, v]) => v.stage === stage);
    if (left.length > MAX_VERSIONS_PER_STAGE) {
      // Keep the commit step's version, then the newest; drop the rest.
      left.sort(([, a], [, b]) => Number(b.step === commitStep) - Number(a.step === commitStep) || b.epoch - a.epoch || b.step - a.step);
      for (const [key] of left.slice(MAX_VERSIONS_PER_STAGE)) this.versions.delete(key);
    }
  }

  get heldBytes(): number {
    let n = 0;
    for (const v of this.versions.values()) for (const s of v.shards.values()) n += s.bytes.byteLength;
    return n;
  }

  get heldShards(): number {
    let n = 0;
    for (const v of this.versions.values()) n += v.shards.size;
    return n;
  }

  /** Tests: the shard object itself, to corrupt it in place. */
  peek(stage: number, step: number, epoch: number, index: number): Uint8Array | null {
    return this.versions.get(ShardStore.key(stage, step, epoch))?.shards.get(index)?.bytes ?? null;
  }
}
