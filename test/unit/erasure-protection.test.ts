// Erasure protection: the placement rule, the shard store's versioning, and the coordinator's
// recovery of a lost node (worker and snapshot manager) from shards, scripted event by event.

import { describe, expect, it } from 'vitest';
import { compileJobOptions } from '../../domain/job-options.ts';
import { CoordinatorCore, RunPhase, type Action, type StepReportEvent } from '../../coordinator/coordinator-core.ts';
import { autoErasureCode, placeShards, type ProtectionStatus, type ShardHeader } from '../../domain/erasure-protection.ts';
import { ShardStore } from '../../snapshot-manager/shard-store.ts';

const ids = (n: number) => Array.from({ length: n }, (_, i) => ({ nodeId: `n${i}`, address: `smp${i}:1` }));

describe('shard placement', () => {
  it('never places a shard on its owner and spreads shards evenly', () => {
    for (const nodes of [4, 5, 6, 8]) {
      const code = autoErasureCode(nodes)!;
      const owners = new Map(Array.from({ length: nodes }, (_, s) => [s, `n${s}`] as const));
      const { plans, load, degraded } = placeShards(owners, ids(nodes), code);
      expect(degraded).toBe(false);
      for (const [stage, plan] of plans) {
        const holders = plan.holders.map((h) => h.nodeId);
        expect(holders).not.toContain(`n${stage}`);
        expect(new Set(holders).size).toBe(code.dataShards + code.parityShards);
      }
      // Every node owns a stage: each holds exactly k + m shards per version.
      expect(new Set(load.values())).toEqual(new Set([code.dataShards + code.parityShards]));
    }
  });

  it('picks RS(2,1) for 4 nodes, RS(3,2) for 6 and RS(4,2) for 8, and nothing for one node', () => {
    expect(autoErasureCode(4)).toEqual({ dataShards: 2, parityShards: 1 });
    expect(autoErasureCode(6)).toEqual({ dataShards: 3, parityShards: 2 });
    expect(autoErasureCode(8)).toEqual({ dataShards: 4, parityShards: 2 });
    expect(autoErasureCode(1)).toBeNull();
  });

  it('says it is degraded when there are fewer other nodes than shards', () => {
    const owners = new Map([[0, 'n0'], [1, 'n1']]);
    const { plans, degraded } = placeShards(owners, ids(3), { dataShards: 2, parityShards: 1 });
    expect(degraded).toBe(true);
    const holders = plans.get(0)!.holders.map((h) => h.nodeId);
    expect(holders).not.toContain('n0');
    expect(holders).toHaveLength(3);
  });
});

describe('shard store', () => {
  const header = (stage: number, step: number, epoch: number, index: number, commit: number): ShardHeader => ({
    ownerNodeId: 'n9',
    stage,
    step,
    epoch,
    index,
    crc32: 0,
    bytes: 4,
    layout: { dataShards: 2, parityShards: 1, totalBytes: 8, stripeBytes: 4, stripes: 1 },
    snapshot: { stage, step, tensors: [], scalars: {} },
    protectedCommitStep: commit,
  });

  it('frees versions older than the protected commit step, and abandoned timelines', () => {
    const store = new ShardStore();
    store.put(header(1, 5, 0, 0, -1), new Uint8Array(4));
    store.put(header(1, 6, 0, 0, 5), new Uint8Array(4));
    store.put(header(1, 7, 0, 0, 5), new Uint8Array(4));
    expect(store.heldShards).toBe(3);
    store.put(header(1, 8, 0, 0, 7), new Uint8Array(4));
    expect(store.get(1, 5, 0)).toHaveLength(0);
    expect(store.get(1, 6, 0)).toHaveLength(0);
    expect(store.get(1, 7, 0)).toHaveLength(1);
    // Epoch 1 rolled back to step 7: step 8 of epoch 0 is of an abandoned timeline.
    store.put(header(1, 8, 1, 0, 7), new Uint8Array(4));
    expect(store.get(1, 8, 0)).toHaveLength(0);
    expect(store.get(1, 8, 1)).toHaveLength(1);
    expect(store.get(1, 7, 0)).toHaveLength(1);
    expect(store.heldBytes).toBe(8);
  });
});

