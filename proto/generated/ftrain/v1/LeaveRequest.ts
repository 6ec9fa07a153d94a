// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface LeaveRequest {
  'nodeId'?: (string);
  'graceMs'?: (number | string | Long);
  'reason'?: (string);
}

export interface LeaveRequest__Output {
  'nodeId': (string);
  'graceMs': (number);
  'reason': (string);
}
