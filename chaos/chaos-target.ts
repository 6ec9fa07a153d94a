// Which node an event hits and which signals it sends: pure functions of the Status node list,
// so they are tested without processes.

import { NodeState } from '../domain/run-status.ts';
import { ChaosKind } from './chaos-schedule.ts';
import type { StatusNode } from './coordinator-status.ts';

/** States of a node that holds a stage and is not already being recovered. */
const STAGE_HOLDING_STATES: ReadonlySet<NodeState> = new Set([NodeState.assigned, NodeState.ready, NodeState.training]);

export type ProcessRole = 'agent' | 'worker' | 'smp' | 'coordinator' | 'etcd';

export interface SignalStep {
  readonly role: ProcessRole;
  readonly pid: number;
  readonly signal: NodeJS.Signals;
}

export type TargetChoice = { readonly ok: true; readonly node: StatusNode } | { readonly ok: false; readonly reason: string };

function pidOf(node: StatusNode, role: ProcessRole): number {
  return role === 'agent' ? node.agentPid : role === 'worker' ? node.pid : role === 'smp' ? node.smpPid : 0;
}

/** The processes an event of `kind` signals, in order, and with what. */
export function signalPlan(kind: ChaosKind, node: StatusNode): SignalStep[] {
  const steps = (roles: readonly ProcessRole[], signal: NodeJS.Signals) =>
    roles.map((role) => ({ role, pid: pidOf(node, role), signal })).filter((s) => s.pid > 0);
  switch (kind) {
    case ChaosKind.workerKill:
      return steps(['worker'], 'SIGKILL');
    case ChaosKind.smpKill:
      return steps(['smp'], 'SIGKILL');
    // The agent goes first: a worker killed before it would be restarted.
    case ChaosKind.nodeKill:
      return steps(['agent', 'smp', 'worker'], 'SIGKILL');
    case ChaosKind.freeze:
      return steps(['agent', 'smp', 'worker'], 'SIGSTOP');
    // The agent takes the notice and passes it to its worker; a bare worker takes it itself.
    case ChaosKind.preempt:
      return node.agentPid > 0 ? steps(['agent'], 'SIGTERM') : steps(['worker'], 'SIGTERM');
    // Not a node's processes: chaos/ha-chaos.ts hits the coordinators and etcd.
    case ChaosKind.coordinatorKill:
    case ChaosKind.coordinatorFreeze:
    case ChaosKind.etcdKill:
      return [];
  }
}

/** What makes a node unfit for an event of `kind`, or null. */
function unfit(kind: ChaosKind, node: StatusNode): string | null {
  if (kind === ChaosKind.workerKill && node.pid === 0) return 'its worker pid is unknown';
  if (kind === ChaosKind.smpKill && node.smpPid === 0) return 'its snapshot manager pid is unknown';
  if ((kind === ChaosKind.nodeKill || kind === ChaosKind.freeze || kind === ChaosKind.preempt) && node.pid === 0) return 'its worker pid is unknown';
  return null;
}

/**
 * A node for an event of `kind`, drawn uniformly (by `draw`, in [0, 1)) among the nodes that
 * hold a stage, run on `localHost` (only local processes can be signalled) and have the pids
 * the kind needs; or why there is none.
 */
export function pickTarget(nodes: readonly StatusNode[], kind: ChaosKind, localHost: string, draw: () => number): TargetChoice {
  const holding = nodes.filter((n) => n.stage !== null && STAGE_HOLDING_STATES.has(n.state));
  if (holding.length === 0) return { ok: false, reason: 'no node holds a stage' };
  const local = holding.filter((n) => n.hostname === localHost);
  if (local.length === 0) return { ok: false, reason: `no node holding a stage runs on this machine (${localHost}); their hosts: ${[...new Set(holding.map((n) => n.hostname))].join(', ')}` };
  const fit = local.filter((n) => unfit(kind, n) === null).sort((a, b) => a.nodeId.localeCompare(b.nodeId, 'en', { numeric: true }));
  if (fit.length === 0) return { ok: false, reason: `no local node holding a stage can take a ${kind}: ${local.map((n) => `${n.nodeId}: ${unfit(kind, n)}`).join('; ')}` };
  const i = Math.min(fit.length - 1, Math.floor(draw() * fit.length));
  return { ok: true, node: fit[i]! };
}

/** The processes that must be gone before the node counts as gone (and is replaced). */
export function nodePids(node: StatusNode): number[] {
  return [node.agentPid, node.pid, node.smpPid].filter((p) => p > 0);
}
