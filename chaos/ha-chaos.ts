// `ftrain chaos --ha`: the events that hit the coordinators and their store, not a node. The local
// job (`ftrain run --ha`) runs two coordinators and three etcd members; they are found among its
// descendants by their command lines, and its launcher starts again what was killed. Pure: the
// runner hands in the processes and the leader's address.

import { ChaosKind } from './chaos-schedule.ts';
import type { EventFigures } from './chaos-summary.ts';
import type { SignalStep } from './chaos-target.ts';
import type { GroupProcess } from './process-control.ts';

/** A coordinator or etcd member of the local job. */
export interface HaProcess {
  /** The coordinator's id (--coordinator-id) or the member's name (--name). */
  readonly name: string;
  readonly pid: number;
  /** Where it serves: a coordinator's --listen, a member's client URL's host:port. */
  readonly address: string;
}

export interface HaProcesses {
  readonly coordinators: readonly HaProcess[];
  readonly etcd: readonly HaProcess[];
}

/** etcd members `ftrain run --ha` starts for chaos (`--etcd-members 3`). */
export const HA_ETCD_MEMBERS = 3;

function flag(argv: readonly string[], name: string): string | null {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1]! : null;
}

/** The coordinators and etcd members among these processes that run (not stopped, not exited). */
export function haProcesses(procs: readonly GroupProcess[]): HaProcesses {
  const coordinators: HaProcess[] = [];
  const etcd: HaProcess[] = [];
  for (const p of procs) {
    if (p.state === 'Z' || p.state === 'X' || p.state === 'T' || p.state === 't') continue;
    const sub = p.argv.findIndex((a) => a.endsWith('ftrain.js'));
    if (sub >= 0 && p.argv[sub + 1] === 'coordinator') {
      const name = flag(p.argv, '--coordinator-id');
      const address = flag(p.argv, '--listen');
      if (name && address) coordinators.push({ name, pid: p.pid, address });
      continue;
    }
    if (p.argv[0]?.split('/').pop() === 'etcd') {
      const name = flag(p.argv, '--name');
      const url = flag(p.argv, '--listen-client-urls');
      if (name && url) etcd.push({ name, pid: p.pid, address: url.replace(/^https?:\/\//, '') });
    }
  }
  const byName = (a: HaProcess, b: HaProcess) => a.name.localeCompare(b.name, 'en', { numeric: true });
  return { coordinators: coordinators.sort(byName), etcd: etcd.sort(byName) };
}

/**
 * Why the job cannot take an event of `kind` now (null: it can): a coordinator event needs a
 * standby ready to take over, an etcd kill every member up (one of 3 may go with no effect).
 */
export function haUnready(kind: ChaosKind, ha: HaProcesses, standbys: number): string | null {
  if (kind === ChaosKind.coordinatorKill || kind === ChaosKind.coordinatorFreeze) {
    return standbys >= 1 ? null : `no standby coordinator is ready (${ha.coordinators.length} coordinator process(es) run)`;
  }
  if (kind === ChaosKind.etcdKill) return ha.etcd.length >= HA_ETCD_MEMBERS ? null : `${ha.etcd.length} of ${HA_ETCD_MEMBERS} etcd members run`;
  return null;
}

export type HaTarget = { readonly ok: true; readonly name: string; readonly signals: readonly SignalStep[] } | { readonly ok: false; readonly reason: string };

/** What an event of `kind` hits: the leading coordinator (the one serving `leaderAddress`), or an etcd member drawn by `draw` (in [0, 1)). */
export function haTarget(kind: ChaosKind, ha: HaProcesses, leaderAddress: string, draw: () => number): HaTarget {
  if (kind === ChaosKind.coordinatorKill || kind === ChaosKind.coordinatorFreeze) {
    const leader = ha.coordinators.find((c) => c.address === leaderAddress);
    if (!leader) return { ok: false, reason: `no running coordinator process serves the leader's address ${leaderAddress}` };
    return { ok: true, name: leader.name, signals: [{ role: 'coordinator', pid: leader.pid, signal: kind === ChaosKind.coordinatorKill ? 'SIGKILL' : 'SIGSTOP' }] };
  }
  if (kind === ChaosKind.etcdKill) {
    if (ha.etcd.length === 0) return { ok: false, reason: 'no etcd member runs' };
    const m = ha.etcd[Math.min(ha.etcd.length - 1, Math.floor(draw() * ha.etcd.length))]!;
    return { ok: true, name: m.name, signals: [{ role: 'etcd', pid: m.pid, signal: 'SIGKILL' }] };
  }
  return { ok: false, reason: `${kind} hits a node, not a coordinator or etcd` };
}

/**
 * Whether an HA event fired at `stepsAtFire` completed steps under the leader of `termAtFire` is
 * recovered by this Status: training again past that step and, for a coordinator event, under a
 * leader of a later term (which may be the same process, killed and started again).
 */
export function haRecovered(kind: ChaosKind, s: { readonly phase: string; readonly completedSteps: number; readonly term: number }, termAtFire: number, stepsAtFire: number): boolean {
  if (s.phase !== 'training' || s.completedSteps <= stepsAtFire) return false;
  return kind === ChaosKind.etcdKill || s.term > termAtFire;
}

/**
 * An HA event's figures: detection until another coordinator led (none for an etcd member),
 * recovery until training went on past the step it was fired at. No step is lost to it: a
 * recovery it caused is a failure of its own in the coordinator's list, with its steps lost.
 */
export function haFigures(kind: ChaosKind, firedAtMs: number, ledAtMs: number | null, recoveredAtMs: number): EventFigures {
  const coordinator = kind !== ChaosKind.etcdKill;
  return {
    detectionMs: coordinator && ledAtMs !== null ? ledAtMs - firedAtMs : null,
    recoveryMs: recoveredAtMs - firedAtMs,
    handoverMs: null,
    lostSteps: 0,
    method: coordinator ? 'takeover' : 'etcd-quorum',
    failureKind: kind,
  };
}
