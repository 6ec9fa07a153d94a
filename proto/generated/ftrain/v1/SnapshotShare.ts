// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface SnapshotShare {
  'index'?: (number);
  'count'?: (number);
  'offset'?: (number | string | Long);
  'wholeBytes'?: (number | string | Long);
}

export interface SnapshotShare__Output {
  'index': (number);
  'count': (number);
  'offset': (number);
  'wholeBytes': (number);
}
