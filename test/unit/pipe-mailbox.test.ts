import { describe, expect, it } from 'vitest';
import { PipeMailbox } from '../../worker/pipe-mailbox.ts';

const t = (v: number) => ({ shape: [1], data: Float32Array.of(v) });

describe('PipeMailbox', () => {
  it('delivers tensors put before or after the take, by key', async () => {
    const box = new PipeMailbox();
    box.put('activation', 0, 1, 1, t(1));
    const later = box.take('gradient', 0, 0, 1);
    box.put('gradient', 0, 0, 1, t(2));
    expect((await box.take('activation', 0, 1, 1)).data[0]).toBe(1);
    expect((await later).data[0]).toBe(2);
    expect(box.pending).toBe(0);
  });

  it('keeps the hops of one micro-batch apart (a stage visited twice by an out-of-order route)', async () => {
    const box = new PipeMailbox();
    box.put('activation', 0, 1, 3, t(3));
    box.put('activation', 0, 1, 1, t(1));
    expect((await box.take('activation', 0, 1, 1)).data[0]).toBe(1);
    expect((await box.take('activation', 0, 1, 3)).data[0]).toBe(3);
  });

  it('refuses a duplicate', () => {
    const box = new PipeMailbox();
    box.put('activation', 3, 0, 1, t(1));
    expect(() => box.put('activation', 3, 0, 1, t(1))).toThrow(/duplicate/);
  });

  it('fails pending and future takes once broken', async () => {
    const box = new PipeMailbox();
    const pending = box.take('activation', 0, 0, 1);
    box.fail(new Error('peer gone'));
    await expect(pending).rejects.toThrow('peer gone');
    await expect(box.take('gradient', 0, 0, 1)).rejects.toThrow('peer gone');
  });
});
