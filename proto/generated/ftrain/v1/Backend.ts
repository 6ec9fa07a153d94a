// Original file: proto/ftrain.proto

export const Backend = {
  BACKEND_UNSPECIFIED: 'BACKEND_UNSPECIFIED',
  BACKEND_WASM: 'BACKEND_WASM',
  BACKEND_CPU: 'BACKEND_CPU',
  BACKEND_TENSORFLOW: 'BACKEND_TENSORFLOW',
} as const;

export type Backend =
  | 'BACKEND_UNSPECIFIED'
  | 0
  | 'BACKEND_WASM'
  | 1
  | 'BACKEND_CPU'
  | 2
  | 'BACKEND_TENSORFLOW'
  | 3

export type Backend__Output = typeof Backend[keyof typeof Backend]
