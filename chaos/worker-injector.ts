// `--inject` inside a worker: the worker's fault port (worker/fault-port.ts), wired in by the
// command line. A `worker-kill` of step S SIGKILLs the worker after the first micro-batch's
// forward of step S; on the last stage, whose forward runs with its backward, before that call,
// so no gradient of the step has left the worker. On the coordinator's machine its injection
// driver kills it the moment the announcement is recorded; elsewhere it kills itself on the
// answer. A `worker-kill-mid-snapshot` of step S kills it after its snapshot of the state after S
// steps is written and before it is committed (in the writer thread, through
// writer-kill-hook.ts). Each is announced to the coordinator first and happens once: a step
// trained again after a rollback is not hit again.

import type { InjectionKind } from '../domain/inject-spec.ts';
import type { JobOptions } from '../domain/job-options.ts';
import type { FaultPoint, WorkerFaults } from '../worker/fault-port.ts';

function planned(at: FaultPoint, kind: InjectionKind): boolean {
  return at.job.injections.some((i) => i.kind === kind && i.stage === at.stage && i.replica === at.replica && i.step === at.step);
}

export function workerInjector(): WorkerFaults {
  // The step (plus one) whose snapshot the writer thread dies before committing; 0: none.
  const dieBeforeCommit = new Int32Array(new SharedArrayBuffer(4));
  return {
    async midStep(at) {
      if (!planned(at, 'worker-kill') || !(await at.announce('worker-kill'))) return;
      process.kill(process.pid, 'SIGKILL');
    },
    async afterStep(at) {
      if (!planned(at, 'corrupt') || !at.corruptWeights || !(await at.announce('corrupt'))) return;
      at.corruptWeights();
    },
    async beforeSnapshot(at) {
      if (!planned(at, 'worker-kill-mid-snapshot') || !(await at.announce('worker-kill-mid-snapshot'))) return;
      Atomics.store(dieBeforeCommit, 0, at.step + 1);
    },
    writerThreadHooks(job: JobOptions) {
      if (!job.injections.some((i) => i.kind === 'worker-kill-mid-snapshot')) return null;
      return { module: new URL('./writer-kill-hook.ts', import.meta.url), data: { dieBeforeCommit: dieBeforeCommit.buffer } };
    },
  };
}
