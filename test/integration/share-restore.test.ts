// Sharded snapshots (`--replicas`): two replica slots of a stage, holding the same state, each
// snapshot one share of it into their own slot directory (real files, the real writer thread);
// a third stage built empty restores the step from its own share and the other one, fetched from
// a real snapshot manager over gRPC on loopback, and holds the weights and Adam state bit for bit.
// Each replica writes about half the state. A share missing, corrupt, or of another epoch is
// refused, with a message that says which shares of which step and where they were asked for,
// and the stage is left as it was.

import { mkdtempSync, openSync, closeSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CORPUS, loadCorpus, type Corpus } from '../../domain/corpus.ts';
import { compileJobOptions, type JobOptions } from '../../domain/job-options.ts';
import { slotOf } from '../../domain/replica-slots.ts';
import { shareRange } from '../../domain/share-layout.ts';
import { SnapshotSlots, type SnapshotHeader, type SnapshotRecord } from '../../domain/snapshot-slots.ts';
import { SnapshotManager } from '../../snapshot-manager/snapshot-manager.ts';
import { NO_FAULTS, type FaultPoint } from '../../worker/fault-port.ts';
import { ShareGatherError, grpcShareFetch } from '../../worker/share-restore.ts';
import { StageSnapshots, type ShareSources } from '../../worker/stage-snapshots.ts';
import { exportStageState, importStageState, stageStateBytes } from '../../worker/stage-state.ts';
import { StageTrainer } from '../../worker/stage-trainer.ts';
import { tf, useBackend } from '../../worker/tfjs-backend.ts';

const log = pino({ level: 'silent' });
const root = mkdtempSync(join(tmpdir(), 'ftrain-share-restore-'));
const STAGE = 1;
const STEP = 3;
const EPOCH = 1;
const SLOTS = 3;

/** The whole state as bytes, with the scalars a restore sets: what must come back bit for bit. */
function stateOf(t: StageTrainer): { bytes: Buffer; adamT: number; completedSteps: number } {
  return { bytes: Buffer.from(exportStageState(t, 0).buffer), adamT: t.adam.t, completedSteps: t.completedSteps };
}

