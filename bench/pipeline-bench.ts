// `ftrain bench pipeline`: training throughput and pipeline bubble of real local clusters,
// side by side in one run: 1 stage (the whole model in one worker) against 2 and 4 stages,
// on each backend asked for. Prints JSON.

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backend } from '../domain/job-options.ts';
import { FTRAIN_BIN } from '../common/ftrain-bin.ts';
import type { RunReport } from '../observability/run-report.ts';
import { median } from './stats.ts';

export interface PipelineBenchOptions {
  readonly stages: readonly number[];
  readonly backends: readonly Backend[];
  readonly steps: number;
  readonly repeat: number;
  /** Transformer blocks of the model, split evenly over the stages of each case. */
  readonly blocks: number;
  readonly progress: (line: string) => void;
}

export interface PipelineCase {
  readonly backend: Backend;
  readonly stages: number;
  readonly runs: number;
  /** Median over runs of tokens per step / mean step time after the first step. */
  readonly tokensPerSecond: number;
  readonly stepMs: number;
  /** Per stage, median over runs of mean compute and wait time per step. */
  readonly computeMsPerStage: number[];
  readonly waitMsPerStage: number[];
  /** Fraction of a step a stage spends waiting on the pipeline (mean over stages). */
  readonly bubbleMeasured: number;
  readonly bubbleTheoretical: number;
  /** tokensPerSecond relative to the 1-stage case of the same backend. */
  readonly speedupVsOneStage: number | null;
}


/**
 * Runs `ftrain run ARGS` as a child process and returns its report; a failed run rejects, naming
 * its logs. `logFile`: the run's JSON log goes there and stays (else into the run's own folder,
 * removed after a run that succeeded).
 */
export function runOnce(args: string[], logFile: string | null = null): Promise<RunReport> {
  const dir = mkdtempSync(join(tmpdir(), 'ftrain-bench-'));
  const report = join(dir, 'report.json');
  return new Promise<RunReport>((resolve, reject) => {
    const child = spawn(process.execPath, [FTRAIN_BIN, 'run', ...args, '--report', report, '--log-file', logFile ?? join(dir, 'run.log')], { stdio: 'ignore' });
    child.on('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`ftrain run ${args.join(' ')} exited with ${code}; logs in ${dir}`);
        resolve(JSON.parse(readFileSync(report, 'utf8')) as RunReport);
        rmSync(dir, { recursive: true, force: true });
      } catch (err) {
        reject(err);
      }
    });
  });
}

/** A run's step time: the slowest stage's mean step time after the first step (ms). */
export function slowestStepMs(report: RunReport): number {
  return Math.max(...report.stageTiming.map((s) => s.stepMsMean ?? 0));
}

export async function benchPipeline(o: PipelineBenchOptions): Promise<{ cases: PipelineCase[]; settings: Record<string, unknown> }> {
  const cases: PipelineCase[] = [];
  for (const backend of o.backends) {
    let oneStage: number | null = null;
    for (const stages of o.stages) {
      if (o.blocks % stages !== 0) throw new Error(`--blocks ${o.blocks} does not split evenly over ${stages} stages`);
      const reports: RunReport[] = [];
      for (let r = 0; r < o.repeat; r++) {
        o.progress(`bench pipeline: ${backend}, ${stages} stage(s), run ${r + 1}/${o.repeat}`);
        reports.push(
          await runOnce(['--nodes', String(stages), '--layers-per-stage', String(o.blocks / stages), '--steps', String(o.steps), '--backend', backend, '--seed', String(r)]),
        );
      }
      const stepMs = median(reports.map(slowestStepMs));
      const tokensPerSecond = median(reports.map((rep) => rep.tokensPerStep / (slowestStepMs(rep) / 1000)));
      const perStage = (f: (s: RunReport['stageTiming'][number]) => number | null) =>
        Array.from({ length: stages }, (_, i) => median(reports.map((rep) => f(rep.stageTiming[i]!) ?? 0)));
      if (stages === 1) oneStage = tokensPerSecond;
      cases.push({
        backend,
        stages,
        runs: reports.length,
        tokensPerSecond,
        stepMs,
        computeMsPerStage: perStage((s) => s.computeMsMean),
        waitMsPerStage: perStage((s) => s.waitMsMean),
        bubbleMeasured: median(reports.map((rep) => rep.bubble.measured ?? 0)),
        bubbleTheoretical: reports[0]!.bubble.theoretical,
        speedupVsOneStage: oneStage === null ? null : tokensPerSecond / oneStage,
      });
    }
  }
  return { cases, settings: { steps: o.steps, repeat: o.repeat, blocks: o.blocks, note: 'step times exclude the first (warm-up) step' } };
}
