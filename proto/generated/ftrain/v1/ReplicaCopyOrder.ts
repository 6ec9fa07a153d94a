// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ReplicaCopyOrder {
  'stage'?: (number);
  'step'?: (number | string | Long);
  'fromStage'?: (number);
  'fromAddress'?: (string);
}

export interface ReplicaCopyOrder__Output {
  'stage': (number);
  'step': (number);
  'fromStage': (number);
  'fromAddress': (string);
}
