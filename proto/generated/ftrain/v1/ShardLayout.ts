// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ShardLayout {
  'dataShards'?: (number);
  'parityShards'?: (number);
  'totalBytes'?: (number | string | Long);
  'stripeBytes'?: (number | string | Long);
  'stripes'?: (number);
}

export interface ShardLayout__Output {
  'dataShards': (number);
  'parityShards': (number);
  'totalBytes': (number);
  'stripeBytes': (number);
  'stripes': (number);
}
