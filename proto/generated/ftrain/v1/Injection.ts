// Original file: proto/ftrain.proto

import type { InjectionKind as _ftrain_v1_InjectionKind, InjectionKind__Output as _ftrain_v1_InjectionKind__Output } from '../../ftrain/v1/InjectionKind';
import type { Long } from '@grpc/proto-loader';

export interface Injection {
  'step'?: (number | string | Long);
  'stage'?: (number);
  'kind'?: (_ftrain_v1_InjectionKind);
  'replica'?: (number);
}

export interface Injection__Output {
  'step': (number);
  'stage': (number);
  'kind': (_ftrain_v1_InjectionKind__Output);
  'replica': (number);
}
