// Failure domains: a stage's replicas on nodes of different zones, a lost slot taken over in a
// zone its live replicas are not in, and each snapshot's shards spread so that no zone holds more
// than m of them; where the zones do not allow it, placement says which slots or stages.

import { describe, expect, it } from 'vitest';
import { placeShards } from '../../domain/erasure-protection.ts';
import { localZone, parseZone, pickForSlot, placeSlots } from '../../domain/zones.ts';
import { OptionError } from '../../domain/errors.ts';

const nodes = (zones: string[]) => zones.map((zone, i) => ({ nodeId: `n${i}`, address: `a${i}:1`, zone }));

describe('placeSlots', () => {
  it("keeps a stage's replicas in different zones, taking nodes in order otherwise", () => {
    // node-i in zone z(i mod 3), as `ftrain run --zones 3` starts them; 2 replicas x 2 stages + 2 spares.
    const { placed, spares, together } = placeSlots(nodes(['z0', 'z1', 'z2', 'z0', 'z1', 'z2']), { stages: 2, replicas: 2 });
    expect(placed.map((n) => n.nodeId)).toEqual(['n0', 'n1', 'n2', 'n3']);
    expect(spares.map((n) => n.nodeId)).toEqual(['n4', 'n5']);
    expect(together).toEqual([]);
    // Stage 0 on z0 and z2, stage 1 on z1 and z0.
    expect([placed[0]!.zone, placed[2]!.zone]).toEqual(['z0', 'z2']);
    expect([placed[1]!.zone, placed[3]!.zone]).toEqual(['z1', 'z0']);
  });

  it('skips a node whose zone a replica of the stage already has', () => {
    const { placed } = placeSlots(nodes(['a', 'b', 'a', 'b', 'c']), { stages: 2, replicas: 2 });
    // Slot 2 (stage 0, replica 1) cannot be in zone a: it takes n1's next in another zone.
    expect(placed.map((n) => `${n.nodeId}:${n.zone}`)).toEqual(['n0:a', 'n1:b', 'n3:b', 'n2:a']);
  });

  it('says which slots share a zone with a replica when the zones are too few', () => {
    const { placed, together } = placeSlots(nodes(['a', 'a', 'a', 'a']), { stages: 2, replicas: 2 });
    expect(placed).toHaveLength(4);
    expect(together).toEqual([2, 3]);
  });

  it('moves nothing without zones or replicas', () => {
    const plain = nodes(['', '', '', '']);
    expect(placeSlots(plain, { stages: 2, replicas: 2 }).placed).toEqual(plain);
    const one = nodes(['a', 'a', 'b']);
    expect(placeSlots(one, { stages: 2, replicas: 1 })).toEqual({ placed: one.slice(0, 2), spares: one.slice(2), together: [] });
  });
});

describe('pickForSlot', () => {
  it("takes over a slot in a zone its live replicas are not in, else the first node", () => {
    const spares = nodes(['z1', 'z2']);
    expect(pickForSlot(spares, new Set(['z1']))!.nodeId).toBe('n1');
    expect(pickForSlot(spares, new Set(['z1', 'z2']))!.nodeId).toBe('n0');
    expect(pickForSlot([], new Set())).toBeUndefined();
  });
});

describe('placeShards with zones', () => {
  const code = { dataShards: 3, parityShards: 2 };
  const owners = new Map([[0, 'n0']]);

  it('puts at most m shards of a snapshot in one zone, so a lost zone leaves k', () => {
    const all = nodes(['z0', 'z0', 'z0', 'z1', 'z1', 'z2', 'z2']);
    const zoneOf = (id: string) => all.find((n) => n.nodeId === id)!.zone;
    const p = placeShards(owners, all, code, zoneOf);
    const holders = p.plans.get(0)!.holders.map((h) => zoneOf(h.nodeId));
    expect(holders).toHaveLength(5);
    for (const z of ['z0', 'z1', 'z2']) expect(holders.filter((h) => h === z).length).toBeLessThanOrEqual(2);
    expect(p.unspread).toEqual([]);
    // Without zones the same nodes take them in load order: n1 and n2 of z0 among them.
    const plain = placeShards(owners, all, code);
    expect(plain.plans.get(0)!.holders.map((h) => h.nodeId)).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('says which stages it could not spread', () => {
    const all = nodes(['z0', 'z0', 'z0', 'z0', 'z0', 'z1']);
    const zoneOf = (id: string) => all.find((n) => n.nodeId === id)!.zone;
    const p = placeShards(owners, all, code, zoneOf);
    expect(p.plans.get(0)!.holders).toHaveLength(5);
    expect(p.unspread).toEqual([0]);
  });
});

describe('zone labels', () => {
  it('takes letters, digits, dots, dashes and underscores', () => {
    expect(parseZone('--zone', 'us-east-1a')).toBe('us-east-1a');
    expect(parseZone('--zone', undefined)).toBe('');
    for (const bad of ['', 'a b', 'x'.repeat(65), 'zone/1']) expect(() => parseZone('--zone', bad)).toThrow(OptionError);
    expect(localZone(4, 3)).toBe('z1');
    expect(localZone(4, 0)).toBe('');
  });
});
