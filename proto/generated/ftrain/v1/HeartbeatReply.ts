// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatReply {
  'leaseMs'?: (number | string | Long);
}

export interface HeartbeatReply__Output {
  'leaseMs': (number);
}
