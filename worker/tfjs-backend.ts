// Loads @tensorflow/tfjs with the requested backend. `tensorflow` needs the optional
// @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node package, never part of the default install.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BackendUnavailableError } from '../common/errors.ts';
import type { Backend } from '../common/job-options.ts';

const NATIVE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export async function useBackend(backend: Backend): Promise<typeof tf> {
  if (backend === 'tensorflow') {
    const causes: unknown[] = [];
    let loaded = false;
    for (const name of NATIVE_PACKAGES) {
      try {
        await import(/* @vite-ignore */ name as string);
        loaded = true;
        break;
      } catch (err) {
        causes.push(err);
      }
    }
    if (!loaded) {
      throw new BackendUnavailableError(
        backend,
        'backend "tensorflow" needs @tensorflow/tfjs-node-gpu (GPU) or @tensorflow/tfjs-node (CPU), and neither is installed. Install one (`npm install @tensorflow/tfjs-node-gpu`; it downloads libtensorflow) or use --backend wasm or cpu.',
        { cause: causes[0] },
      );
    }
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new BackendUnavailableError(backend, `tfjs could not initialise backend "${backend}"`);
  await tf.ready();
  return tf;
}

export { tf };
