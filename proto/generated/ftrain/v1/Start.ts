// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface Start {
  'fromStep'?: (number | string | Long);
  'toStep'?: (number | string | Long);
  'restoreCheckpointStep'?: (number | string | Long);
  'fromScratch'?: (boolean);
}

export interface Start__Output {
  'fromStep': (number);
  'toStep': (number);
  'restoreCheckpointStep': (number);
  'fromScratch': (boolean);
}
