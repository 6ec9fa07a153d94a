// The coordinator's Prometheus metrics (`GET /metrics`), fed with the core's actions. Base
// units (seconds, bytes), counters end in `_total`; gauges that mirror the core's state read its
// status when Prometheus scrapes.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Action } from '../coordinator/core/core-events.ts';
import type { CoordinatorStatus } from '../coordinator/core/coordinator-status.ts';
import type { NodeMemory } from '../coordinator/core/node-memory.ts';
import { NodeState, RunPhase } from '../domain/run-status.ts';
import { SINGLE_COORDINATOR, decides, type CoordinatorRoleState } from './coordinator-role.ts';

/** Buckets for a snapshot's hand-off-to-commit time and the training loop's stall. */
const SNAPSHOT_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Buckets for a recovery: from a snapshot restore (under a second) to waiting for a new node. */
const RECOVERY_BUCKETS_S = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600];
const DETECTION_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10];

/**
 * The parts of `ftrain_node_memory_bytes{part}` and `ftrain_node_memory_peak_bytes{part}`, from a
 * node's memory. `shards` lies inside `smp_rss` (the shards live in the manager's heap): the parts
 * do not add up to the node's total, which has gauges of its own.
 */
export const MEMORY_PARTS = {
  worker_rss: (m: NodeMemory) => [m.workerRssBytes, m.workerPeakRssBytes],
  smp_rss: (m: NodeMemory) => [m.smpRssBytes, m.smpPeakRssBytes],
  slots: (m: NodeMemory) => [m.slotBytes, m.peakSlotBytes],
  shards: (m: NodeMemory) => [m.shardBytes, m.peakShardBytes],
} as const satisfies Record<string, (m: NodeMemory) => readonly [number | null, number | null]>;

/** `ftrain_failures_total{kind}` for the failure that ended the run. */
export const FATAL_FAILURE_KIND = 'fatal';

export class CoordinatorMetrics {
  readonly registry = new Registry();
  private readonly loss: Gauge;
  private readonly stepCompletions: Counter;
  private readonly snapshots: Counter;
  private readonly snapshotDuration: Histogram;
  private readonly snapshotStall: Histogram;
  private readonly snapshotBytes: Gauge;
  private readonly failures: Counter;
  private readonly recoveryDuration: Histogram;
  private readonly detection: Histogram;
  private readonly stepsLost: Counter;
  private readonly allReduce: Histogram;

