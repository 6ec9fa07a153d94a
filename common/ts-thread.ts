import { Worker, type WorkerOptions } from 'node:worker_threads';

const BOOTSTRAP = new URL('./ts-thread.mjs', import.meta.url);

/** Starts a worker thread running the TypeScript module `module`; its workerData gets `tsModule`. */
export function startTsThread(module: URL, data: Record<string, unknown> = {}, options: Omit<WorkerOptions, 'workerData'> = {}): Worker {
  return new Worker(BOOTSTRAP, { ...options, workerData: { ...data, tsModule: module.href } });
}
