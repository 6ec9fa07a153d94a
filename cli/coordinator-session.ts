// Runs a coordinator for one job: serves gRPC, prints progress, handles Ctrl-C, writes the
// report. Used by `ftrain coordinator` (nodes join over the network) and `ftrain run` (the
// launcher starts the nodes as child processes).

import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { loadCorpus, checkCorpusFits } from '../common/corpus.ts';
import { tokensPerStep, type JobOptions } from '../common/job-options.ts';
import type { Logger } from '../common/logging.ts';
import { CoordinatorServer, type RunResult } from '../coordinator/coordinator-server.ts';
import { buildRunReport, type RunReport } from '../coordinator/run-report.ts';
import { ProgressPrinter } from './progress.ts';

export interface SessionOptions {
  readonly job: JobOptions;
  readonly listen: string;
  readonly reportPath: string | null;
  readonly logger: Logger;
  readonly print: (line: string) => void;
}

export interface SessionTimes {
  launchedAtMs: number;
  trainingStartedAtMs: number | null;
  lastStepAtMs: number | null;
}

export class CoordinatorSession {
  readonly server: CoordinatorServer;
  readonly dataSha256: string;
  readonly times: SessionTimes = { launchedAtMs: Date.now(), trainingStartedAtMs: null, lastStepAtMs: null };
  private interrupts = 0;

  constructor(private readonly options: SessionOptions) {
    // Validate the text before any node starts: a missing or too short file is a clear error now.
    const corpus = loadCorpus(options.job.data);
    checkCorpusFits(corpus, options.job.model.seqLen);
    this.dataSha256 = corpus.sha256;
    this.server = new CoordinatorServer({ job: options.job, dataSha256: corpus.sha256, listen: options.listen, logger: options.logger });
    const progress = new ProgressPrinter(options.job.steps, tokensPerStep(options.job), options.print);
    this.server.on('action', (a) => {
      if (a.type === 'training-started') this.times.trainingStartedAtMs = Date.now();
      if (a.type === 'step-completed') this.times.lastStepAtMs = a.atMs;
      progress.onAction(a);
    });
  }

  async start(): Promise<number> {
    return this.server.start();
  }

  /** First Ctrl-C: finish the step under way and stop. Second: stop at once. */
  interrupt(): void {
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
    const report = buildRunReport(this.options.job, this.dataSha256, this.options.job.backend, this.server.core, result, {
      ...this.times,
      endedAtMs: Date.now(),
    });
    if (this.options.reportPath) {
      mkdirSync(dirname(this.options.reportPath), { recursive: true });
      writeFileSync(this.options.reportPath, `${JSON.stringify(report, null, 2)}\n`);
    }
    return { result, report };
  }

  async close(): Promise<void> {
    await this.server.close();
  }
}

export function summaryLines(report: RunReport, reportPath: string | null): string[] {
  const lines = [
    `${report.status}: ${report.reason}`,
    `  steps ${report.steps}, loss ${report.initialLoss?.toFixed(4) ?? '-'} -> ${report.finalLoss?.toFixed(4) ?? '-'}, ` +
      `${report.tokensPerSecond === null ? '-' : Math.round(report.tokensPerSecond).toLocaleString('en-US')} tok/s, ${report.wallSeconds.toFixed(1)} s`,
  ];
  if (report.weightsDigest) lines.push(`  weights sha256 ${report.weightsDigest}`);
  if (reportPath) lines.push(`  report: ${reportPath}`);
  return lines;
}
