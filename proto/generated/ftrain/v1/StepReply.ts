// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface StepReply {
  'protectedCommitStep'?: (number | string | Long);
}

export interface StepReply__Output {
  'protectedCommitStep': (number);
}
