// Where a stage under way hears a Halt: at a boundary between two pieces of its backward pass,
// the event loop gets two turns, so a Halt whose delivery takes a turn more than its socket read
// (grpc-js hands a message over in a later phase of the loop) is heard at that boundary and not
// one piece (0.3-0.6 s under load) later.

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.ts';
import { HaltPoints } from '../../worker/halt-points.ts';
import { HaltedError, PipelineLinks } from '../../worker/pipeline-links.ts';

function points(): { links: PipelineLinks; halts: HaltPoints } {
  const links = new PipelineLinks(createLogger({ name: 'test', level: 'silent' }), 1000);
  return { links, halts: new HaltPoints(links, null) };
}

describe('halt points between pieces', () => {
  it('go on when no halt came', async () => {
    const { halts } = points();
    await expect(halts.betweenPieces()).resolves.toBeUndefined();
  });

  it('hear a halt delivered in the turn after the piece ended', async () => {
    const { links, halts } = points();
    // Read in this turn, handed over in the next one's check phase.
    setImmediate(() => setImmediate(() => links.halt('stage 2 failed')));
    await expect(halts.betweenPieces()).rejects.toBeInstanceOf(HaltedError);
  });

  it('hear a halt that came during the piece', async () => {
    const { halts } = points();
    halts.halt('stage 1 failed', 3);
    await expect(halts.betweenPieces()).rejects.toThrow('halted during a backward pass');
  });
});
