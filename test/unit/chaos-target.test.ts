// Which node an event hits and what it sends: fed hand-made Status node lists.

import { describe, expect, it } from 'vitest';
import { listenAddress } from '../../chaos/chaos-fleet.ts';
import { nodePids, pickTarget, signalPlan } from '../../chaos/chaos-target.ts';
import { parseStatus, type StatusNode } from '../../chaos/coordinator-status.ts';

function node(nodeId: string, over: Partial<StatusNode> = {}): StatusNode {
  const i = Number(nodeId.replace(/\D/g, '')) || 0;
  return { nodeId, state: 'training', stage: i, pid: 1000 + i, smpPid: 2000 + i, agentPid: 3000 + i, hostname: 'here', address: `127.0.0.1:${5000 + i}`, smpAddress: `127.0.0.1:${6000 + i}`, zone: '', ...over };
}

describe('signalPlan', () => {
  const n = node('node-1');

  it('sends each kind its signals, the agent first where it takes part', () => {
    expect(signalPlan('worker-kill', n)).toEqual([{ role: 'worker', pid: 1001, signal: 'SIGKILL' }]);
    expect(signalPlan('smp-kill', n)).toEqual([{ role: 'smp', pid: 2001, signal: 'SIGKILL' }]);
    expect(signalPlan('node-kill', n).map((s) => `${s.role}:${s.signal}`)).toEqual(['agent:SIGKILL', 'smp:SIGKILL', 'worker:SIGKILL']);
    expect(signalPlan('freeze', n).map((s) => `${s.role}:${s.signal}`)).toEqual(['agent:SIGSTOP', 'smp:SIGSTOP', 'worker:SIGSTOP']);
    expect(signalPlan('preempt', n)).toEqual([{ role: 'agent', pid: 3001, signal: 'SIGTERM' }]);
  });

  it('skips unknown pids; a node without an agent takes the preemption notice in its worker', () => {
    const bare = node('node-2', { agentPid: 0 });
    expect(signalPlan('node-kill', bare).map((s) => s.role)).toEqual(['smp', 'worker']);
    expect(signalPlan('preempt', bare)).toEqual([{ role: 'worker', pid: 1002, signal: 'SIGTERM' }]);
    expect(nodePids(bare)).toEqual([1002, 2002]);
  });
});

describe('pickTarget', () => {
  const nodes = [node('node-0'), node('node-1'), node('node-2'), node('node-3'), node('node-4', { state: 'spare', stage: null })];

  it('draws among the nodes that hold a stage, in node-id order', () => {
    const picked = [0, 0.26, 0.5, 0.99].map((u) => pickTarget(nodes, 'node-kill', 'here', () => u));
    expect(picked.map((p) => (p.ok ? p.node.nodeId : p.reason))).toEqual(['node-0', 'node-1', 'node-2', 'node-3']);
  });

  it('never hits a spare, a lost or recovering node, or a node on another machine', () => {
    const mixed = [
      node('node-0', { state: 'lost' }),
      node('node-1', { state: 'recovering' }),
      node('node-2', { hostname: 'elsewhere' }),
      node('node-3'),
      node('node-4', { state: 'spare', stage: null }),
    ];
    for (let u = 0; u < 1; u += 0.1) {
      const p = pickTarget(mixed, 'freeze', 'here', () => u);
      expect(p.ok && p.node.nodeId).toBe('node-3');
    }
  });

  it('says why there is no target', () => {
    expect(pickTarget([node('node-4', { state: 'spare', stage: null })], 'freeze', 'here', () => 0)).toEqual({ ok: false, reason: 'no node holds a stage' });
    const remote = pickTarget([node('node-0', { hostname: 'gpu-7' })], 'freeze', 'here', () => 0);
    expect(remote.ok).toBe(false);
    expect(!remote.ok && remote.reason).toMatch(/no node holding a stage runs on this machine \(here\); their hosts: gpu-7/);
    const noSmp = pickTarget([node('node-0', { smpPid: 0 })], 'smp-kill', 'here', () => 0);
    expect(!noSmp.ok && noSmp.reason).toMatch(/node-0: its snapshot manager pid is unknown/);
  });
});

describe('parseStatus', () => {
  const node = { nodeId: 'node-0', state: 'NODE_STATE_TRAINING', stage: 0, pid: 11, smpPid: 12, agentPid: 13, hostname: 'h', address: 'a:1', smpAddress: 's:1', zone: '' } as const;
  const failure = { step: 4, stage: 1, nodeId: 'node-1', kind: 'node-kill', method: 'RECOVERY_METHOD_ERASURE_REBUILD', detail: 'd', detectMs: -1, detectedAtMs: 5, recoverMs: 9, handoverMs: -1, lostSteps: 0, restoredStep: 4, caughtUpMs: 20 } as const;
  const run = { phase: 'RUN_PHASE_TRAINING' as const, epoch: 2, completedSteps: 17, failure: null, failures: [{ ...failure }] };

  it('types the reply of Coordinator.Status', () => {
    const s = parseStatus({ nodes: [node], run, term: 7 });
    expect(s.term).toBe(7);
    expect(s.nodes[0]).toEqual({ nodeId: 'node-0', state: 'training', stage: 0, pid: 11, smpPid: 12, agentPid: 13, hostname: 'h', address: 'a:1', smpAddress: 's:1', zone: '' });
    expect(s).toMatchObject({ phase: 'training', epoch: 2, completedSteps: 17, failure: null });
    expect(s.failures).toEqual([{ ...failure, method: 'erasure-rebuild', detectMs: null, handoverMs: null }]);
  });

  it('refuses a reply of another shape, naming the field', () => {
    expect(() => parseStatus({ nodes: [{ ...node, state: 'NODE_STATE_ASLEEP' as 'NODE_STATE_LOST' }], run, term: 0 })).toThrow(/Coordinator.Status nodes\[0\].state: must be one of/);
    expect(() => parseStatus({ nodes: [], run: null, term: 0 })).toThrow(/Coordinator.Status run: is missing/);
    expect(() => parseStatus({ nodes: [], run: { ...run, failures: [{ ...failure, nodeId: 7 as unknown as string }] }, term: 0 })).toThrow(/run.failures\[0\].node_id: must be a string/);
  });
});

describe('listenAddress', () => {
  it('keeps replacement nodes on loopback for a local coordinator, on every interface otherwise', () => {
    expect(listenAddress('127.0.0.1:41485')).toBe('127.0.0.1:0');
    expect(listenAddress('localhost:7070')).toBe('127.0.0.1:0');
    expect(listenAddress('[::1]:7070')).toBe('127.0.0.1:0');
    expect(listenAddress('coord.example:7070')).toBe('0.0.0.0:0');
  });
});
