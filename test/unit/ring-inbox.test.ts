// One epoch's inbox of ring messages from the previous rank: a message is taken once, whether it
// came before or after the all-reduce asked; copies and messages already past are refused; a
// previous rank that left still hands over what it sent; a failure fails every wait.

import { describe, expect, it } from 'vitest';
import { RingInbox, RingRefusedError } from '../../worker/ring-inbox.ts';
import type { RingMessage } from '../../worker/ring-all-reduce.ts';

const msg = (ringStep: number): RingMessage => ({ step: ringStep, chunk: 0, values: Float32Array.of(ringStep) });

describe('ring inbox', () => {
  it('hands each message over once, kept or awaited', async () => {
    const inbox = new RingInbox();
    inbox.put(0, 1, msg(1)); // early: kept
    inbox.begin(0);
    const first = inbox.take(0, 0);
    inbox.put(0, 0, msg(0)); // awaited
    expect((await first).step).toBe(0);
    expect((await inbox.take(0, 1)).step).toBe(1);
    expect(inbox.pending).toBe(0);
  });

  it('refuses a message already taken, one sent twice, and one of an earlier step', () => {
    const inbox = new RingInbox();
    inbox.put(3, 0, msg(0));
    expect(() => inbox.put(3, 0, msg(0))).toThrow(RingRefusedError);
    inbox.begin(3);
    void inbox.take(3, 0);
    expect(() => inbox.put(3, 0, msg(0))).toThrow(/ring message 0 of step 3 is stale/);
    expect(() => inbox.refuseStale(2, 1)).toThrow(RingRefusedError);
    expect(() => inbox.refuseStale(3, 1)).not.toThrow();
    expect(() => inbox.begin(3)).toThrow(RangeError);
  });

  it('drops what is left of earlier steps when a later one begins', () => {
    const inbox = new RingInbox();
    inbox.put(1, 0, msg(0));
    inbox.put(2, 0, msg(0));
    inbox.begin(2);
    expect(inbox.pending).toBe(1);
  });

  it('after the previous rank left, hands over what it sent and fails a wait for more', async () => {
    const inbox = new RingInbox();
    inbox.begin(0);
    const waiting = inbox.take(0, 0);
    const gone = new Error('gone');
    inbox.senderGone(gone);
    await expect(waiting).rejects.toBe(gone);
    inbox.put(0, 0, msg(0));
    expect((await inbox.take(0, 0)).step).toBe(0);
    await expect(inbox.take(0, 1)).rejects.toBe(gone);
  });

  it('fails the wait under way and every later one with the first reason', async () => {
    const inbox = new RingInbox();
    inbox.put(0, 0, msg(0));
    inbox.begin(0);
    const waiting = inbox.take(0, 1);
    const halt = new Error('halt');
    inbox.fail(halt);
    inbox.fail(new Error('later'));
    await expect(waiting).rejects.toBe(halt);
    await expect(inbox.take(0, 0)).rejects.toBe(halt);
    await expect(inbox.failed).rejects.toBe(halt);
    expect(inbox.failedWith).toBe(halt);
  });
});
