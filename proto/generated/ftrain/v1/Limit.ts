// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface Limit {
  'toStep'?: (number | string | Long);
  'pause'?: (boolean);
}

export interface Limit__Output {
  'toStep': (number);
  'pause': (boolean);
}
