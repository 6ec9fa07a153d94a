// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface Inject {
  'kind'?: (string);
  'step'?: (number | string | Long);
}

export interface Inject__Output {
  'kind': (string);
  'step': (number);
}
