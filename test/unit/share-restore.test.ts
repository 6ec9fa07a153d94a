// Gathering the shares of a step (share-restore.ts), with streams made by hand: every share is
// written at its offset into the whole state; a share of another step or layout, one longer than
// its header says, or one given twice is refused, and the error says which shares of which step
// were missing and where each was asked for.

import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeSnapshotStart } from '../../common/wire/snapshot-manager-wire.ts';
import type { ShareSource } from '../../domain/commands.ts';
import { shareOf, shareRange } from '../../domain/share-layout.ts';
import type { SnapshotHeader, SnapshotRecord, TensorEntry } from '../../domain/snapshot-slots.ts';
import type { SnapshotChunk__Output } from '../../proto/generated/ftrain/v1/SnapshotChunk.ts';
import { ShareGatherError, gatherShares, type ShareFetch, type ShareGather } from '../../worker/share-restore.ts';

const layout: TensorEntry[] = [
  { name: 'w', shape: [5], offset: 0, length: 5 },
  { name: 'b', shape: [3], offset: 20, length: 3 },
];
const WHOLE = 32;
const whole = Uint8Array.from({ length: WHOLE }, (_, i) => (i * 7 + 3) & 0xff);
const STEP = 7;
const COUNT = 3;

function headerOf(slot: number, index: number, over: Partial<SnapshotHeader> = {}): SnapshotHeader {
  return { stage: slot, step: STEP, tensors: layout, scalars: { adamT: STEP }, epoch: 2, share: shareOf(WHOLE, index, COUNT), ...over };
}

function bytesOf(index: number): Uint8Array {
  const r = shareRange(WHOLE, index, COUNT);
  return whole.subarray(r.offset, r.offset + r.bytes);
}

/** The chunks a snapshot manager would send for a share: the header, then the bytes in two pieces. */
function streamOf(header: SnapshotHeader, data: Uint8Array, announced = data.length): SnapshotChunk__Output[] {
  const start = { ...encodeSnapshotStart(header, crc32(data), announced), data: Buffer.alloc(0) } as unknown as SnapshotChunk__Output;
  const half = Math.floor(data.length / 2);
  return [start, { data: Buffer.from(data.subarray(0, half)) } as SnapshotChunk__Output, { data: Buffer.from(data.subarray(half)) } as SnapshotChunk__Output];
}

/** Sources served from a table: address -> the chunks it sends. */
function fetchFrom(table: Record<string, SnapshotChunk__Output[]>): ShareFetch {
  return (source) => {
    const chunks = table[source.smpAddress] ?? [];
    return {
      cancel: () => undefined,
      async *[Symbol.asyncIterator]() {
        for (const c of chunks) yield c;
      },
    };
  };
}

function gather(sources: ShareSource[], table: Record<string, SnapshotChunk__Output[]>, localIndex: number | null = 0): Promise<{ data: Uint8Array; header: SnapshotHeader }> {
  const local: SnapshotRecord | null = localIndex === null ? null : { slot: 0, step: STEP, bytes: bytesOf(localIndex).length, crc32: crc32(bytesOf(localIndex)), header: headerOf(1, localIndex) };
  const g: ShareGather = {
    slot: 1,
    step: STEP,
    layout,
    local,
    localDir: '/shm/n1',
    readLocal: async (_record, target) => target.set(bytesOf(localIndex!)),
    sources,
    fetch: fetchFrom(table),
  };
  return gatherShares(g);
}

