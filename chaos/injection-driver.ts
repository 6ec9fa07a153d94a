// `--inject` kinds that hit a whole node: `node-kill` (SIGKILL to its worker, snapshot manager and
// node agent: the machine is gone, with the snapshots in its RAM), `freeze` (SIGSTOP to all three,
// as a machine that hangs without closing a connection; SIGCONT after FREEZE_SECONDS, by when the
// node has been declared lost) and `preempt` (SIGTERM to the node agent: a spot preemption
// notice). Those of step S happen together, the moment every stage has finished step S - 1, so
// the events of one step happen at once. Wired in by the command line beside the coordinator; it
// signals processes by pid, so it reaches nodes on this machine only. A `worker-kill` happens
// inside its worker (worker-injector.ts), which announces it first: on this machine the driver
// kills that worker the moment the announcement is recorded.

import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import type { Action } from '../coordinator/core/core-events.ts';
import type { CoordinatorStatus } from '../coordinator/core/coordinator-status.ts';
import type { Logger } from '../common/logging.ts';
import { FREEZE_SECONDS, InjectionKind, type Injection } from '../domain/inject-spec.ts';
import { NodeState, type NodeSummary } from '../domain/run-status.ts';
import { slotName, slotOf, type ReplicaShape } from '../domain/replica-slots.ts';
import { sendSignal } from './process-control.ts';

/** Injection kinds this driver causes; the others happen inside a worker (worker-injector.ts). */
export const NODE_INJECTION_KINDS: ReadonlySet<InjectionKind> = new Set([InjectionKind.nodeKill, InjectionKind.freeze, InjectionKind.preempt, InjectionKind.zoneKill]);

/** The coordinator as the driver sees it. */
export interface InjectionTarget {
  status(): CoordinatorStatus;
  on(event: 'action', listener: (a: Action) => void): unknown;
  /** Tells the core a failure is about to happen; false if it refused (announced before). */
  announceInjection(nodeId: string, stage: number, step: number, kind: InjectionKind): boolean;
}

export class InjectionDriver {
  private pending: Injection[];

  constructor(
    private readonly target: InjectionTarget,
    private readonly job: ReplicaShape & { readonly injections: readonly Injection[] },
    private readonly log: Logger,
  ) {
    const injections = job.injections;
    this.pending = injections.filter((i) => NODE_INJECTION_KINDS.has(i.kind));
    const workerKills = injections.some((i) => i.kind === InjectionKind.workerKill);
    if (this.pending.length > 0 || workerKills) target.on('action', (a) => this.onAction(a));
  }

  private onAction(a: Action): void {
    if (a.type === 'injection-announced') {
      this.killAnnouncedWorker(a.nodeId, a.kind);
      return;
    }
    if (a.type !== 'step-completed') return;
    const step = a.step + 1;
    const due = this.pending.filter((i) => i.step === step);
    if (due.length === 0) return;
    this.pending = this.pending.filter((i) => !due.includes(i));
    const status = this.target.status();
    for (const i of due) {
      const slot = slotOf(this.job, i.replica, i.stage);
      const where = slotName(this.job, slot);
      const nodeId = status.stages[slot]?.nodeId;
      const node = status.nodes.find((n) => n.nodeId === nodeId);
      if (!nodeId || !node) continue;
      if (node.hostname !== hostname()) {
        this.log.error({ nodeId, host: node.hostname }, `cannot inject ${i.kind} on ${where}: node ${nodeId} runs on ${node.hostname}, not on this machine; use ftrain chaos there`);
        continue;
      }
      if (i.kind === InjectionKind.zoneKill) {
        this.killZone(status, node, where, step);
        continue;
      }
      // A preemption is not a failure until its notice arrives (Leave); the others are one now.
      if (i.kind !== InjectionKind.preempt && !this.target.announceInjection(nodeId, slot, step, i.kind)) continue;
      this.log.warn({ nodeId, stage: i.stage, replica: i.replica, step, kind: i.kind }, `injecting ${i.kind} on ${where} (${nodeId}) in step ${step}`);
      this.hit(node, i.kind);
    }
  }

  /**
   * A worker announced its `worker-kill` and waits for the answer to kill itself: when it runs on
   * this machine it is killed here at once, so the failure happens when the coordinator records
   * it (the recovery's clock starts there), not an answer's trip later. On another machine it
   * kills itself on the answer.
   */
  private killAnnouncedWorker(nodeId: string, kind: InjectionKind): void {
    if (kind !== InjectionKind.workerKill) return;
    const node = this.target.status().nodes.find((n) => n.nodeId === nodeId);
    if (!node || node.pid <= 0 || node.hostname !== hostname()) return;
    sendSignal(node.pid, 'SIGKILL');
  }

  /** zone-kill: every live node of `node`'s zone on this machine, at once, as node-kill does to one. */
  private killZone(status: CoordinatorStatus, node: NodeSummary, where: string, step: number): void {
    if (node.zone === '') {
      this.log.error({ nodeId: node.nodeId }, `cannot inject zone-kill on ${where}: node ${node.nodeId} has no zone (ftrain node --zone, ftrain run --zones N)`);
      return;
    }
    const zone = status.nodes.filter((n) => n.zone === node.zone && n.state !== NodeState.lost && n.state !== NodeState.stopped && n.hostname === hostname());
    this.log.warn({ zone: node.zone, nodes: zone.map((n) => n.nodeId), step }, `injecting zone-kill of zone ${node.zone} (${zone.length} node(s)) in step ${step}`);
    for (const n of zone) {
      if (n.stage !== null) this.target.announceInjection(n.nodeId, n.stage, step, InjectionKind.zoneKill);
    }
    for (const n of zone) this.hit(n, InjectionKind.nodeKill);
  }

  private hit(node: NodeSummary, kind: InjectionKind): void {
    const all = [node.smpPid, node.agentPid, node.pid].filter((p) => p > 0);
    switch (kind) {
      case InjectionKind.nodeKill:
        for (const pid of all) sendSignal(pid, 'SIGKILL');
        return;
      case InjectionKind.freeze:
        // A detached shell wakes them, even if this process is gone by then.
        spawn('/bin/sh', ['-c', `sleep ${FREEZE_SECONDS}; kill -CONT ${all.join(' ')} 2>/dev/null`], { detached: true, stdio: 'ignore' }).unref();
        for (const pid of all) sendSignal(pid, 'SIGSTOP');
        return;
      case InjectionKind.preempt:
        sendSignal(node.agentPid > 0 ? node.agentPid : node.pid, 'SIGTERM');
        return;
      default:
        return;
    }
  }
}
