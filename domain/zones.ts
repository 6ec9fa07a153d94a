// Failure domains (`ftrain node --zone Z`): spot capacity is reclaimed by zone and by instance
// type, not one machine at a time. Placement keeps a stage's replicas in different zones and
// spreads each snapshot's erasure shards so that a whole zone lost takes at most m of them,
// whenever the nodes allow (domain/erasure-protection.ts placeShards, coordinator placement).

import { OptionError } from './errors.ts';

/** What a zone label may hold. */
export const ZONE_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;

/** `--zone Z`: a label, or '' when not given. */
export function parseZone(field: string, raw: unknown): string {
  if (raw === undefined || raw === null) return '';
  const zone = String(raw).trim();
  if (!ZONE_PATTERN.test(zone)) throw new OptionError(field, `must be 1 to 64 letters, digits, '.', '_' or '-', got "${String(raw)}"`);
  return zone;
}

/** The zone the local launcher (`ftrain run --zones N`) gives its i-th node: z0, z1, ... in turn. */
export function localZone(index: number, zones: number): string {
  return zones > 0 ? `z${index % zones}` : '';
}

/** What placement needs of a node: its zone ('' when none was given). */
export interface Zoned {
  readonly zone: string;
}

/**
 * The nodes of the stage slots (replica * stages + stage, domain/replica-slots.ts), in slot order,
 * and the spares: taken in the order given, except that a slot skips a node in a zone one of its
 * stage's replicas already has while a node of another zone is left. `together` lists the slots
 * that could not be kept apart (not enough zones or nodes); without zones nothing is moved.
 */
export function placeSlots<T extends Zoned>(candidates: readonly T[], shape: { readonly stages: number; readonly replicas: number }): { placed: T[]; spares: T[]; together: number[] } {
  const slots = shape.stages * shape.replicas;
  if (shape.replicas === 1 || candidates.every((n) => n.zone === '')) return { placed: candidates.slice(0, slots), spares: candidates.slice(slots), together: [] };
  const free = [...candidates];
  const placed: T[] = [];
  const together: number[] = [];
  for (let slot = 0; slot < slots; slot++) {
    const stage = slot % shape.stages;
    const taken = new Set(placed.filter((_, s) => s % shape.stages === stage).map((n) => n.zone));
    let at = free.findIndex((n) => n.zone === '' || !taken.has(n.zone));
    if (at < 0) {
      at = 0;
      together.push(slot);
    }
    placed.push(free.splice(at, 1)[0]!);
  }
  return { placed, spares: free, together };
}

/** The node to take over a slot: the first in a zone none of the slot's live replicas is in, else the first. */
export function pickForSlot<T extends Zoned>(candidates: readonly T[], replicaZones: ReadonlySet<string>): T | undefined {
  return candidates.find((n) => n.zone === '' || !replicaZones.has(n.zone)) ?? candidates[0];
}
