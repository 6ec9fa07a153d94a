// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchShardsRequest {
  'stage'?: (number);
  'step'?: (number | string | Long);
  'epoch'?: (number | string | Long);
}

export interface FetchShardsRequest__Output {
  'stage': (number);
  'step': (number);
  'epoch': (number);
}
