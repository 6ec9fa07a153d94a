// Which coordinator a node's reports go to: a standby's NOT_LEADER is followed, an unreachable
// coordinator gives way to the next; reports that overlap and fail at a coordinator already left
// move nothing more.

import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { LeaderFollower } from '../../common/leader-follower.ts';
import { refusalStatus } from '../../common/wire/refusal-wire.ts';

const timedOut = Object.assign(new Error('deadline'), { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded', metadata: new grpc.Metadata() }) as grpc.ServiceError;

describe('LeaderFollower', () => {
  it('moves on once for reports in flight to a coordinator that stopped answering, however many fail there', () => {
    const f = new LeaderFollower('a:1,b:2');
    // Two reports went to a:1 (frozen); each fails at its deadline.
    const sent = [f.address, f.address];
    expect(sent).toEqual(['a:1', 'a:1']);
    for (const at of sent) expect(f.observe(timedOut, at)).toBe(true);
    expect(f.address).toBe('b:2');
    // Without saying where they went, each failure steps on: back to the frozen one.
    const g = new LeaderFollower('a:1,b:2');
    g.observe(timedOut);
    g.observe(timedOut);
    expect(g.address).toBe('a:1');
  });

  it('follows the leader a standby names, and stays with one coordinator', () => {
    const f = new LeaderFollower('a:1,b:2');
    expect(f.observe(refusalStatus({ reason: 'not-leader', message: 'c:3 leads', leaderAddress: 'c:3', leaderTerm: 4 }), 'a:1')).toBe(true);
    expect(f.address).toBe('c:3');
    const one = new LeaderFollower('a:1');
    expect(one.observe(timedOut, 'a:1')).toBe(false);
    expect(one.address).toBe('a:1');
  });
});
