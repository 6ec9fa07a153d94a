// What a standby worker does ahead, before it takes over a crashed worker's place: load the gRPC
// definitions and initialise the tfjs backend (for wasm: fetch and compile its module), then run
// one tiny op so the backend's first-use paths have run. It binds no port, opens no connection,
// and creates no variable: a worker that takes over after it behaves, and computes, exactly as a
// freshly started one (its assignment sets the job's backend as always; a backend warmed here
// that the job does not use only costs the memory it took).

import { loadProto } from '../common/proto.ts';
import { errorMessage } from '../domain/errors.ts';
import type { Backend } from '../domain/job-options.ts';
import { useBackend } from './tfjs-backend.ts';

/** How the warm-up went: its duration, and why it failed (the worker then starts cold). */
export interface WarmUp {
  readonly backend: Backend;
  readonly ms: number;
  /** null when the backend is ready; otherwise the error, which the job's assignment meets again. */
  readonly failure: string | null;
}

export async function warmUp(backend: Backend): Promise<WarmUp> {
  const started = performance.now();
  try {
    loadProto();
    const tf = await useBackend(backend);
    tf.tidy(() => tf.matMul(tf.ones([2, 2]), tf.ones([2, 2])).dataSync());
    return { backend, ms: performance.now() - started, failure: null };
  } catch (err) {
    return { backend, ms: performance.now() - started, failure: errorMessage(err) };
  }
}
