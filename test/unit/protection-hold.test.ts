// A recovery holds its node's protection back: no shard is coded or sent while the hold lasts,
// and the hold ends by itself, so a worker that dies holding it does not stop protection.

import { describe, expect, it } from 'vitest';
import { ProtectionHold } from '../../snapshot-manager/protection-hold.ts';
import { MAX_HOLD_MS, decodeConfigure } from '../../common/wire/snapshot-manager-wire.ts';
import { WireError } from '../../common/wire/wire-check.ts';

const passed = (hold: ProtectionHold) => {
  let done = false;
  void hold.pass().then(() => (done = true));
  return () => done;
};

describe('protection hold', () => {
  it('lets protection pass when nothing holds it', async () => {
    const hold = new ProtectionHold();
    const done = passed(hold);
    await new Promise((r) => setImmediate(r));
    expect(done()).toBe(true);
  });

  it('holds until released (-1), and 0 changes nothing', async () => {
    const hold = new ProtectionHold();
    hold.set(60_000);
    const done = passed(hold);
    hold.set(0);
    await new Promise((r) => setTimeout(r, 20));
    expect(done()).toBe(false);
    expect(hold.held).toBe(true);
    hold.set(-1);
    await new Promise((r) => setImmediate(r));
    expect(done()).toBe(true);
    expect(hold.held).toBe(false);
  });

  it('ends by itself after its time', async () => {
    const hold = new ProtectionHold();
    hold.set(30);
    const done = passed(hold);
    await new Promise((r) => setTimeout(r, 5));
    expect(done()).toBe(false);
    await new Promise((r) => setTimeout(r, 60));
    expect(done()).toBe(true);
  });

  it('is asked for in Configure, within bounds', () => {
    const configure = (holdMs: number) => decodeConfigure({ plan: null, protectedCommitStep: -1, holdMs } as never);
    expect(configure(5000).holdMs).toBe(5000);
    expect(configure(-1).holdMs).toBe(-1);
    expect(() => configure(-2)).toThrow(WireError);
    expect(() => configure(MAX_HOLD_MS + 1)).toThrow(/hold_ms/);
  });
});
