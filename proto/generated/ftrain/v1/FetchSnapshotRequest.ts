// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchSnapshotRequest {
  'stage'?: (number);
  'step'?: (number | string | Long);
  'waitMs'?: (number);
}

export interface FetchSnapshotRequest__Output {
  'stage': (number);
  'step': (number);
  'waitMs': (number);
}
