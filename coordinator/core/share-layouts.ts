// Sharded snapshots (`--snapshot-shares on`, with replicas): each replica slot of a stage that
// trains snapshots only its share of the stage's state, share i of n being the i-th of the n
// slots that train, in slot order. Which slots wrote the shares of a step is what a restore of
// that step needs: every one of them must hold it (or rebuild it from erasure shards), and the
// restoring workers fetch them from those slots' snapshot managers. The layout changes only when
// assignments go out (a replica out, or back), so it is kept as a list of (after step, slots) per
// stage; a rollback drops the layouts of the abandoned steps. Pure: no I/O, no clock.

export class ShareLayouts {
  /** Per stage, in the order they began: snapshots of steps after `afterStep` were written by `slots`. */
  private readonly layouts: { afterStep: number; slots: readonly number[] }[][];

  constructor(stages: number) {
    this.layouts = Array.from({ length: stages }, () => []);
  }

  /**
   * Assignments that resume from `fromStep` (-1: from the start, or from a disk checkpoint)
   * went out: from there on each stage's shares are written by `slotsByStage[stage]`. Layouts of
   * steps after `fromStep` belonged to a timeline that was left.
   */
  begin(fromStep: number, slotsByStage: readonly (readonly number[])[]): void {
    slotsByStage.forEach((slots, stage) => {
      const list = this.layouts[stage]!;
      while (list.length > 0 && list.at(-1)!.afterStep >= fromStep) list.pop();
      list.push({ afterStep: fromStep, slots: [...slots] });
    });
  }

  /** Every stage's layouts, as the coordinator's store keeps them. */
  durable(): { afterStep: number; slots: readonly number[] }[][] {
    return this.layouts.map((list) => list.map((l) => ({ afterStep: l.afterStep, slots: [...l.slots] })));
  }

  restore(d: readonly (readonly { afterStep: number; slots: readonly number[] }[])[]): void {
    d.forEach((list, stage) => this.layouts[stage]!.splice(0, this.layouts[stage]!.length, ...list.map((l) => ({ ...l }))));
  }

  /** The slots that wrote the shares of `stage`'s snapshot of `step`, in share order; null when not known. */
  of(stage: number, step: number): readonly number[] | null {
    const list = this.layouts[stage]!;
    for (let i = list.length - 1; i >= 0; i--) if (list[i]!.afterStep < step) return list[i]!.slots;
    return null;
  }
}

/**
 * The steps a sharded stage can restore: those whose every share is held by the slot that wrote
 * it (`held`) or can be rebuilt by that slot's node from erasure shards (`rebuildable`).
 */
export function restorableShares(
  layoutOf: (step: number) => readonly number[] | null,
  candidates: Iterable<number>,
  held: (slot: number) => readonly number[],
  rebuildable: (slot: number) => ReadonlySet<number>,
): number[] {
  const steps = new Set<number>();
  for (const step of candidates) {
    const writers = layoutOf(step);
    if (writers !== null && writers.length > 0 && writers.every((p) => held(p).includes(step) || rebuildable(p).has(step))) steps.add(step);
  }
  return [...steps].sort((a, b) => a - b);
}

/** What the recovery policy sees of each slot (recovery-policy.ts RecoveryView), per slot. */
export interface SlotViews<V> {
  readonly restorable: readonly (readonly number[])[];
  readonly fromShards: readonly ReadonlyMap<number, V>[];
  readonly fromReplicas: readonly ReadonlyMap<number, number>[];
}

/**
 * The recovery policy's view of a job whose snapshots are shared out among the replicas: a step
 * is restorable by every slot of a stage once every share of it is held or rebuildable by the
 * slot that wrote it. A slot rebuilds from erasure shards only its own share (`fromShards`); a
 * lost slot that wrote no share of the step (its replica was out) gathers all of them from its
 * live replicas (`fromReplicas`, with the first writer's slot).
 */
export function shareViews<V>(
  stageSlots: readonly (readonly number[])[],
  layoutOf: (stage: number, step: number) => readonly number[] | null,
  held: (slot: number) => readonly number[],
  fromShards: readonly ReadonlyMap<number, V>[],
  lost: readonly number[],
): SlotViews<V> {
  const restorable: number[][] = fromShards.map(() => []);
  const shards: Map<number, V>[] = fromShards.map(() => new Map());
  const replicas: Map<number, number>[] = fromShards.map(() => new Map());
  stageSlots.forEach((slots, stage) => {
    const candidates = new Set(slots.flatMap((p) => [...held(p), ...fromShards[p]!.keys()]));
    const steps = restorableShares((step) => layoutOf(stage, step), candidates, held, (p) => new Set(fromShards[p]!.keys()));
    for (const s of slots) {
      restorable[s] = steps;
      for (const step of steps) {
        const writers = layoutOf(stage, step)!;
        if (writers.includes(s)) {
          if (!held(s).includes(step)) shards[s]!.set(step, fromShards[s]!.get(step)!);
        } else if (lost.includes(s)) {
          replicas[s]!.set(step, writers[0]!);
        }
      }
    }
  });
  return { restorable, fromShards: shards, fromReplicas: replicas };
}

/**
 * Adds to a sharded job's views what the survivors hold in their tensors (their halted reports'
 * memory steps, -1: none): a survivor can go on from that step as it is, and a lost slot can copy
 * it whole from a live replica's worker (Worker.FetchState) where no share gathering offers it:
 * `fromMemory` names the replica for each (slot, step). The copy needs no erasure decode and no
 * snapshot of the step: the snapshots' shards lag the step under way.
 */
export function withMemory<V>(
  views: SlotViews<V>,
  stageSlots: readonly (readonly number[])[],
  memory: (slot: number) => number,
  lost: readonly number[],
): { readonly views: SlotViews<V>; readonly fromMemory: ReadonlyMap<number, ReadonlyMap<number, number>> } {
  const restorable = views.restorable.map((steps) => new Set(steps));
  const fromReplicas = views.fromReplicas.map((m) => new Map(m));
  const fromMemory = new Map<number, Map<number, number>>();
  for (const slots of stageSlots) {
    const live = slots.filter((p) => !lost.includes(p) && memory(p) >= 0);
    for (const s of slots) {
      if (!lost.includes(s)) {
        if (memory(s) >= 0) restorable[s]!.add(memory(s));
        continue;
      }
      for (const p of live) {
        const step = memory(p);
        restorable[s]!.add(step);
        if (fromReplicas[s]!.has(step)) continue;
        fromReplicas[s]!.set(step, p);
        if (!fromMemory.has(s)) fromMemory.set(s, new Map());
        fromMemory.get(s)!.set(step, p);
      }
    }
  }
  return { views: { restorable: restorable.map((s) => [...s].sort((a, b) => a - b)), fromShards: views.fromShards, fromReplicas }, fromMemory };
}
