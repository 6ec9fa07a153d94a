// `ftrain chaos --ha`: finding the coordinators and etcd members in the job's process group,
// choosing what an event hits, and when it counts as recovered.

import { describe, expect, it } from 'vitest';
import { ChaosKind } from '../../chaos/chaos-schedule.ts';
import { haFigures, haProcesses, haRecovered, haTarget, haUnready } from '../../chaos/ha-chaos.ts';
import { spawn } from 'node:child_process';
import { descendantProcesses, type GroupProcess } from '../../chaos/process-control.ts';

const coordinator = (pid: number, id: string, port: number, state = 'S'): GroupProcess => ({
  pid,
  state,
  argv: ['/usr/bin/node', '/app/bin/ftrain.js', 'coordinator', '--job-json', '/dev/shm/j.json', '--listen', `127.0.0.1:${port}`, '--store', 'etcd://127.0.0.1:2379', '--coordinator-id', id],
});
const etcd = (pid: number, name: string, port: number, state = 'S'): GroupProcess => ({
  pid,
  state,
  argv: ['etcd', '--name', name, '--data-dir', `/dev/shm/e/${name}`, '--listen-client-urls', `http://127.0.0.1:${port}`],
});
const GROUP: GroupProcess[] = [
  { pid: 10, state: 'S', argv: ['/usr/bin/node', '/app/bin/ftrain.js', 'run', '--ha'] },
  coordinator(12, 'coord-2', 7002),
  coordinator(11, 'coord-1', 7001),
  etcd(22, 'etcd-1', 2381),
  etcd(21, 'etcd-0', 2379),
  etcd(23, 'etcd-2', 2383),
  { pid: 30, state: 'S', argv: ['/usr/bin/node', '/app/bin/ftrain.js', 'node', '--coordinator', '127.0.0.1:7001,127.0.0.1:7002'] },
];

describe('chaos --ha', () => {
  it('finds the coordinators and etcd members of the group by their command lines, not those stopped or exited', () => {
    const ha = haProcesses(GROUP);
    expect(ha.coordinators).toEqual([
      { name: 'coord-1', pid: 11, address: '127.0.0.1:7001' },
      { name: 'coord-2', pid: 12, address: '127.0.0.1:7002' },
    ]);
    expect(ha.etcd.map((m) => [m.name, m.pid, m.address])).toEqual([
      ['etcd-0', 21, '127.0.0.1:2379'],
      ['etcd-1', 22, '127.0.0.1:2381'],
      ['etcd-2', 23, '127.0.0.1:2383'],
    ]);
    const frozen = haProcesses([coordinator(11, 'coord-1', 7001, 'T'), coordinator(12, 'coord-2', 7002), etcd(21, 'etcd-0', 2379, 'Z')]);
    expect(frozen.coordinators.map((c) => c.name)).toEqual(['coord-2']);
    expect(frozen.etcd).toEqual([]);
  });

  it('hits the leader (the coordinator serving the address that answers Status), and an etcd member by the draw', () => {
    const ha = haProcesses(GROUP);
    expect(haTarget(ChaosKind.coordinatorKill, ha, '127.0.0.1:7002', () => 0)).toEqual({ ok: true, name: 'coord-2', signals: [{ role: 'coordinator', pid: 12, signal: 'SIGKILL' }] });
    expect(haTarget(ChaosKind.coordinatorFreeze, ha, '127.0.0.1:7001', () => 0)).toEqual({ ok: true, name: 'coord-1', signals: [{ role: 'coordinator', pid: 11, signal: 'SIGSTOP' }] });
    expect(haTarget(ChaosKind.coordinatorKill, ha, '127.0.0.1:9999', () => 0)).toEqual({ ok: false, reason: "no running coordinator process serves the leader's address 127.0.0.1:9999" });
    expect(haTarget(ChaosKind.etcdKill, ha, '', () => 0.99)).toEqual({ ok: true, name: 'etcd-2', signals: [{ role: 'etcd', pid: 23, signal: 'SIGKILL' }] });
    expect(haTarget(ChaosKind.etcdKill, ha, '', () => 0.4).ok && haTarget(ChaosKind.etcdKill, ha, '', () => 0.4)).toMatchObject({ name: 'etcd-1' });
    expect(haTarget(ChaosKind.workerKill, ha, '', () => 0).ok).toBe(false);
  });

  it('waits for a standby before a coordinator event and for every etcd member before an etcd kill', () => {
    const ha = haProcesses(GROUP);
    expect(haUnready(ChaosKind.coordinatorKill, ha, 1)).toBeNull();
    expect(haUnready(ChaosKind.coordinatorFreeze, ha, 0)).toBe('no standby coordinator is ready (2 coordinator process(es) run)');
    expect(haUnready(ChaosKind.etcdKill, ha, 0)).toBeNull();
    expect(haUnready(ChaosKind.etcdKill, haProcesses(GROUP.filter((p) => p.pid !== 22)), 1)).toBe('2 of 3 etcd members run');
  });

  it('counts a coordinator event recovered once another leader trains past the step it was fired at; an etcd kill once training goes on', () => {
    const training = (completedSteps: number, term: number) => ({ phase: 'training', completedSteps, term });
    expect(haRecovered(ChaosKind.coordinatorKill, training(11, 9), 7, 10)).toBe(true);
    // The same leader (its term), or no step past the event: not yet.
    expect(haRecovered(ChaosKind.coordinatorKill, training(11, 7), 7, 10)).toBe(false);
    expect(haRecovered(ChaosKind.coordinatorKill, training(10, 9), 7, 10)).toBe(false);
    expect(haRecovered(ChaosKind.coordinatorFreeze, { phase: 'recovering', completedSteps: 12, term: 9 }, 7, 10)).toBe(false);
    expect(haRecovered(ChaosKind.etcdKill, training(11, 7), 7, 10)).toBe(true);
    expect(haFigures(ChaosKind.coordinatorKill, 1000, 3100, 4500)).toEqual({ detectionMs: 2100, recoveryMs: 3500, handoverMs: null, lostSteps: 0, method: 'takeover', failureKind: 'coordinator-kill' });
    expect(haFigures(ChaosKind.etcdKill, 1000, null, 1800)).toMatchObject({ detectionMs: null, recoveryMs: 800, method: 'etcd-quorum' });
  });

  it.runIf(process.platform === 'linux')('finds the processes descended from one, in a group of their own too', async () => {
    const child = spawn('sh', ['-c', 'sleep 30 & wait'], { detached: true, stdio: 'ignore' });
    try {
      let found: GroupProcess[] = [];
      for (let i = 0; i < 50 && !found.some((p) => p.argv[0] === 'sleep'); i++) {
        await new Promise((r) => setTimeout(r, 20));
        found = descendantProcesses(process.pid);
      }
      expect(found.map((p) => p.pid)).toContain(child.pid);
      expect(found.find((p) => p.argv[0] === 'sleep')?.argv).toEqual(['sleep', '30']);
    } finally {
      process.kill(-child.pid!, 'SIGKILL');
    }
  });
});
