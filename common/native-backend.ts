// The optional packages behind `--backend tensorflow`. They download libtensorflow at install
// time, so they are never part of the default install.

import { BackendUnavailableError } from '../domain/errors.ts';

/** Tried in this order: the GPU build first. */
export const NATIVE_BACKEND_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'] as const;

export function nativeBackendMissing(cause?: unknown): BackendUnavailableError {
  return new BackendUnavailableError(
    'tensorflow',
    'backend "tensorflow" needs @tensorflow/tfjs-node-gpu (GPU) or @tensorflow/tfjs-node (CPU), and neither is installed. Install one (`npm install @tensorflow/tfjs-node-gpu`; it downloads libtensorflow) or use --backend wasm or cpu.',
    { cause },
  );
}
