// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ConfigureRequest {
  'planJson'?: (string);
  'protectedCommitStep'?: (number | string | Long);
}

export interface ConfigureRequest__Output {
  'planJson': (string);
  'protectedCommitStep': (number);
}
