// One epoch's inbox of pieces from the previous rank: a piece goes to the all-reduce under way at
// once, or is kept, in the order it came, until the all-reduce of its step begins; pieces of ring
// steps already past are refused; a previous rank that left still hands over what it sent; a
// failure fails every wait.

import { describe, expect, it } from 'vitest';
import type { ReduceChunk } from '../../common/wire/reduce-wire.ts';
import { RingInbox, RingRefusedError, type PieceSink } from '../../worker/ring-inbox.ts';

const piece = (step: number, ringStep: number, chunkIndex = 0): ReduceChunk => ({ epoch: 0, stage: 0, fromReplica: 0, step, bucket: 0, ringStep, ringChunk: 0, chunkIndex, chunkCount: 2, data: new Uint8Array(4) });

/** A sink that notes what it took as "step:ringStep:index" and is at `ringStep`. */
function sink(ringStep = 0): PieceSink & { got: string[]; ringStep: number } {
  const s = {
    got: [] as string[],
    ringStep,
    receive(c: ReduceChunk) {
      s.got.push(`${c.step}:${c.ringStep}:${c.chunkIndex}`);
    },
  };
  return s;
}

describe('ring inbox', () => {
  it('keeps pieces that come before their all-reduce, hands them over in order when it begins, then the rest at once', async () => {
    const inbox = new RingInbox();
    inbox.put(piece(0, 0, 0));
    inbox.put(piece(0, 0, 1));
    inbox.put(piece(1, 0, 0)); // a step further on: kept through step 0's all-reduce
    expect(inbox.pending).toBe(3);
    const s = sink();
    inbox.begin(0, s);
    expect(s.got).toEqual(['0:0:0', '0:0:1']);
    const next = inbox.next();
    inbox.put(piece(0, 1, 0));
    await next;
    expect(s.got).toEqual(['0:0:0', '0:0:1', '0:1:0']);
    inbox.end();
    expect(inbox.pending).toBe(1);
    const s1 = sink();
    inbox.begin(1, s1);
    expect(s1.got).toEqual(['1:0:0']);
    expect(inbox.pending).toBe(0);
  });

  it('refuses a piece of a ring step or step already past, also once the all-reduce ended', () => {
    const inbox = new RingInbox();
    const s = sink(1);
    inbox.begin(3, s);
    expect(() => inbox.put(piece(3, 0))).toThrow(/ring message 0 of step 3 is stale: this replica is at message 1 of step 3/);
    expect(() => inbox.put(piece(2, 1))).toThrow(RingRefusedError);
    inbox.put(piece(3, 1));
    expect(s.got).toEqual(['3:1:0']);
    inbox.end();
    s.ringStep = 2; // done, in a ring of two
    expect(() => inbox.put(piece(3, 1))).toThrow(RingRefusedError);
    expect(() => inbox.begin(3, sink())).toThrow(RangeError);
  });

  it('drops what is left of earlier steps when a later one begins', () => {
    const inbox = new RingInbox();
    inbox.put(piece(1, 0));
    inbox.put(piece(2, 0));
    inbox.begin(2, sink());
    expect(inbox.pending).toBe(0);
    inbox.put(piece(4, 0));
    expect(inbox.pending).toBe(1);
  });

  it('throws from begin and from put what the sink throws', () => {
    const inbox = new RingInbox();
    inbox.put(piece(0, 0));
    const bad: PieceSink = {
      ringStep: 0,
      receive: () => {
        throw new Error('not the next piece');
      },
    };
    expect(() => inbox.begin(0, bad)).toThrow(/not the next piece/);
    const again = new RingInbox();
    again.begin(0, bad);
    expect(() => again.put(piece(0, 0))).toThrow(/not the next piece/);
  });

  it('after the previous rank left, a wait for more fails at once', async () => {
    const inbox = new RingInbox();
    inbox.begin(0, sink());
    const waiting = inbox.next();
    const gone = new Error('gone');
    inbox.senderGone(gone);
    await expect(waiting).rejects.toBe(gone);
    await expect(inbox.next()).rejects.toBe(gone);
  });

  it('fails the wait under way and every later one with the first reason', async () => {
    const inbox = new RingInbox();
    inbox.begin(0, sink());
    const waiting = inbox.next();
    const halt = new Error('halt');
    inbox.fail(halt);
    inbox.fail(new Error('later'));
    await expect(waiting).rejects.toBe(halt);
    await expect(inbox.next()).rejects.toBe(halt);
    await expect(inbox.failed).rejects.toBe(halt);
    expect(inbox.failedWith).toBe(halt);
  });
});
