import { Worker, type WorkerOptions } from 'node:worker_threads';
import { COMPILED, packageUrl, runtimeModule } from './package-root.ts';

/** Registers tsx in a new thread, then imports workerData.tsModule (threads do not inherit tsx). */
const BOOTSTRAP = packageUrl('common/ts-thread.mjs');

/**
 * Starts a worker thread running the TypeScript module `module` (`new URL('./x.ts', import.meta.url)`).
 * Compiled, the thread runs the module's .js itself; from the sources, it runs the tsx bootstrap,
 * and its workerData also gets `tsModule`.
 */
export function startTsThread(module: URL, data: Record<string, unknown> = {}, options: Omit<WorkerOptions, 'workerData'> = {}): Worker {
  if (!COMPILED) return new Worker(BOOTSTRAP, { ...options, workerData: { ...data, tsModule: module.href } });
  // Under FTRAIN_DEBUG bin/ftrain.js switches source maps on for the main thread; threads do not inherit that.
  const debug = process.env.FTRAIN_DEBUG ? { execArgv: [...(options.execArgv ?? process.execArgv), '--enable-source-maps'] } : {};
  return new Worker(runtimeModule(module), { ...options, ...debug, workerData: data });
}
