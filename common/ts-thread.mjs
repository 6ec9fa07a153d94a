// Bootstrap of a worker thread that runs a TypeScript module: threads do not inherit the tsx
// loader of the main thread, so each registers it again. workerData.tsModule is the module URL.
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.tsModule);
