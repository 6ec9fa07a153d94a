// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ReduceChunk {
  'epoch'?: (number | string | Long);
  'stage'?: (number);
  'fromReplica'?: (number);
  'step'?: (number | string | Long);
  'ringStep'?: (number);
  'ringChunk'?: (number);
  'chunkIndex'?: (number);
  'chunkCount'?: (number);
  'data'?: (Buffer | Uint8Array | string);
  'bucket'?: (number);
}

export interface ReduceChunk__Output {
  'epoch': (number);
  'stage': (number);
  'fromReplica': (number);
  'step': (number);
  'ringStep': (number);
  'ringChunk': (number);
  'chunkIndex': (number);
  'chunkCount': (number);
  'data': (Buffer);
  'bucket': (number);
}
