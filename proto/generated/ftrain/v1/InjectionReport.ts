// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface InjectionReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'step'?: (number | string | Long);
  'kind'?: (string);
}

export interface InjectionReport__Output {
  'nodeId': (string);
  'stage': (number);
  'step': (number);
  'kind': (string);
}
