// Two coordinators of one job on a real local etcd, and a node speaking the real protocol over
// gRPC: the standby refuses the node and names the leader; when the leader goes (its lease runs
// out), the standby takes over with the state the leader wrote, and the node re-attaches to it in
// its place.

import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/logging.ts';
import { GRPC_CHANNEL_OPTIONS, loadProto } from '../../common/proto.ts';
import { refusalOf } from '../../common/wire/refusal-wire.ts';
import { CoordinatorServer } from '../../coordinator/coordinator-server.ts';
import { EtcdStore, parseEtcdUrl } from '../../coordinator/store/etcd-store.ts';
import { startLocalEtcd, type LocalEtcd } from '../../coordinator/store/local-etcd.ts';
import { compileJobOptions } from '../../domain/job-options.ts';
import { RefusalReason } from '../../domain/refusal.ts';
import type { CoordinatorClient } from '../../proto/generated/ftrain/v1/Coordinator.ts';
import type { RegisterRequest } from '../../proto/generated/ftrain/v1/RegisterRequest.ts';
import { runCli, SMALL_MODEL, startCli } from '../support/cli.ts';

const LEASE_MS = 2000;
const job = compileJobOptions({ nodes: 2, steps: 4, leaseMs: 3000, heartbeatMs: 100 });
const logger = createLogger({ name: 'ha-test', level: process.env.HA_LOG ?? 'silent' });

let etcd: LocalEtcd;
beforeAll(async () => {
  etcd = await startLocalEtcd();
});
afterAll(async () => {
  await etcd?.stop();
});

function coordinator(id: string, jobName: string): { server: CoordinatorServer; store: EtcdStore; roles: string[] } {
  const store = new EtcdStore({ endpoints: parseEtcdUrl(etcd.url), job: jobName });
  const server = new CoordinatorServer({ job, dataSha256: 'x'.repeat(64), listen: '127.0.0.1:0', logger, ha: { store, id, advertise: '127.0.0.1:0', leaseMs: LEASE_MS } });
  const roles: string[] = [];
  server.on('role', (r) => roles.push(r.leading ? `lead:${r.term}:${r.tookOver}` : `standby:${r.leader?.id ?? '-'}`));
  return { server, store, roles };
}

function client(port: number): CoordinatorClient {
  return new (loadProto().ftrain.v1.Coordinator)(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), GRPC_CHANNEL_OPTIONS);
}

function register(c: CoordinatorClient, extra: Partial<RegisterRequest> = {}): Promise<grpc.ServiceError | null> {
  return new Promise((resolve) =>
    c.Register({ nodeId: 'n1', address: '127.0.0.1:9', pid: 1, hostname: 'h', snapshotStage: -1, snapshotSteps: [], smpAddress: '', ...extra }, { deadline: Date.now() + 3000 }, (err) => resolve(err)),
  );
}

async function until(check: () => boolean, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Date.now() - t0;
}

