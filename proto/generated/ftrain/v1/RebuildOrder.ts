// Original file: proto/ftrain.proto

import type { ErasureCode as _ftrain_v1_ErasureCode, ErasureCode__Output as _ftrain_v1_ErasureCode__Output } from '../../ftrain/v1/ErasureCode';
import type { Long } from '@grpc/proto-loader';

export interface RebuildOrder {
  'stage'?: (number);
  'step'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'code'?: (_ftrain_v1_ErasureCode | null);
  'sources'?: (string)[];
}

export interface RebuildOrder__Output {
  'stage': (number);
  'step': (number);
  'epoch': (number);
  'code': (_ftrain_v1_ErasureCode__Output | null);
  'sources': (string)[];
}
