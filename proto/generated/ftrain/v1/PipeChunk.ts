// Original file: proto/ftrain.proto

import type { PipeKind as _ftrain_v1_PipeKind, PipeKind__Output as _ftrain_v1_PipeKind__Output } from '../../ftrain/v1/PipeKind';
import type { Long } from '@grpc/proto-loader';

export interface PipeChunk {
  'kind'?: (_ftrain_v1_PipeKind);
  'fromStage'?: (number);
  'step'?: (number | string | Long);
  'microBatch'?: (number);
  'shape'?: (number)[];
  'chunkIndex'?: (number);
  'chunkCount'?: (number);
  'data'?: (Buffer | Uint8Array | string);
  'epoch'?: (number | string | Long);
  'hop'?: (number);
}

export interface PipeChunk__Output {
  'kind': (_ftrain_v1_PipeKind__Output);
  'fromStage': (number);
  'step': (number);
  'microBatch': (number);
  'shape': (number)[];
  'chunkIndex': (number);
  'chunkCount': (number);
  'data': (Buffer);
  'epoch': (number);
  'hop': (number);
}
