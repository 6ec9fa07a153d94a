// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface SnapshotInterval {
  'fromStep'?: (number | string | Long);
  'every'?: (number);
}

export interface SnapshotInterval__Output {
  'fromStep': (number);
  'every': (number);
}
