// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface RegisterReply {
  'nodeId'?: (string);
  'leaseMs'?: (number | string | Long);
  'heartbeatMs'?: (number | string | Long);
  'term'?: (number | string | Long);
  'heartbeatPort'?: (number);
}

export interface RegisterReply__Output {
  'nodeId': (string);
  'leaseMs': (number);
  'heartbeatMs': (number);
  'term': (number);
  'heartbeatPort': (number);
}
