// Runs a coordinator for one job: serves gRPC, prints progress, handles Ctrl-C, writes the
// report. Used by `ftrain coordinator` (nodes join over the network) and `ftrain run` (the
// launcher starts the nodes as child processes).

import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadCorpus, checkCorpusFits } from '../domain/corpus.ts';
import { tokensPerStep, type JobOptions } from '../domain/job-options.ts';
import { RunPhase } from '../domain/run-status.ts';
import type { Logger } from '../common/logging.ts';
import { checkCheckpointDir } from '../common/checkpoint-dir.ts';
import { CoordinatorServer, type HaOptions, type RunResult } from '../coordinator/coordinator-server.ts';
import { DashboardServer } from '../observability/dashboard-server.ts';
import type { DashboardAccess } from '../observability/dashboard-access.ts';
import { CoordinatorRoleView } from '../observability/coordinator-role.ts';
import { buildRunReport, type RunReport, type StoredRunReport } from '../observability/run-report.ts';
import { RunLedger } from '../observability/run-ledger.ts';
import { InjectionDriver } from '../chaos/injection-driver.ts';
import { ProgressPrinter } from './progress.ts';
import { slotCount } from '../domain/replica-slots.ts';

export interface SessionOptions {
  readonly job: JobOptions;
  readonly listen: string;
  /** The heartbeat desk's port on the listen host (0 or absent: a free one). */
  readonly heartbeatPort?: number;
  readonly reportPath: string | null;
  readonly logger: Logger;
  readonly print: (line: string) => void;
  /** Where to serve the dashboard and /metrics; null: not at all. */
  readonly dashboard: DashboardSettings | null;
  /** The nodes run on this machine (`ftrain run`): they see the --checkpoint-dir the coordinator sees. */
  readonly nodesOnThisMachine?: boolean;
  /** A leader and standbys sharing the job's state through a store. */
  readonly ha?: HaOptions;
  /** The job's join token, required at Register; null or absent: none. */
  readonly joinToken?: string | null;
}

/** SIGINTs closer together than this are one Ctrl-C. */
const SAME_INTERRUPT_MS = 500;

export interface DashboardSettings {
  readonly host: string;
  /** 0: any free port. */
  readonly port: number;
  /** The port was not chosen by the user: when it is taken, serve on a free one rather than fail. */
  readonly fallbackToFreePort: boolean;
  /** Who may read it: the token, or none on loopback (compileDashboardAccess). */
  readonly access: DashboardAccess;
  /**
   * With a store: the dashboard URL published with the leadership (`--dashboard-advertise`), which
   * a standby's page links to. Absent: http://<--advertise host>:<port>/ when the dashboard serves
   * every interface, else the address it serves on.
   */
  readonly advertise?: string;
}

export interface SessionTimes {
  launchedAtMs: number;
  trainingStartedAtMs: number | null;
  lastStepAtMs: number | null;
}

export class CoordinatorSession {
  readonly server: CoordinatorServer;
  readonly dashboard: DashboardServer | null;
  readonly dataSha256: string;
  readonly times: SessionTimes = { launchedAtMs: Date.now(), trainingStartedAtMs: null, lastStepAtMs: null };
  /** What the run did, from the core's actions: the report is built from it. */
  readonly ledger: RunLedger;
  private interrupts = 0;
  private lastInterruptMs = -Infinity;
  private readonly progress: ProgressPrinter;