describe('coordinator: node loss recovered from erasure shards', () => {
  const job = compileJobOptions({ nodes: 3, steps: 20, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, ec: '2,1', inject: '4:1:node-kill' });

  function report(nodeId: string, stage: number, step: number, protection: ProtectionStatus | null, epoch = 0): { type: 'step'; report: StepReportEvent } {
    return {
      type: 'step',
      report: { nodeId, stage, step, loss: 1, gradNorm: 0.5, computeMs: 10, waitMs: 5, stepMs: 15, tokens: 64, epoch, snapshotStep: step + 1, snapshotBytes: 100, protection },
    };
  }

  const status = (stage: number, steps: number[], holders: string[]): ProtectionStatus => ({
    stage,
    versions: steps.map((step) => ({ step, epoch: 0, holders })),
    heldBytes: 50,
    heldShards: 3,
    encodeMs: 2,
    placeMs: 3,
    lastError: null,
  });

  /** Three stages on n0..n2 and a spare n3, every node with a snapshot manager; training under way. */
  function cluster(j = job): { core: CoordinatorCore; assigns: Action[] } {
    const core = new CoordinatorCore(j);
    let assigns: Action[] = [];
    for (const id of ['n0', 'n1', 'n2', 'n3']) {
      core.handle({ type: 'register', nodeId: id, address: `w-${id}:1`, pid: 1, hostname: 'h', smpAddress: `smp-${id}:1` }, 0);
    }
    for (const id of ['n0', 'n1', 'n2', 'n3']) assigns = assigns.concat(core.handle({ type: 'commands-opened', nodeId: id }, 0).actions);
    for (let s = 0; s < 3; s++) core.handle({ type: 'ready', nodeId: `n${s}`, stage: s }, 0);
    expect(core.phase).toBe(RunPhase.training);
    return { core, assigns };
  }

  /** Steps 0..3 done; each stage protected its snapshots after steps 3 and 4 on its plan's holders. */
  function trainedTo4(core: CoordinatorCore): string[][] {
    const holders = [0, 1, 2].map((s) => core.erasure.placement!.plans.get(s)!.holders.map((h) => h.nodeId));
    for (let step = 0; step < 4; step++) {
      for (let s = 2; s >= 0; s--) {
        const prot = step >= 2 ? status(s, [step + 1].filter((x) => x >= 3), holders[s]!) : null;
        expect(core.handle(report(`n${s}`, s, step, prot), 10 + step).reply.ok).toBe(true);
      }
    }
    expect(core.protectedCommitStep).toBe(4);
    return holders;
  }

  it('sends each stage its plan: k + m holders, none the owner', () => {
    const { core, assigns } = cluster();
    expect(core.erasure.code).toEqual({ dataShards: 2, parityShards: 1 });
    for (const a of assigns) {
      if (a.type !== 'send' || a.command.kind !== 'assign') continue;
      const holders = a.command.plan!.holders.map((h) => h.nodeId);
      expect(holders).toHaveLength(3);
      expect(holders).not.toContain(a.nodeId);
      expect(a.command.rebuild).toBeNull();
    }
  });

  it('moves the stage of a lost node to the spare, which rebuilds the protected commit step from shards', () => {
    const { core } = cluster();
    const holders = trainedTo4(core);
    core.handle({ type: 'injection', nodeId: 'n1', stage: 1, step: 4, kind: 'node-kill' }, 100);
    const lost = core.handle({ type: 'commands-closed', nodeId: 'n1' }, 110).actions;
    expect(lost).toContainEqual({ type: 'probe-smp', nodeId: 'n1', address: 'smp-n1:1' });
    // Until the probe answers, no node takes the stage.
    expect(lost.some((a) => a.type === 'stage-assigned')).toBe(false);
    core.handle({ type: 'halted', nodeId: 'n0', stage: 0, epoch: 1, snapshotSteps: [3, 4] }, 120);
    core.handle({ type: 'halted', nodeId: 'n2', stage: 2, epoch: 1, snapshotSteps: [3, 4] }, 120);
    const moved = core.handle({ type: 'smp-probed', nodeId: 'n1', alive: false, detail: 'connection refused' }, 130).actions;
    expect(moved).toContainEqual({ type: 'stage-assigned', stage: 1, nodeId: 'n3', address: 'w-n3:1', pid: 1 });
    const toSpare = moved.find((a) => a.type === 'send' && a.nodeId === 'n3');
    expect(toSpare).toMatchObject({ command: { kind: 'assign', stage: 1, restoreStep: 4, rebuild: { stage: 1, step: 4, epoch: 0, code: { dataShards: 2, parityShards: 1 } } } });
    const rebuild = (toSpare as unknown as { command: { rebuild: { sources: string[] } } }).command.rebuild;
    expect(rebuild.sources).not.toContain('smp-n1:1');
    expect(holders[1]).not.toContain('n1');
    // The new plans leave the lost node out.
    for (const a of moved) {
      if (a.type === 'send' && a.command.kind === 'assign') expect(a.command.plan!.holders.map((h) => h.nodeId)).not.toContain('n1');
    }
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0, epoch: 1 }, 200);
    core.handle({ type: 'ready', nodeId: 'n2', stage: 2, epoch: 1 }, 200);
    const resumed = core.handle({ type: 'ready', nodeId: 'n3', stage: 1, epoch: 1 }, 300).actions;
    expect(resumed).toContainEqual({
      type: 'recovered',
      failure: expect.objectContaining({ stage: 1, kind: 'node-kill', method: 'erasure-rebuild', restoredStep: 4, lostSteps: 0 }),
    });
  });

  it('waits for the worker when the node\'s snapshot manager still answers (a worker crash)', () => {
    const { core } = cluster();
    trainedTo4(core);
    core.handle({ type: 'commands-closed', nodeId: 'n1' }, 110);
    const probed = core.handle({ type: 'smp-probed', nodeId: 'n1', alive: true, detail: 'answered' }, 130).actions;
    expect(probed.some((a) => a.type === 'stage-assigned')).toBe(false);
    core.handle({ type: 'register', nodeId: 'n1', address: 'w-n1:2', pid: 2, hostname: 'h', smpAddress: 'smp-n1:1', snapshots: { stage: 1, steps: [3, 4] } }, 900);
    const back = core.handle({ type: 'commands-opened', nodeId: 'n1' }, 910).actions;
    expect(back).toContainEqual({ type: 'stage-assigned', stage: 1, nodeId: 'n1', address: 'w-n1:2', pid: 2 });
  });

  /** Two stages on n0, n1 and three spares, RS(1,1); each stage protected step 1; then n1 and both holders of stage 1's shards are lost. */
  function lostBeyondParity(checkpointDir: string | null): { core: CoordinatorCore; actions: Action[] } {
    const j = compileJobOptions({ nodes: 2, steps: 20, leaseMs: 1000, heartbeatMs: 100, snapshotEvery: 1, ec: '1,1', ...(checkpointDir ? { checkpointDir, checkpointEvery: 1 } : {}) });
    const core = new CoordinatorCore(j);
    const all = ['n0', 'n1', 'n2', 'n3', 'n4'];
    for (const id of all) core.handle({ type: 'register', nodeId: id, address: `w-${id}:1`, pid: 1, hostname: 'h', smpAddress: `smp-${id}:1` }, 0);
    for (const id of all) core.handle({ type: 'commands-opened', nodeId: id }, 0);
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0, checkpointSteps: [] }, 0);
    core.handle({ type: 'ready', nodeId: 'n1', stage: 1, checkpointSteps: [] }, 0);
    const h0 = core.erasure.placement!.plans.get(0)!.holders.map((h) => h.nodeId);
    const h1 = core.erasure.placement!.plans.get(1)!.holders.map((h) => h.nodeId);
    // Least-loaded first, ties to the nearest after the owner.
    expect(h0).toEqual(['n1', 'n2']);
    expect(h1).toEqual(['n3', 'n4']);
    core.handle(report('n1', 1, 0, status(1, [1], h1)), 10);
    core.handle(report('n0', 0, 0, status(0, [1], h0)), 10);
    expect(core.protectedCommitStep).toBe(1);
    let actions: Action[] = [];
    for (const id of ['n1', 'n3', 'n4']) actions = actions.concat(core.handle({ type: 'commands-closed', nodeId: id }, 100).actions);
    actions = actions.concat(core.handle({ type: 'halted', nodeId: 'n0', stage: 0, epoch: 1, snapshotSteps: [1] }, 120).actions);
    for (const id of ['n1', 'n3', 'n4']) actions = actions.concat(core.handle({ type: 'smp-probed', nodeId: id, alive: false, detail: 'refused' }, 130).actions);
    return { core, actions };
  }

  it('fails with the shard count when fewer than k shards survive and there is no disk checkpoint', () => {
    const { core, actions } = lostBeyondParity(null);
    expect(actions).toContainEqual({ type: 'stage-assigned', stage: 1, nodeId: 'n2', address: 'w-n2:1', pid: 1 });
    const failed = actions.find((a) => a.type === 'run-failed');
    expect(failed).toMatchObject({ failure: { detail: expect.stringMatching(/stage 1 step 1: 0 of the 1 shards needed survive; CheckFree cannot rebuild stage 1 \(the last, with the head\).*; no disk checkpoint to fall back to/) } });
    expect(core.phase).toBe(RunPhase.failed);
    // Nothing was told to restore anything.
    expect(actions.some((a) => a.type === 'send' && a.command.kind === 'assign' && a.command.restoreStep >= 0)).toBe(false);
  });

  it('goes back to step 0 with the initial weights when the disk tier has no checkpoint yet', () => {
    const { core } = lostBeyondParity('/tmp/ftrain-test-ckpt');
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0, epoch: 1, checkpointSteps: [] }, 200);
    const resumed = core.handle({ type: 'ready', nodeId: 'n2', stage: 1, epoch: 1, checkpointSteps: [] }, 300).actions;
    expect(resumed).toContainEqual({ type: 'send', nodeId: 'n0', command: { kind: 'start', fromStep: 0, toStep: 20, restoreCheckpointStep: -1, fromScratch: true } });
    expect(resumed).toContainEqual({ type: 'recovered', failure: expect.objectContaining({ method: 'disk-checkpoint', restoredStep: 0, lostSteps: 1 }) });
    expect(core.losses).toEqual([]);
  });

  it('with too few shards left, falls back to the disk checkpoint, saying why', () => {
    const { core, actions } = lostBeyondParity('/tmp/ftrain-test-ckpt');
    expect(actions.some((a) => a.type === 'run-failed')).toBe(false);
    const assigns = actions.filter((a) => a.type === 'send' && a.command.kind === 'assign');
    expect(assigns).toHaveLength(2);
    for (const a of assigns) expect(a).toMatchObject({ command: { restoreStep: -1, rebuild: null } });
    core.handle({ type: 'ready', nodeId: 'n0', stage: 0, epoch: 1, checkpointSteps: [1] }, 200);
    const resumed = core.handle({ type: 'ready', nodeId: 'n2', stage: 1, epoch: 1, checkpointSteps: [1] }, 300).actions;
    expect(resumed).toContainEqual({ type: 'send', nodeId: 'n2', command: { kind: 'start', fromStep: 1, toStep: 20, restoreCheckpointStep: 1 } });
    expect(resumed).toContainEqual({
      type: 'recovered',
      failure: expect.objectContaining({ stage: 1, method: 'disk-checkpoint', restoredStep: 1, detail: expect.stringContaining('0 of the 1 shards needed survive') }),
    });
  });
});