describe('gatherShares', () => {
  it('writes each share at its offset: the whole state, with the header of a whole snapshot', async () => {
    const got = await gather([{ slot: 3, smpAddress: 'a:1' }, { slot: 5, smpAddress: 'b:1' }], { 'a:1': streamOf(headerOf(3, 1), bytesOf(1)), 'b:1': streamOf(headerOf(5, 2), bytesOf(2)) });
    expect(Buffer.from(got.data).equals(Buffer.from(whole))).toBe(true);
    expect(got.header).toEqual({ stage: 1, step: STEP, tensors: layout, scalars: { adamT: STEP }, epoch: 2 });
    // Without a local share: all from sources.
    const remote = await gather(
      [{ slot: 3, smpAddress: 'a:1' }, { slot: 5, smpAddress: 'b:1' }, { slot: 7, smpAddress: 'c:1' }],
      { 'a:1': streamOf(headerOf(3, 1), bytesOf(1)), 'b:1': streamOf(headerOf(5, 2), bytesOf(2)), 'c:1': streamOf(headerOf(7, 0), bytesOf(0)) },
      null,
    );
    expect(Buffer.from(remote.data).equals(Buffer.from(whole))).toBe(true);
  });

  it('refuses a share given twice, even when every index came', async () => {
    const twice = gather(
      [{ slot: 3, smpAddress: 'a:1' }, { slot: 5, smpAddress: 'b:1' }, { slot: 7, smpAddress: 'c:1' }],
      { 'a:1': streamOf(headerOf(3, 1), bytesOf(1)), 'b:1': streamOf(headerOf(5, 2), bytesOf(2)), 'c:1': streamOf(headerOf(7, 1), bytesOf(1)) },
    );
    await expect(twice).rejects.toThrow(ShareGatherError);
    await expect(twice).rejects.toThrow(/^cannot restore slot 1 from shares: the shares of step 7 did not come exactly once \(share 1 came from both slot 3 at a:1 and slot 7 at c:1\); asked .*slot 7 at c:1: is share 1, which slot 3 at a:1 gives too$/);
  });

  it('refuses a share of another step, another layout, another slot, or longer than announced, naming each', async () => {
    const sources = [{ slot: 3, smpAddress: 'a:1' }, { slot: 5, smpAddress: 'b:1' }];
    const good = streamOf(headerOf(5, 2), bytesOf(2));
    const cases: [SnapshotChunk__Output[], RegExp][] = [
      [streamOf(headerOf(3, 1, { step: 8 }), bytesOf(1)), /slot 3 at a:1: is of step 8, not step 7/],
      [streamOf(headerOf(3, 1, { tensors: [{ ...layout[0]!, name: 'x' }, layout[1]!] }), bytesOf(1)), /slot 3 at a:1: describes another tensor layout than the stage's/],
      [streamOf(headerOf(5, 1), bytesOf(1)), /slot 3 at a:1: is the snapshot of slot 5, not slot 3/],
      [streamOf(headerOf(3, 1, { scalars: { adamT: 6 } }), bytesOf(1)), /slot 3 at a:1: has adamT 6, the others 7/],
      [[...streamOf(headerOf(3, 1), bytesOf(1)), { data: Buffer.from([1, 2, 3, 4]) } as SnapshotChunk__Output], /slot 3 at a:1: sends more than the 12 bytes of its range/],
      [streamOf(headerOf(3, 1), bytesOf(1)).slice(0, 2), /slot 3 at a:1: 6 bytes arrived, the header announced 12/],
    ];
    for (const [stream, why] of cases) {
      const failed = gather(sources, { 'a:1': stream, 'b:1': good });
      await expect(failed).rejects.toThrow(/^cannot restore slot 1 from shares: share\(s\) 1 of 3 of step 7 missing; asked this node's slots \(\/shm\/n1\): share 0; /);
      await expect(failed).rejects.toThrow(why);
    }
    const none = gather([], {}, null);
    await expect(none).rejects.toThrow(/^cannot restore slot 1 from shares: no share of step 7 could be used; asked nowhere: this node holds no share of it and the assignment names no source$/);
  });

  it('takes a whole snapshot as the one share of one (a replica that trained alone wrote it), and refuses it beside shares of three', async () => {
    const alone = await gather([{ slot: 3, smpAddress: 'a:1' }], { 'a:1': streamOf(headerOf(3, 0, { share: undefined }), whole) }, null);
    expect(Buffer.from(alone.data).equals(Buffer.from(whole))).toBe(true);
    const mixed = gather([{ slot: 3, smpAddress: 'a:1' }], { 'a:1': streamOf(headerOf(3, 0, { share: undefined }), whole) }, 0);
    await expect(mixed).rejects.toThrow(/slot 3 at a:1: is one of 1 shares, the others of 3|this node's slots \(\/shm\/n1\): is one of 3 shares, the others of 1/);
  });

  it("leaves out this node's own share when a source's is of a newer epoch (the step was trained again after a rollback), and not otherwise", async () => {
    // The replica that trained alone took the step again in epoch 3, whole; this node's share is of epoch 2.
    const newer = await gather([{ slot: 3, smpAddress: 'a:1' }], { 'a:1': streamOf(headerOf(3, 0, { share: undefined, epoch: 3 }), whole) }, 0);
    expect(Buffer.from(newer.data).equals(Buffer.from(whole))).toBe(true);
    expect(newer.header.epoch).toBe(3);
    // Left out, and the newer shares are not all there: both reasons are said.
    const short = gather([{ slot: 3, smpAddress: 'a:1' }], { 'a:1': streamOf(headerOf(3, 1, { epoch: 3 }), bytesOf(1)) }, 0);
    await expect(short).rejects.toThrow(/^cannot restore slot 1 from shares: share\(s\) 0, 2 of 3 of step 7 missing; asked slot 3 at a:1: share 1; this node's own share was taken in epoch 2, a source's in epoch 3: left out as a timeline that was left$/);
    // A source's share of an older epoch than this node's is refused, as before.
    const older = gather([{ slot: 3, smpAddress: 'a:1' }, { slot: 5, smpAddress: 'b:1' }], { 'a:1': streamOf(headerOf(3, 1, { epoch: 1 }), bytesOf(1)), 'b:1': streamOf(headerOf(5, 2), bytesOf(2)) }, 0);
    await expect(older).rejects.toThrow(/share\(s\) 1 of 3 of step 7 missing; .*slot 3 at a:1: was taken in epoch 1, the other shares in epoch 2/);
  });
});