  constructor(private readonly options: SessionOptions) {
    // Validate the text before any node starts: a missing or too short file is a clear error now.
    const corpus = loadCorpus(options.job.data);
    checkCorpusFits(corpus, options.job.model.seqLen);
    this.dataSha256 = corpus.sha256;
    // And the checkpoints a resume would load: a mismatch is refused here, before any node starts.
    for (const line of checkCheckpointDir(options.job, corpus.sha256, { nodesOnThisMachine: options.nodesOnThisMachine ?? false })) options.print(line);
    const ha = options.ha ? { ...options.ha, dashboardUrl: () => this.publishedDashboardUrl() } : null;
    this.server = new CoordinatorServer({ job: options.job, dataSha256: corpus.sha256, listen: options.listen, logger: options.logger, joinToken: options.joinToken ?? null, ...(options.heartbeatPort ? { heartbeatPort: options.heartbeatPort } : {}), ...(ha ? { ha } : {}) });
    const role = options.ha ? new CoordinatorRoleView(options.ha.id) : null;
    if (options.ha && role) {
      const id = options.ha.id;
      this.server.on('role', (r) => {
        role.role(r);
        this.progress.storeReachable(true);
        // A leader that took over saw none of the steps before: its report counts from here.
        if (r.leading && r.tookOver) {
          const s = this.server.status();
          if (s.phase === RunPhase.training || s.phase === RunPhase.recovering || s.phase === RunPhase.starting) {
            const now = Date.now();
            this.ledger.tookOver(s.completedSteps, now);
            this.times.trainingStartedAtMs = now;
          }
        }
        if (r.leading) options.print(r.tookOver ? `LEADING: coordinator ${id} took over the run (term ${r.term}): its nodes re-attach` : `LEADING: coordinator ${id} leads a new run (term ${r.term})`);
        else options.print(r.leader ? `standby: coordinator ${r.leader.id} at ${r.leader.address} leads (term ${r.leader.term})` : 'standby: no coordinator leads right now');
      });
      this.server.on('store', (why) => {
        role.store(why);
        this.progress.storeReachable(why === null);
        options.print(why ? `WARNING: ${why}: training goes on, no new decision (a recovery waits) until it answers` : 'the store answers again: decisions go out');
      });
    }
    const d = options.dashboard;
    this.dashboard = d ? new DashboardServer({ coordinator: this.server, host: d.host, port: d.port, fallbackToFreePort: d.fallbackToFreePort, access: d.access, logger: options.logger, ...(role ? { role } : {}) }) : null;
    const progress = new ProgressPrinter(options.job.steps, tokensPerStep(options.job), options.print, options.job.snapshotEvery, options.job);
    this.progress = progress;
    this.ledger = new RunLedger(slotCount(options.job));
    // `--inject` kinds that hit whole nodes, at their step (the worker causes the others).
    new InjectionDriver(this.server, options.job, options.logger);
    this.server.on('action', (a) => {
      this.ledger.onAction(a);
      if (a.type === 'training-started') this.times.trainingStartedAtMs = a.atMs;
      if (a.type === 'step-completed') this.times.lastStepAtMs = a.atMs;
      progress.onAction(a);
    });
  }

  /**
   * Serves gRPC (resolves with its port), then the dashboard. With a store the dashboard comes
   * first: its URL goes out with the leadership, which the coordinator stands for once gRPC serves.
   */
  async start(): Promise<number> {
    if (this.options.ha) {
      await this.dashboard?.start();
      try {
        return await this.server.start();
      } catch (err) {
        await this.dashboard?.close();
        throw err;
      }
    }
    const port = await this.server.start();
    try {
      await this.dashboard?.start();
    } catch (err) {
      await this.server.close();
      throw err;
    }
    return port;
  }

  /**
   * The line that tells the user where the dashboard is: the one place the token is shown, in
   * the URL to open (`?token=`), so that the user can click it.
   */
  dashboardLine(): string {
    if (!this.dashboard) return '  dashboard: off';
    const published = this.options.ha ? this.publishedDashboardUrl() : null;
    const standby = this.options.ha ? `; while standing by, a page naming the leader${published && published !== this.dashboard.url ? `; published as ${published}` : ''}` : '';
    const bearer = this.dashboard.tokenRequired.metrics ? ' with Authorization: Bearer <the token>' : '';
    return `  dashboard: ${this.dashboard.urlToOpen}  (metrics: ${this.dashboard.url}metrics${bearer}${standby})`;
  }

