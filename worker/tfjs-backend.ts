// Loads @tensorflow/tfjs with the requested backend. `tensorflow` needs the optional
// @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node package, never part of the default install.

import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { BackendUnavailableError } from '../domain/errors.ts';
import type { Backend } from '../domain/job-options.ts';
import { NATIVE_BACKEND_PACKAGES, nativeBackendMissing } from '../common/native-backend.ts';

export async function useBackend(backend: Backend): Promise<typeof tf> {
  if (backend === 'tensorflow') {
    const causes: unknown[] = [];
    let loaded = false;
    for (const name of NATIVE_BACKEND_PACKAGES) {
      try {
        await import(/* @vite-ignore */ name as string);
        loaded = true;
        break;
      } catch (err) {
        causes.push(err);
      }
    }
    if (!loaded) throw nativeBackendMissing(causes[0]);
  }
  const ok = await tf.setBackend(backend);
  if (!ok) throw new BackendUnavailableError(backend, `tfjs could not initialise backend "${backend}"`);
  await tf.ready();
  if (backend === 'wasm') shareOnIdentity();
  return tf;
}

interface WasmData {
  readonly dataId: object;
  readonly shape: number[];
  readonly dtype: tf.DataType;
}

/**
 * The wasm backend's Identity copies its input; tfjs clones every tensor it saves for a backward
 * pass with it, the weights of each matMul included, so a backward held a copy of every weight
 * of the stage (a third of the training state) until it ended. Tensors are immutable, and the
 * cpu backend's Identity shares the data: so does this one, counting the reference as Reshape
 * does. The values are the same bytes; only the copy goes.
 */
function shareOnIdentity(): void {
  if (tf.getKernel('Identity', 'wasm')?.kernelFunc === shareData) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({ kernelName: 'Identity', backendName: 'wasm', kernelFunc: shareData as unknown as tf.KernelFunc });
}

function shareData(args: { inputs: { x: WasmData }; backend: { incRef(dataId: object): void } }): WasmData {
  const { x } = args.inputs;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/**
 * A float32 tensor whose values are about to be overwritten in full (a stage restored from a
 * snapshot at once): on wasm its heap memory is allocated and not written, so the restore's read
 * is the first and only touch of it; elsewhere zeros.
 */
export function unwritten(shape: readonly number[]): tf.Tensor {
  const backend = tf.backend() as unknown as { makeOutput?: (shape: number[], dtype: 'float32') => tf.TensorInfo };
  if (tf.getBackend() !== 'wasm' || typeof backend.makeOutput !== 'function') return tf.zeros([...shape], 'float32');
  return tf.engine().makeTensorFromTensorInfo(backend.makeOutput([...shape], 'float32'));
}

/**
 * A float32 tensor's values, to be read at once (before tfjs runs anything else): on the wasm
 * backend a view of its heap, not a copy (the one copy is the caller's); elsewhere what
 * dataSync gives (the cpu backend's own array; a copy on the native one).
 */
export function valuesToReadNow(tensor: tf.Tensor): Float32Array {
  const backend = tf.backend() as unknown as { typedArrayFromHeap?: (t: tf.Tensor) => Float32Array };
  if (tf.getBackend() === 'wasm' && tensor.dtype === 'float32' && typeof backend.typedArrayFromHeap === 'function') return backend.typedArrayFromHeap(tensor);
  return tensor.dataSync() as Float32Array;
}

/**
 * A variable made from `initial`, which it takes over: the tensor is disposed, so the variable
 * alone holds the data and its first assignment frees it. (A variable shares its initial
 * tensor's data; left alive, that tensor would keep every initial value in memory for the run.)
 */
export function variableOf(initial: tf.Tensor, trainable: boolean, name?: string): tf.Variable {
  const v = tf.variable(initial, trainable, name);
  initial.dispose();
  return v;
}

/** Assigns `value` to `v` and disposes the tensor: `v` alone keeps the data, as with variableOf. */
export function assignOwned(v: tf.Variable, value: tf.Tensor): void {
  v.assign(value);
  value.dispose();
}

/**
 * A float32 tensor's own storage, to be written at once (before tfjs runs anything else) when the
 * backend allows it: on wasm a view of its heap, on cpu the backend's own array; null elsewhere
 * (the native backend gives copies). Only for a tensor that alone holds its data (a variable).
 */
export function valuesToWriteNow(tensor: tf.Tensor): Float32Array | null {
  if (tensor.dtype !== 'float32') return null;
  const name = tf.getBackend();
  if (name !== 'wasm' && name !== 'cpu') return null;
  // Shared data (a clone or a reshape alive somewhere) would change under the write.
  const backend = tf.backend() as unknown as { refCount(dataId: object): number };
  if (backend.refCount(tensor.dataId) !== 1) return null;
  return valuesToReadNow(tensor);
}

export { tf };