describe('coordinator leader and standby', () => {
  it('refuses nodes on the standby, naming the leader; takes over with the leader\'s state when it goes; the node re-attaches in its place', async () => {
    const a = coordinator('c1', `ha-${process.pid}-1`);
    const b = coordinator('c2', `ha-${process.pid}-1`);
    const clients: CoordinatorClient[] = [];
    try {
      const portA = await a.server.start();
      await until(() => a.server.leads, 5000);
      const portB = await b.server.start();
      await until(() => b.server.leader?.id === 'c1', 5000);
      expect(b.server.leads).toBe(false);

      // The standby turns the node away and says where the leader is.
      const cb = client(portB);
      clients.push(cb);
      const refused = await register(cb);
      expect(refused?.code).toBe(grpc.status.UNAVAILABLE);
      const refusal = refusalOf(refused);
      expect(refusal?.reason).toBe(RefusalReason.notLeader);
      expect(refusal?.leaderAddress).toBe(`127.0.0.1:${portA}`);
      expect(refusal?.message).toMatch(/standby: coordinator c1 at 127\.0\.0\.1:\d+ leads \(term \d+\)/);

      // The leader takes the node, and its command stream.
      const ca = client(portA);
      clients.push(ca);
      expect(await register(ca)).toBeNull();
      const streamA = ca.Commands({ nodeId: 'n1' });
      let streamAEnded = false;
      streamA.on('error', () => (streamAEnded = true));
      streamA.on('end', () => (streamAEnded = true));
      streamA.on('data', () => {});
      await until(() => a.server.status().nodes.some((n) => n.nodeId === 'n1'), 3000);

      // The leader's process goes: it stops renewing its lease. The standby leads within the lease.
      const t0 = Date.now();
      await a.server.close();
      await a.store.close();
      await until(() => b.server.leads, LEASE_MS * 3);
      const takeoverMs = Date.now() - t0;
      expect(takeoverMs).toBeLessThan(LEASE_MS * 3);
      expect(b.roles.at(-1)).toMatch(/^lead:\d+:true$/);
      await until(() => streamAEnded, 3000);

      // The new leader knows the node from the old one's state; a plain registration is refused
      // as a duplicate, a re-attachment is taken, and the node keeps its state.
      const before = b.server.status().nodes.find((n) => n.nodeId === 'n1');
      expect(before?.state).toBe('registered');
      expect(refusalOf(await register(cb))?.reason).toBe(RefusalReason.duplicate);
      expect(await register(cb, { reattach: true })).toBeNull();
      const streamB = cb.Commands({ nodeId: 'n1' });
      streamB.on('data', () => {});
      streamB.on('error', () => {});
      const beat = await new Promise<grpc.ServiceError | null>((resolve) => cb.Heartbeat({ nodeId: 'n1' }, { deadline: Date.now() + 3000 }, (err) => resolve(err)));
      expect(beat).toBeNull();
      // A node at another address cannot re-attach under its id.
      expect(refusalOf(await register(cb, { reattach: true, address: '127.0.0.1:10' }))?.reason).toBe(RefusalReason.duplicate);
      streamB.cancel();
    } finally {
      for (const c of clients) c.close();
      await b.server.close();
      await b.store.close();
      await a.server.close().catch(() => {});
      await a.store.close();
    }
  });
});

