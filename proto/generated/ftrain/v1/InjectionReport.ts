// Original file: proto/ftrain.proto

import type { InjectionKind as _ftrain_v1_InjectionKind, InjectionKind__Output as _ftrain_v1_InjectionKind__Output } from '../../ftrain/v1/InjectionKind';
import type { Long } from '@grpc/proto-loader';

export interface InjectionReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'step'?: (number | string | Long);
  'kind'?: (_ftrain_v1_InjectionKind);
}

export interface InjectionReport__Output {
  'nodeId': (string);
  'stage': (number);
  'step': (number);
  'kind': (_ftrain_v1_InjectionKind__Output);
}