  /**
   * `status`: the coordinator's read-only view, read when Prometheus scrapes; `role`: whether it
   * leads (a standby's status is that of an empty run: only the role gauges say something).
   */
  constructor(status: () => CoordinatorStatus, role: () => CoordinatorRoleState = () => SINGLE_COORDINATOR) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'ftrain_coordinator_leader',
      help: 'Whether this coordinator decides: 1 when it leads (or runs alone, without a store), 0 when it stands by.',
      registers,
      collect() {
        this.set(decides(role()) ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ftrain_coordinator_term',
      help: 'The term this coordinator leads under (0: it stands by, or runs alone without a store).',
      registers,
      collect() {
        const r = role();
        this.set(r.role === 'leader' ? r.term : 0);
      },
    });
    new Gauge({
      name: 'ftrain_coordinator_store_unreachable',
      help: "1 while the leader's store cannot be reached: training goes on, no new decision until it answers.",
      registers,
      collect() {
        const r = role();
        this.set(r.role === 'leader' && r.storeUnreachable ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ftrain_step',
      help: 'Steps every stage has completed: the step training is on.',
      registers,
      collect() {
        this.set(status().completedSteps);
      },
    });
    new Gauge({
      name: 'ftrain_global_commit_step',
      help: 'Newest step every stage can restore from its local snapshot (-1: none yet).',
      registers,
      collect() {
        this.set(status().globalCommitStep);
      },
    });
    new Gauge({
      name: 'ftrain_protected_commit_step',
      help: 'Newest step every stage holds erasure-coded on other nodes (-1: none yet).',
      registers,
      collect() {
        this.set(status().protectedCommitStep);
      },
    });
    new Gauge({
      name: 'ftrain_epoch',
      help: 'Recovery epoch: rises by one with every recovery.',
      registers,
      collect() {
        this.set(status().epoch);
      },
    });
    new Gauge({
      name: 'ftrain_run_phase',
      help: 'The phase of the run: 1 for the current phase, 0 for the others.',
      labelNames: ['phase'],
      registers,
      collect() {
        const current = status().phase;
        for (const phase of Object.values(RunPhase)) this.set({ phase }, phase === current ? 1 : 0);
      },
    });
    new Gauge({
      name: 'ftrain_nodes',
      help: 'Nodes the coordinator knows, by life-cycle state.',
      labelNames: ['state'],
      registers,
      collect() {
        const counts = new Map<string, number>(Object.values(NodeState).map((s) => [s, 0]));
        for (const n of status().nodes) counts.set(n.state, (counts.get(n.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'ftrain_snapshot_interval_steps',
      help: 'Snapshot interval in force: every stage snapshots every N steps (0: off); chosen by the coordinator under --snapshot-every auto.',
      registers,
      collect() {
        this.set(status().snapshotInterval.every);
      },
    });
    new Gauge({
      name: 'ftrain_recovery_in_progress',
      help: '1 while a recovery is under way.',
      registers,
      collect() {
        this.set(status().recovering ? 1 : 0);
      },
    });
    this.memoryGauges(status, registers);
    this.loss = new Gauge({ name: 'ftrain_loss', help: 'Training loss of the newest completed step (nats per byte).', registers });
    this.stepCompletions = new Counter({
      name: 'ftrain_step_completions_total',
      help: 'Steps completed by every stage, steps computed again after a rollback included.',
      registers,
    });
    this.snapshots = new Counter({ name: 'ftrain_snapshots_total', help: 'Snapshots committed, by stage.', labelNames: ['stage'], registers });
    this.snapshotDuration = new Histogram({
      name: 'ftrain_snapshot_duration_seconds',
      help: "Time from a snapshot's hand-off to its commit in the snapshot manager (runs beside training).",
      labelNames: ['stage'],
      buckets: SNAPSHOT_BUCKETS_S,
      registers,
    });
    this.snapshotStall = new Histogram({
      name: 'ftrain_snapshot_stall_seconds',
      help: 'Time the training loop was blocked by a snapshot (copy out of the model).',
      labelNames: ['stage'],
      buckets: SNAPSHOT_BUCKETS_S,
      registers,
    });
    this.snapshotBytes = new Gauge({ name: 'ftrain_snapshot_bytes', help: "Size of the stage's newest snapshot.", labelNames: ['stage'], registers });
    this.failures = new Counter({
      name: 'ftrain_failures_total',
      help: `Failures, by kind (worker-kill, node-kill, worker-crash, unresponsive, preempt, ...; "${FATAL_FAILURE_KIND}": the one that ended the run). Counted when recovered.`,
      labelNames: ['kind'],
      registers,
    });
    this.recoveryDuration = new Histogram({
      name: 'ftrain_recovery_duration_seconds',
      help: 'From a failure (or its detection) until training resumed, by recovery method.',
      labelNames: ['method'],
      buckets: RECOVERY_BUCKETS_S,
      registers,
    });
    this.detection = new Histogram({
      name: 'ftrain_failure_detection_seconds',
      help: 'From an injected failure to its detection by the coordinator.',
      buckets: DETECTION_BUCKETS_S,
      registers,
    });
    this.allReduce = new Histogram({
      name: 'ftrain_all_reduce_seconds',
      help: "With --replicas: time of each step's gradient all-reduce, by stage slot (replica x stages + stage).",
      labelNames: ['stage'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
      registers,
    });
    this.stepsLost = new Counter({ name: 'ftrain_steps_lost_total', help: 'Completed steps that failures made the run compute again.', registers });
  }

  /**
   * Each node's memory as it last said (current values of lost nodes are left out: their processes
   * are gone) and the peaks of the run (every node). Set afresh at each scrape.
   */
  private memoryGauges(status: () => CoordinatorStatus, registers: Registry[]): void {
    const current = (m: NodeMemory) => !status().nodes.some((n) => n.nodeId === m.nodeId && n.state === NodeState.lost);
    const perPart = (name: string, help: string, peak: boolean) =>
      new Gauge({
        name,
        help,
        labelNames: ['node', 'part'],
        registers,
        collect() {
          this.reset();
          for (const m of status().memory) {
            if (!peak && !current(m)) continue;
            for (const [part, values] of Object.entries(MEMORY_PARTS)) {
              const v = values(m)[peak ? 1 : 0];
              if (v !== null && v !== undefined) this.set({ node: m.nodeId, part }, v);
            }
          }
        },
      });
    const total = (name: string, help: string, peak: boolean) =>
      new Gauge({
        name,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset();
          for (const m of status().memory) {
            const v = peak ? m.peakTotalBytes : m.totalBytes;
            if (v !== null && (peak || current(m))) this.set({ node: m.nodeId }, v);
          }
        },
      });
    const parts = 'worker_rss, smp_rss (the snapshot manager), slots (its slot files on tmpfs), shards (held for other nodes; inside smp_rss, so the parts do not add up)';
    perPart('ftrain_node_memory_bytes', `Memory of each node as it last said, by part: ${parts}.`, false);
    perPart('ftrain_node_memory_peak_bytes', `Most memory of each node over the run, by part: ${parts}.`, true);
    total('ftrain_node_memory_total_bytes', "A node's RAM as it last said: worker RSS + snapshot manager RSS + slot files.", false);
    total('ftrain_node_memory_peak_total_bytes', "Most RAM a node needed over the run: the largest sampled worker RSS + snapshot manager RSS + slot files.", true);
  }

  onAction(a: Action): void {
    switch (a.type) {
      case 'step-reported':
        if (a.allReduceMs > 0) this.allReduce.observe({ stage: String(a.stage) }, a.allReduceMs / 1000);
        break;
      case 'step-completed':
        this.stepCompletions.inc();
        if (Number.isFinite(a.loss)) this.loss.set(a.loss);
        break;
      case 'snapshot-committed': {
        const stage = String(a.snapshot.stage);
        this.snapshots.inc({ stage });
        this.snapshotDuration.observe({ stage }, a.snapshot.copyMs / 1000);
        this.snapshotStall.observe({ stage }, a.snapshot.stallMs / 1000);
        this.snapshotBytes.set({ stage }, a.snapshot.bytes);
        break;
      }
      case 'recovered': {
        const f = a.failure;
        this.failures.inc({ kind: f.kind });
        this.recoveryDuration.observe({ method: f.method }, f.recoverMs / 1000);
        if (f.detectMs !== null) this.detection.observe(f.detectMs / 1000);
        this.stepsLost.inc(f.lostSteps);
        break;
      }
      case 'run-failed':
        this.failures.inc({ kind: FATAL_FAILURE_KIND });
        break;
      default:
        break;
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
