// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface TensorChunk {
  'name'?: (string);
  'shape'?: (number)[];
  'chunkIndex'?: (number);
  'chunkCount'?: (number);
  'data'?: (Buffer | Uint8Array | string);
  'step'?: (number | string | Long);
}

export interface TensorChunk__Output {
  'name': (string);
  'shape': (number)[];
  'chunkIndex': (number);
  'chunkCount': (number);
  'data': (Buffer);
  'step': (number);
}