async function until(what: string, ok: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a stage restored from the shares of its replicas', () => {
  let job: JobOptions;
  let corpus: Corpus;
  let want: { bytes: Buffer; adamT: number; completedSteps: number };
  let wantHeader: SnapshotHeader;
  let wholeBytes = 0;
  const dirOf = (name: string) => join(root, name);
  const smps: SnapshotManager[] = [];
  let served: SnapshotManager;
  const slot0 = () => slotOf(job, 0, STAGE);
  const slot1 = () => slotOf(job, 1, STAGE);
  const live: StageTrainer[] = [];
  const shareBytes: number[] = [];
  const records: SnapshotRecord[] = [];

  /** Snapshots `t` as share `index` of 2 into `dir`, through the worker's writer thread; the sealed record. */
  async function takeShare(t: StageTrainer, dir: string, index: number, epoch: number): Promise<SnapshotRecord> {
    const snaps = new StageSnapshots(dir, SLOTS, NO_FAULTS, log);
    snaps.startWriter(job);
    snaps.setShare(index, 2);
    const at: FaultPoint = { stage: STAGE, replica: index, step: t.completedSteps, job, announce: async () => false };
    snaps.take(t, 0.25, at, epoch, -1);
    await snaps.settle();
    await until('the share to be sealed', () => snaps.slots.find(STEP)?.crc32 !== null && snaps.slots.find(STEP) !== null);
    shareBytes.push(snaps.last.bytes);
    snaps.close();
    return snaps.slots.find(STEP)!;
  }

  async function startSmp(dir: string): Promise<SnapshotManager> {
    const smp = new SnapshotManager(dir, SLOTS, dir, log);
    await smp.start('127.0.0.1:0');
    smps.push(smp);
    return smp;
  }

  const fetch = grpcShareFetch(20_000, 0);
  const from = (...sources: { slot: number; smpAddress: string }[]): ShareSources => ({ sources, fetch });

  /** A trainer of slot 0 built empty ('zeros'), as an assignment that restores builds it (the one before is freed). */
  function emptyStage(): StageTrainer {
    for (const t of live.splice(0)) if (!t.disposed) t.dispose();
    const t = new StageTrainer(job, slot0(), corpus, 'zeros');
    live.push(t);
    return t;
  }

  beforeAll(async () => {
    await useBackend('cpu');
    job = compileJobOptions({ nodes: 2, replicas: 2, microBatches: 2, microBatchSize: 2, seqLen: 16, dModel: 16, heads: 2, seed: 5, backend: 'cpu' });
    corpus = loadCorpus(DEFAULT_CORPUS);
    // Replica 0's stage after three steps: its own weights, moments unlike them and unlike each other.
    const a = new StageTrainer(job, slot0(), corpus, 'initial');
    a.adam.m.forEach((m, i) => m.assign(tf.randomNormal(m.shape, 0, 0.01, 'float32', 100 + i)));
    a.adam.v.forEach((v, i) => v.assign(tf.randomUniform(v.shape, 0, 0.001, 'float32', 200 + i)));
    a.adam.t = STEP;
    a.completedSteps = STEP;
    want = stateOf(a);
    wantHeader = exportStageState(a, 0).header;
    wholeBytes = stageStateBytes(a);
    records.push(await takeShare(a, dirOf('replica0'), 0, EPOCH));
    a.dispose(); // two trainers of one stage cannot live at once in one process (tfjs names the variables)
    // Replica 1's: the same state (the replicas of a stage are bit-identical after every step).
    const b = new StageTrainer(job, slot1(), corpus, 'zeros');
    importStageState(b, { ...wantHeader, stage: b.slot }, want.bytes);
    expect(stateOf(b)).toEqual(want);
    records.push(await takeShare(b, dirOf('replica1'), 1, EPOCH));
    b.dispose();
    served = await startSmp(dirOf('replica1'));
    await until("replica 1's manager to verify its share", () => served.verified >= 1);
  });

  afterAll(() => {
    for (const t of live) if (!t.disposed) t.dispose();
    for (const s of smps) s.close(false);
    rmSync(root, { recursive: true, force: true });
  });

  it('writes about half the state per replica: each share a range of it, the header saying which', () => {
    const ranges = [0, 1].map((i) => shareRange(wholeBytes, i, 2));
    expect(records.map((r) => r.bytes)).toEqual(ranges.map((r) => r.bytes));
    expect(shareBytes).toEqual(ranges.map((r) => r.bytes)); // the figures sent with step reports
    expect(Math.abs(records[0]!.bytes - wholeBytes / 2)).toBeLessThanOrEqual(4);
    expect(records[0]!.bytes + records[1]!.bytes).toBe(wholeBytes);
    expect(records.map((r) => r.header.share)).toEqual([
      { index: 0, count: 2, offset: 0, wholeBytes },
      { index: 1, count: 2, offset: ranges[1]!.offset, wholeBytes },
    ]);
    // The header still describes the whole state's layout, and each share's bytes are its range of it.
    expect(records[0]!.header.tensors.reduce((n, t) => n + t.length * 4, 0)).toBe(wholeBytes);
    const a = new SnapshotSlots(dirOf('replica0'), SLOTS);
    const b = new SnapshotSlots(dirOf('replica1'), SLOTS);
    expect(Buffer.concat([a.read(records[0]!), b.read(records[1]!)]).equals(want.bytes)).toBe(true);
  });

  it("restores its weights and Adam state bit for bit from its own share and its replica's, and keeps only its own share", async () => {
    const c = emptyStage();
    const snaps = new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log);
    expect(snaps.restoresFromShares(STEP, [])).toBe(true);
    expect(snaps.hasCommitted(STEP)).toBe(false); // a torn stage cannot go back to a share alone
    expect(() => snaps.restoreNow(c, STEP)).toThrow(/is share 0 of 2: it is restored with its other shares, not alone/);
    expect(await snaps.restore(c, STEP, from({ slot: slot1(), smpAddress: served.address }))).toBe(true);
    expect(stateOf(c)).toEqual(want);
    expect(c.torn).toBe(false);
    // Nothing assembled was written into the slots: they hold this node's own share, as before.
    expect(snaps.slots.records().map((r) => ({ step: r.step, bytes: r.bytes, share: r.header.share?.index }))).toEqual([{ step: STEP, bytes: records[0]!.bytes, share: 0 }]);
    expect(snaps.held()).toEqual({ stage: slot0(), steps: [STEP] });
    expect(snaps.last).toMatchObject({ step: STEP, bytes: records[0]!.bytes });
    // Its tensors now hold the step as it is: a second restore reads and fetches nothing.
    expect(await snaps.restore(c, STEP, from({ slot: slot1(), smpAddress: '127.0.0.1:1' }))).toBe(false);
    expect(stateOf(c)).toEqual(want);
    c.dispose();
  });

  it('refuses a missing share, saying which of which step and where it was asked, and leaves the stage as it was', async () => {
    const c = emptyStage();
    const snaps = new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log);
    const alone = snaps.restore(c, STEP, null);
    await expect(alone).rejects.toThrow(ShareGatherError);
    await expect(alone).rejects.toThrow(/^cannot restore slot 1 from shares: share\(s\) 1 of 2 of step 3 missing; asked this node's slots \(.*replica0\): share 0$/);
    const unreachable = snaps.restore(c, STEP, from({ slot: slot1(), smpAddress: '127.0.0.1:1' }));
    await expect(unreachable).rejects.toThrow(/share\(s\) 1 of 2 of step 3 missing; asked this node's slots \(.*\): share 0; slot 3 at 127.0.0.1:1: UNAVAILABLE: /);
    // Asked of a manager that does not hold the step (no wait): NOT_FOUND, and the manager's words.
    const notHeld = new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log);
    const empty = await startSmp(dirOf('empty'));
    await expect(notHeld.restore(c, STEP, from({ slot: slot1(), smpAddress: empty.address }))).rejects.toThrow(/slot 3 at 127.0.0.1:\d+: NOT_FOUND: no committed snapshot of stage 3 step 3 here/);
    expect(c.completedSteps).toBe(0);
    expect(c.adam.t).toBe(0);
    c.dispose();
  });

  it("refuses a share of another epoch, leaving out its own share when the source's is newer", async () => {
    // Replica 1's share of the same step, but as another epoch's timeline wrote it.
    const other = new SnapshotSlots(dirOf('other-epoch'), SLOTS);
    const rec = records[1]!;
    const data = new SnapshotSlots(dirOf('replica1'), SLOTS).read(rec);
    other.seal(other.write(0, { ...rec.header, epoch: EPOCH + 1 }, [data]), [data]);
    const smp = await startSmp(dirOf('other-epoch'));
    const c = emptyStage();
    const snaps = new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log);
    await expect(snaps.restore(c, STEP, from({ slot: slot1(), smpAddress: smp.address }))).rejects.toThrow(
      /share\(s\) 0 of 2 of step 3 missing; asked slot 3 at 127.0.0.1:\d+: share 1; this node's own share was taken in epoch 1, a source's in epoch 2: left out as a timeline that was left$/,
    );
    expect(c.completedSteps).toBe(0);
    c.dispose();
  });

  it('refuses a corrupt share, its own or a fetched one, by its crc32', async () => {
    const flip = (dir: string, rec: SnapshotRecord, at: number) => {
      const fd = openSync(new SnapshotSlots(dir, SLOTS).dataFile(rec.slot), 'r+');
      try {
        const b = Buffer.alloc(1);
        readSync(fd, b, 0, 1, at);
        writeSync(fd, Buffer.from([b[0]! ^ 0x20]), 0, 1, at);
      } finally {
        closeSync(fd);
      }
    };
    const c = emptyStage();
    // Its own share.
    flip(dirOf('replica0'), records[0]!, 100);
    const source = from({ slot: slot1(), smpAddress: served.address });
    await expect(new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log).restore(c, STEP, source)).rejects.toThrow(
      /share\(s\) 0 of 2 of step 3 missing; asked this node's slots \(.*\): snapshot of step 3 in slot \d is corrupt: crc32 [0-9a-f]+, record says [0-9a-f]+; slot 3 at .*: share 1$/,
    );
    flip(dirOf('replica0'), records[0]!, 100);
    // The replica's, as its manager serves it (it verified the share before the byte flipped).
    flip(dirOf('replica1'), records[1]!, 200);
    await expect(new StageSnapshots(dirOf('replica0'), SLOTS, NO_FAULTS, log).restore(c, STEP, source)).rejects.toThrow(
      /share\(s\) 1 of 2 of step 3 missing; .*slot 3 at 127.0.0.1:\d+: crc32 [0-9a-f]+ of the bytes fetched, the source sealed [0-9a-f]+$/,
    );
    expect(c.completedSteps).toBe(0);
    c.dispose();
  });
});