// The acceptance runs: `ftrain run --ha`, 4 stages on the cpu backend, against the same job with
// one coordinator and no failure. Each run is a real etcd, two coordinator processes and four
// node processes.
describe('ftrain run --ha', () => {
  const JOB = ['--nodes', '4', '--steps', '16', '--backend', 'cpu', '--no-dashboard', ...SMALL_MODEL];
  let cleanDigest: string;

  beforeAll(async () => {
    const clean = await runCli(['run', ...JOB]);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    cleanDigest = /weights sha256 ([0-9a-f]{64})/.exec(clean.stdout)![1]!;
  });

  it('goes on when the leader is SIGKILLed at step 6: a standby leads within 5 s, and the run ends with the clean run\'s weights', async () => {
    const run = startCli(['run', '--ha', ...JOB, '--inject', '6:coordinator:kill']);
    const killed = await run.waitForLine(/injecting coordinator kill: SIGKILL to the leader (coord-\d)/);
    const took = await run.waitForLine(/\[(coord-\d)\] LEADING: coordinator coord-\d took over the run/);
    expect(took.match[1]).not.toBe(killed.match[1]);
    expect(took.atMs - killed.atMs).toBeLessThan(5000);
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/finished: training complete/);
    // The new leader's figures count from where it took over, and say so.
    expect(r.stdout).toMatch(/steps 16, loss \d+\.\d{4} -> \d+\.\d{4} \(steps from \d+ on\)/);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(cleanDigest);
  });

  it('goes on when the leader is SIGKILLed during a recovery: the new leader recovers again in a new epoch, and the weights are the clean run\'s', async () => {
    const run = startCli(['run', '--ha', ...JOB, '--inject', '6:1:worker-kill,6:coordinator:kill-in-recovery']);
    await run.waitForLine(/RECOVERING: stage 1 \(node-1\) failed/);
    const killed = await run.waitForLine(/injecting coordinator kill: SIGKILL to the leader (coord-\d) .*during the recovery/);
    const took = await run.waitForLine(/\[(coord-\d)\] LEADING: coordinator coord-\d took over the run/);
    expect(took.match[1]).not.toBe(killed.match[1]);
    // The killed coordinator is started again, and stands by.
    await run.waitForLine(new RegExp(`\\[${killed.match[1]}\\] standby: coordinator ${took.match[1]} at`));
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/recovered stage 1 by local-snapshot of step \d+ .*0 step\(s\) lost/);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(cleanDigest);
  });

  it('fences a frozen leader that wakes after a standby took over: it steps down, and the weights are the clean run\'s', async () => {
    const run = startCli(['run', '--ha', ...JOB, '--inject', '6:coordinator:freeze']);
    const frozen = await run.waitForLine(/injecting coordinator freeze: SIGSTOP to the leader (coord-\d)/);
    const took = await run.waitForLine(/\[(coord-\d)\] LEADING: coordinator coord-\d took over the run/);
    expect(took.match[1]).not.toBe(frozen.match[1]);
    expect(took.atMs - frozen.atMs).toBeLessThan(5000);
    // Woken, the old leader finds another leading and stands by.
    await run.waitForLine(new RegExp(`\\[${frozen.match[1]}\\] standby: coordinator ${took.match[1]} at 127\\.0\\.0\\.1:\\d+ leads`));
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(cleanDigest);
  });

  it('goes on when the leader is cut off from etcd but not from its nodes: they go to the new leader, and the old one stands by once healed', async () => {
    // Long enough that the partition (10 s) heals before the run ends: the healed leader must be seen to stand by.
    const job = ['--nodes', '4', '--steps', '40', '--backend', 'cpu', '--no-dashboard', ...SMALL_MODEL];
    const clean = await runCli(['run', ...job]);
    expect(clean.code, clean.stdout + clean.stderr).toBe(0);
    const run = startCli(['run', '--ha', ...job, '--inject', '6:coordinator:partition']);
    const cut = await run.waitForLine(/injecting coordinator partition: the leader (coord-\d) cut off from etcd/);
    const took = await run.waitForLine(/\[(coord-\d)\] LEADING: coordinator coord-\d took over the run/);
    expect(took.match[1]).not.toBe(cut.match[1]);
    // Healed, it finds another leads (its leader key is gone, or its next write is fenced): it stands by.
    await run.waitForLine(new RegExp(`\\[${cut.match[1]}\\] standby: coordinator ${took.match[1]} at`));
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(/weights sha256 ([0-9a-f]{64})/.exec(clean.stdout)?.[1]);
  });

  it('goes on untouched when one of 3 etcd members is killed mid-run', async () => {
    const run = startCli(['run', '--ha', '--etcd-members', '3', ...JOB, '--inject', '6:etcd:kill']);
    await run.waitForLine(/injecting etcd kill: SIGKILL to etcd member etcd-0 at step 6 \(2 of 3 left\)/);
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // No takeover, no recovery: the same leader to the end.
    expect(r.stdout.match(/LEADING:/g)).toHaveLength(1);
    expect(r.stdout).not.toMatch(/RECOVERING/);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(cleanDigest);
  });

  it('trains on while every etcd member is stopped for 10 s, says the store is unreachable, then recovers; the weights are the clean run\'s', async () => {
    const run = startCli(['run', '--ha', ...JOB, '--inject', '2:etcd:stop']);
    const stopped = await run.waitForLine(/injecting etcd stop: SIGSTOP to every etcd member at step 2/);
    const unreachable = await run.waitForLine(/WARNING: .*cannot be reached.*training goes on/);
    const resumed = await run.waitForLine(/etcd resumed: SIGCONT to every member/);
    const r = await run.result;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Steps completed while the store was stopped.
    const during = r.stdout.slice(r.stdout.indexOf(stopped.line), r.stdout.indexOf(resumed.line)).match(/^step \d+\//gm) ?? [];
    expect(during.length).toBeGreaterThan(0);
    // No new snapshot interval is decided while the store cannot hold it (a new leader would not know it).
    expect(r.stdout.slice(r.stdout.indexOf(unreachable.line), r.stdout.indexOf(resumed.line))).not.toMatch(/^snapshots every/m);
    expect(/weights sha256 ([0-9a-f]{64})/.exec(r.stdout)?.[1]).toBe(cleanDigest);
  });

  it('refuses a coordinator injection without --ha, saying what it needs', async () => {
    const r = await runCli(['run', ...JOB, '--inject', '6:coordinator:kill']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--inject: STEP:coordinator:KIND and STEP:etcd:kill\|stop need --ha/);
  });
});
