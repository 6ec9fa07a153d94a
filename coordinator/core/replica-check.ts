// The replicas' consistency check (`--check-every K`): after every K-th step each replica of a
// stage reports a digest of its weights; once every replica of the stage has, they must agree
// (the all-reduce gives every replica the same bits). One that differs from a strict majority is
// a failure of that replica (silent data corruption, a bug), repaired from the others; with no
// majority (two replicas that differ) no one can say which is right. Pure: reports in, verdicts out.

import { replicaOfSlot, slotOf, stageOfSlot, type ReplicaShape } from '../../domain/replica-slots.ts';

export type ReplicaVerdict =
  | { readonly kind: 'agree'; readonly stage: number; readonly step: number }
  /** `odd`: the slots whose digest differs from the majority's. */
  | { readonly kind: 'odd'; readonly stage: number; readonly step: number; readonly odd: readonly number[]; readonly digests: readonly string[] }
  | { readonly kind: 'undecided'; readonly stage: number; readonly step: number; readonly digests: readonly string[] };

export class ReplicaCheck {
  /** Digests by stage and step, by replica, until every replica of the stage has reported. */
  private readonly pending = new Map<string, (string | undefined)[]>();
  /** Per stage: the newest state (steps completed) its replicas agreed on; -1: none checked yet. */
  private readonly agreed = new Map<number, number>();

  constructor(private readonly shape: ReplicaShape) {}

  /** A slot's digest of its weights after `step`; the verdict once every replica of the stage has given one. */
  record(slot: number, step: number, digest: string): ReplicaVerdict | null {
    const stage = stageOfSlot(this.shape, slot);
    const key = `${stage}:${step}`;
    const digests = this.pending.get(key) ?? Array.from({ length: this.shape.replicas }, () => undefined);
    // A step trained again after a rollback reports again: the newer word counts.
    digests[replicaOfSlot(this.shape, slot)] = digest;
    this.pending.set(key, digests);
    if (digests.some((d) => d === undefined)) return null;
    this.pending.delete(key);
    const all = digests as string[];
    const counts = new Map<string, number>();
    for (const d of all) counts.set(d, (counts.get(d) ?? 0) + 1);
    if (counts.size === 1) {
      this.agreed.set(stage, Math.max(this.agreed.get(stage) ?? -1, step + 1));
      return { kind: 'agree', stage, step };
    }
    const [top, votes] = [...counts].sort((a, b) => b[1] - a[1])[0]!;
    if (votes * 2 <= all.length) return { kind: 'undecided', stage, step, digests: all };
    const odd = all.flatMap((d, replica) => (d === top ? [] : [slotOf(this.shape, replica, stage)]));
    return { kind: 'odd', stage, step, odd, digests: all };
  }

  /** Digests waiting for their replicas', and each stage's agreed state, as the store keeps them. */
  durable(): { pending: [string, (string | null)[]][]; agreed: [number, number][] } {
    return { pending: [...this.pending].map(([k, d]) => [k, d.map((x) => x ?? null)]), agreed: [...this.agreed] };
  }

  restore(d: { readonly pending: readonly (readonly [string, readonly (string | null)[]])[]; readonly agreed: readonly (readonly [number, number])[] }): void {
    this.pending.clear();
    for (const [k, digests] of d.pending) this.pending.set(k, digests.map((x) => x ?? undefined));
    this.agreed.clear();
    for (const [stage, step] of d.agreed) this.agreed.set(stage, step);
  }

  /** The newest state (steps completed) a stage's replicas agreed on, or -1. */
  agreedState(stage: number): number {
    return this.agreed.get(stage) ?? -1;
  }
}
