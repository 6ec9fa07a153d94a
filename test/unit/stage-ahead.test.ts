// A successor's build ahead starts once (as the worker starts), and never
// after its first assignment came: that assignment built its own stage, and a second one would
// hold the stage's memory twice. (Builds themselves run in test/integration/recovery.test.ts.)

import { describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.ts';
import type { ReceivedAssign } from '../../domain/commands.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { StageAhead } from '../../worker/stage-ahead.ts';
import type { StageSnapshots } from '../../worker/stage-snapshots.ts';

/** Slots that count how often a build looked at them, and hold nothing to build. */
function slots(): { snapshots: StageSnapshots; looked: () => number } {
  let looked = 0;
  const snapshots = {
    rememberedAssignment: () => {
      looked += 1;
      return null;
    },
    held: () => null,
  } as unknown as StageSnapshots;
  return { snapshots, looked: () => looked };
}

const job = compileJobOptions({ nodes: 2, backend: 'cpu' });
const assign = { stage: 1, checkfree: null, dataSha256: '' } as unknown as ReceivedAssign;

describe('a build ahead', () => {
  it('starts once, however often it is asked', async () => {
    const ahead = new StageAhead(createLogger({ name: 'test', level: 'silent' }));
    const { snapshots, looked } = slots();
    ahead.start(snapshots);
    ahead.start(snapshots);
    expect(await ahead.take(assign, job)).toBeNull();
    expect(looked()).toBe(1);
  });

  it('does not start after the first assignment came', async () => {
    const ahead = new StageAhead(createLogger({ name: 'test', level: 'silent' }));
    const { snapshots, looked } = slots();
    expect(await ahead.take(assign, job)).toBeNull();
    ahead.start(snapshots);
    expect(looked()).toBe(0);
  });
});
