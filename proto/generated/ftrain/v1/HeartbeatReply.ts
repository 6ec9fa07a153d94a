// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface HeartbeatReply {
  'leaseMs'?: (number | string | Long);
  'leaderUnsure'?: (boolean);
}

export interface HeartbeatReply__Output {
  'leaseMs': (number);
  'leaderUnsure': (boolean);
}
