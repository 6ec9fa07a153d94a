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
 * timeline: an older epoch's version of a step a newer epoch has written again, or of a later
 * step. A newer epoch alone abandons nothing: a replica that joins, or replicas that train on
 * without a lost one, start an epoch without going back, and the older epoch's newest version
 * is still the one a rebuild needs.
 */
export class ShardStore {
  private readonly versions = new Map<string, { stage: number; step: number; epoch: number; shards: Map<number, StoredShard> }>();

  private static key(stage: number, step: number, epoch: number): string {
    return `${stage}:${step}:${epoch}`;
  }

  /** Stores a shard and frees what its header says is no longer needed; returns the bytes freed. */
  put(header: ShardHeader, bytes: Uint8Array): number {
    const key = ShardStore.key(header.stage, header.step, header.epoch);
    let v = this.versions.get(key);
    if (!v) {
      v = { stage: header.stage, step: header.step, epoch: header.epoch, shards: new Map() };
      this.versions.set(key, v);
    }
    v.shards.set(header.index, { header, bytes });
    return this.free(header);
  }

  /** Every shard held of one version. */
  get(stage: number, step: number, epoch: number): StoredShard[] {
    return [...(this.versions.get(ShardStore.key(stage, step, epoch))?.shards.values() ?? [])];
  }

  /**
   * Frees what the stage of a new shard's version no longer needs: versions older than its
   * protected commit step, and older epochs' versions of its step or later ones (the new epoch
   * went back before them). Returns the bytes freed.
   */
  free(incoming: Pick<ShardHeader, 'stage' | 'step' | 'epoch' | 'protectedCommitStep'>): number {
    const { stage, step, epoch, protectedCommitStep: commitStep } = incoming;
    let freed = this.drop((v) => v.stage === stage && (v.step < commitStep || (v.epoch < epoch && v.step >= step)));
    const left = [...this.versions.entries()].filter(([, v]) => v.stage === stage);
    if (left.length > MAX_VERSIONS_PER_STAGE) {
      // Keep the commit step's version, then the newest steps; drop the rest.
      left.sort(([, a], [, b]) => Number(b.step === commitStep) - Number(a.step === commitStep) || b.step - a.step || b.epoch - a.epoch);
      const extra = new Set(left.slice(MAX_VERSIONS_PER_STAGE).map(([key]) => key));
      freed += this.drop((v) => extra.has(ShardStore.key(v.stage, v.step, v.epoch)));
    }
    return freed;
  }

  /**
   * Frees, of every stage, the versions older than `commitStep`: the protected commit step is the
   * one every stage can go back to, so no rollback needs an older one. Returns the bytes freed.
   */
  freeBelow(commitStep: number): number {
    return this.drop((v) => v.step < commitStep);
  }

  /**
   * Frees every version of `stage`: the node now runs that stage, and its own shards would be
   * lost with it, so a rebuild of the stage never uses them. Returns the bytes freed.
   */
  dropStage(stage: number): number {
    return this.drop((v) => v.stage === stage);
  }

  private drop(which: (v: { stage: number; step: number; epoch: number }) => boolean): number {
    let freed = 0;
    for (const [key, v] of this.versions) {
      if (!which(v)) continue;
      for (const s of v.shards.values()) freed += s.bytes.byteLength;
      this.versions.delete(key);
    }
    return freed;
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
