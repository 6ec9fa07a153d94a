// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface FetchStateRequest {
  'slot'?: (number);
  'step'?: (number | string | Long);
}

export interface FetchStateRequest__Output {
  'slot': (number);
  'step': (number);
}
