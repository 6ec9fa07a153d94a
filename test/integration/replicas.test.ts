// Replicas of the pipeline across real processes: `ftrain run --replicas 2` trains two pipelines
// whose stages sum their gradients with the ring all-reduce over gRPC between their workers.

import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { RunReport } from '../../observability/run-report.ts';
import { SMALL_MODEL, runCli } from '../support/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'ftrain-replicas-'));

async function train(name: string, args: string[]): Promise<RunReport> {
  const report = join(dir, `${name}.json`);
  const res = await runCli(['run', ...args, '--report', report, '--log-file', join(dir, `${name}.log`), '--no-dashboard']);
  expect(res.stderr).toBe('');
  expect(res.code, res.stdout).toBe(0);
  return JSON.parse(readFileSync(report, 'utf8')) as RunReport;
}

/** SMALL_MODEL with its micro-batch count replaced. */
function model(microBatches: number): string[] {
  const args = [...SMALL_MODEL];
  args[args.indexOf('--micro-batches') + 1] = String(microBatches);
  return args;
}

describe('replicas', () => {
  const common = ['--nodes', '2', '--steps', '4', '--seed', '3', '--backend', 'cpu', '--snapshot-every', '1'];
  /** The weights digest of two replicas trained without failures (the first test's run). */
  let clean = '';

  it('two replicas of one micro-batch each train bit for bit what one pipeline of two micro-batches does, every replica ending identical, a lost node of one copied from the other', async () => {
    const a = await train('d2-a', [...common, '--replicas', '2', ...model(1)]);
    const single = await train('d1', [...common, ...model(2)]);
    expect(a.status).toBe('finished');
    expect(a.replicas).toBe(2);
    expect(a.nodes).toHaveLength(4);
    // Replica r trains micro-batch r of each step: two per step, as the single pipeline does.
    expect(a.microBatchesPerStep).toEqual([2, 2, 2, 2]);
    expect(single.microBatchesPerStep).toEqual([2, 2, 2, 2]);
    expect(a.replicaDigests).toEqual([a.weightsDigest, a.weightsDigest]);
    expect(a.weightsDigest).toMatch(/^[0-9a-f]{64}$/);
    clean = a.weightsDigest!;
    // Summing two micro-batches' gradients is one addition, in whichever order the ring adds
    // them: the data-parallel run equals the single pipeline exactly, loss and weights.
    expect(a.losses).toEqual(single.losses);
    expect(a.weightsDigest).toBe(single.weightsDigest);
    expect(single.replicaDigests).toEqual([single.weightsDigest]);
    expect(a.finalLoss!).toBeLessThan(a.initialLoss!);

    // A whole node of replica 1 lost: its stage is copied from the live replica's snapshot, no
    // step is lost, and the run ends with the weights of the run without the loss.
    const killed = await train('d2-node-kill', [...common, '--replicas', '2', ...model(1), '--spares', '1', '--inject', '2:1@1:node-kill']);
    expect(killed.failures.map((f) => [f.stage, f.kind, f.method, f.lostSteps])).toEqual([[3, 'node-kill', 'replica-copy', 0]]);
    // Another run of the same job, through a failure: the same bits.
    expect(killed.weightsDigest).toBe(a.weightsDigest);
    expect(killed.replicaDigests).toEqual([a.weightsDigest, a.weightsDigest]);
    expect(killed.microBatchesPerStep).toEqual([2, 2, 2, 2]);

    // The disk tier with replicas: replica 0 writes each stage's checkpoint, every replica loads it.
    const disk = await train('d2-disk', [...common, '--replicas', '2', ...model(1), '--spares', '1', '--recovery', 'checkpoint', '--checkpoint-every', '2', '--checkpoint-dir', join(dir, 'ck'), '--inject', '3:1@1:node-kill']);
    expect(disk.failures.map((f) => [f.stage, f.method, f.restoredStep])).toEqual([[3, 'disk-checkpoint', 2]]);
    expect(disk.weightsDigest).toBe(a.weightsDigest);
    expect(disk.replicaDigests).toEqual([a.weightsDigest, a.weightsDigest]);
  });

  it('a lost replica stops only itself: the other trains on (keep: both replicas\' micro-batches, bit for bit the run without the loss; shrink: its own only) and the lost one joins by replica-copy', async () => {
    const ten = ['--nodes', '2', '--steps', '12', '--seed', '3', '--backend', 'cpu', '--snapshot-every', '1', '--replicas', '2', ...model(1)];
    const reference = await train('d2-clean12', ten);
    // Replica 1 loses the worker of stage 1 (it restarts beside its snapshot manager), and after
    // it joined, the whole node of stage 0 (a spare takes it): each time replica 0 trains its
    // micro-batches too until it joins. With the all-reduce overlapped with the backward pass,
    // which changes no bit (the reference sums after it).
    const keep = await train('d2-keep', [...ten, '--spares', '1', '--overlap-reduce', 'on', '--inject', '1:1@1:worker-kill,8:0@1:node-kill']);
    expect(keep.failures.map((f) => [f.stage, f.kind, f.method, f.lostSteps]).sort()).toEqual([
      [2, 'node-kill', 'replica-copy', 0],
      [3, 'worker-kill', 'replica-copy', 0],
    ]);
    for (const f of keep.failures) {
      expect(f.trainedOn).toMatchObject({ replica: 1, host: 0 });
      // Replica 0 completed steps while replica 1 was out, then replica 1 joined at a step boundary.
      expect(f.trainedOn!.steps).toBeGreaterThan(0);
      expect(f.trainedOn!.joinedAtStep).toBeLessThan(12);
    }
    expect(keep.microBatchesPerStep).toEqual(Array.from({ length: 12 }, () => 2));
    expect(keep.weightsDigest).toBe(reference.weightsDigest);
    expect(keep.replicaDigests).toEqual([reference.weightsDigest, reference.weightsDigest]);

    // Shrink: while replica 1 is out, each step trains replica 0's micro-batch only.
    const shrink = await train('d2-shrink', [...ten, '--spares', '1', '--on-replica-loss', 'shrink', '--inject', '2:1@1:node-kill']);
    expect(shrink.failures.map((f) => [f.stage, f.kind, f.method, f.lostSteps])).toEqual([[3, 'node-kill', 'replica-copy', 0]]);
    const meanwhile = shrink.failures[0]!.trainedOn!;
    expect(meanwhile).toMatchObject({ replica: 1, host: null });
    expect(meanwhile.steps).toBeGreaterThan(0);
    expect(shrink.microBatchesPerStep.filter((m) => m === 1)).toHaveLength(meanwhile.steps);
    expect(shrink.microBatchesPerStep.filter((m) => m === 2)).toHaveLength(12 - meanwhile.steps);
    expect(shrink.replicaDigests).toEqual([shrink.weightsDigest, shrink.weightsDigest]);
    expect(shrink.weightsDigest).not.toBe(reference.weightsDigest);
  });

  it('loses a whole zone without falling back past the replicas: each lost slot copies the step from the tensors of its replica in another zone', async () => {
    expect(clean).not.toBe('');
    // Six nodes in three zones: each stage's two replicas in two zones, two spares. Snapshots are
    // shared out between the replicas (the default), so a lost slot's own share of the step went
    // with its node; its live replica holds the step whole in its tensors (Worker.FetchState).
    const r = await train('d2-zone-kill', [...common, '--replicas', '2', ...model(1), '--spares', '2', '--zones', '3', '--inject', '2:0:zone-kill']);
    expect(r.snapshotShares).toBe(true);
    expect(r.failures).toHaveLength(2);
    for (const f of r.failures) expect([f.kind, f.method, f.lostSteps]).toEqual(['zone-kill', 'replica-copy', 0]);
    const zoneOf = new Map(r.nodes.map((n) => [n.nodeId, n.zone]));
    const lostZones = new Set(r.failures.map((f) => zoneOf.get(f.nodeId)));
    expect(lostZones.size).toBe(1);
    expect(r.weightsDigest).toBe(clean);
    expect(r.replicaDigests).toEqual([clean, clean]);
  });

  it("catches one replica's silently corrupted weights at the next check and repairs it from the other two", async () => {
    // Three replicas of a one-stage pipeline; a sign flipped in replica 1's weights after step 2,
    // compared after every second step (steps 1, 3, 5).
    const three = ['--nodes', '1', '--replicas', '3', '--steps', '6', '--seed', '3', '--backend', 'cpu', '--snapshot-every', '1', '--check-every', '2', ...model(1)];
    const reference = await train('d3-clean', three);
    expect(reference.replicaDigests).toEqual([reference.weightsDigest, reference.weightsDigest, reference.weightsDigest]);
    const r = await train('d3-corrupt', [...three, '--spares', '1', '--inject', '2:0@1:corrupt']);
    expect(r.failures.map((f) => [f.stage, f.kind, f.method])).toEqual([[1, 'corrupt', 'replica-copy']]);
    // Caught at the first check after it: step 3, within --check-every steps.
    expect(r.failures[0]!.detail).toMatch(/its weights differ from the other replicas of stage 0 after step 3 .*its snapshots after step 2 are not used/);
    expect(r.weightsDigest).toBe(reference.weightsDigest);
    expect(r.replicaDigests).toEqual(reference.replicaDigests);
  });
});