  /** The dashboard URL a leader publishes with its leadership (see DashboardSettings.advertise); null: no dashboard. */
  private publishedDashboardUrl(): string | null {
    const d = this.dashboard;
    const settings = this.options.dashboard;
    if (!d || !settings || d.port === 0) return null;
    if (settings.advertise) return settings.advertise;
    const everyInterface = settings.host === '0.0.0.0' || settings.host === '::';
    if (!everyInterface || !this.options.ha) return d.url;
    const host = this.options.ha.advertise.slice(0, this.options.ha.advertise.lastIndexOf(':'));
    return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${d.port}/`;
  }

  /** First Ctrl-C: finish the step under way and stop. Second: stop at once. */
  interrupt(): void {
    // A terminal's Ctrl-C reaches `ftrain run --ha`'s coordinators twice (from the terminal to the
    // process group, and passed on by the launcher): two at once are one.
    const now = Date.now();
    if (now - this.lastInterruptMs < SAME_INTERRUPT_MS) return;
    this.lastInterruptMs = now;
    this.interrupts += 1;
    if (this.interrupts === 1) {
      this.options.print('stopping after the current step (Ctrl-C again to stop now)');
      this.server.requestStop('interrupted by the user', true);
    } else {
      this.server.requestStop('interrupted by the user', false);
    }
  }

  /** Waits for the run to end and writes the report. */
  async finish(): Promise<{ result: RunResult; report: RunReport }> {
    const result = await this.server.done;
    const report = buildRunReport(this.options.job, this.dataSha256, this.options.job.backend, this.server.status(), this.ledger, result, {
      ...this.times,
      endedAtMs: Date.now(),
    });
    if (this.options.reportPath) {
      mkdirSync(dirname(this.options.reportPath), { recursive: true });
      writeFileSync(this.options.reportPath, `${JSON.stringify(report, null, 2)}\n`);
    }
    return { result, report };
  }

  /** The lines that end a run on the console: its reason only when the progress did not print it. */
  summaryLines(report: StoredRunReport): string[] {
    return summaryLines(report, this.options.reportPath, { reasonPrinted: this.progress.failurePrinted });
  }

  async close(): Promise<void> {
    await this.dashboard?.close();
    await this.server.close();
  }
}

/**
 * The end of a run: its status and why, the figures, the weights digest. `reasonPrinted`: a
 * FAILED line already gave the reason above, which the status line then points to, not repeats.
 */
export function summaryLines(report: StoredRunReport, reportPath: string | null, shown: { reasonPrinted?: boolean } = {}): string[] {
  const failedAbove = shown.reasonPrinted === true && report.status === 'failed';
  const lines = [
    failedAbove ? `failed after ${report.steps} step(s): the FAILED line above says why` : `${report.status}: ${report.reason}`,
    `  steps ${report.steps}, loss ${report.initialLoss?.toFixed(4) ?? '-'} -> ${report.finalLoss?.toFixed(4) ?? '-'}${report.resumedFromStep > 0 ? ` (steps from ${report.resumedFromStep} on)` : ''}, ` +
      `${report.tokensPerSecond === null ? '-' : Math.round(report.tokensPerSecond).toLocaleString('en-US')} tok/s, ${report.wallSeconds.toFixed(1)} s`,
  ];
  if (report.weightsDigest) lines.push(`  weights sha256 ${report.weightsDigest}`);
  const replicaDigests = report.replicaDigests ?? [];
  if (replicaDigests.length > 1) {
    const held = replicaDigests.filter((d) => d !== '');
    const same = held.every((d) => d === held[0]);
    const out = replicaDigests.flatMap((d, r) => (d === '' ? [r] : []));
    const count = out.length > 0 ? `${held.length} of ${replicaDigests.length} (replica ${out.join(', ')} was out at the end)` : `${replicaDigests.length}`;
    lines.push(same ? `  replicas: ${count}, every one with these weights` : `  replicas DIFFER: ${replicaDigests.map((d, r) => `replica ${r} ${d.slice(0, 12) || 'out'}`).join(', ')}`);
  }
  if (reportPath) lines.push(`  report: ${reportPath}`);
  return lines;
}

/** `ftrain report FILE`: the summary, then snapshots, erasure coding and every failure. */
export function reportLines(report: StoredRunReport): string[] {
  const lines = summaryLines(report, null);
  const snap = report.snapshots;
  lines.push(
    snap.everySteps > 0
      ? `  snapshots: ${snap.count} committed, every ${snap.everySteps} step(s)${snap.intervalMode === 'auto' ? ` (auto, ${(snap.intervalChanges ?? []).length} change(s))` : ''}; stall p50 ${snap.stallMsP50?.toFixed(1) ?? '-'} ms, commit p50 ${snap.copyMsP50?.toFixed(1) ?? '-'} ms`
      : '  snapshots: off',
  );
  const ec = report.erasure;
  lines.push(ec.code ? `  erasure coding: ${ec.code}${ec.degraded ? ' (degraded)' : ''}, protected commit step ${ec.protectedCommitStep}` : `  erasure coding: off (${ec.disabledReason ?? 'not used'})`);
  const memory = memoryLine(report);
  if (memory) lines.push(memory);
  if (report.failures.length === 0) lines.push('  failures: none');
  for (const f of report.failures) {
    const t = f.trainedOn;
    const joined = t?.joinedAtStep == null ? 'the run ended before it joined' : `replica ${t.replica} joined at step ${t.joinedAtStep} after ${((t.rejoinMs ?? 0) / 1000).toFixed(2)} s`;
    const on = t ? `, the others trained on (${t.steps} step(s); ${joined})` : '';
    lines.push(`  failure at step ${f.step}: ${f.kind} of stage ${f.stage} (${f.nodeId}), ${f.method} in ${(f.recoverMs / 1000).toFixed(2)} s${on}, ${f.lostSteps} step(s) lost`);
  }
  if (report.failure) lines.push(`  ended by: node ${report.failure.nodeId}: ${report.failure.detail}`);
  return lines;
}

function mib(bytes: number | null): string {
  return bytes === null ? '-' : `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

/** The node that needed the most RAM, and its parts at their peaks; null for reports without memory. */
function memoryLine(report: StoredRunReport): string | null {
  const top = (report.memory ?? []).filter((m) => m.peakTotalBytes !== null).sort((a, b) => b.peakTotalBytes! - a.peakTotalBytes!)[0];
  if (!top) return null;
  return (
    `  memory: peak RAM per node ${mib(top.peakTotalBytes)} on ${top.nodeId} (worker + snapshot manager + slot files, sampled); ` +
    `its peaks: worker RSS ${mib(top.workerPeakRssBytes)}, snapshot manager RSS ${mib(top.smpPeakRssBytes)}, slot files ${mib(top.peakSlotBytes)}, shards held ${mib(top.peakShardBytes)}`
  );
}
