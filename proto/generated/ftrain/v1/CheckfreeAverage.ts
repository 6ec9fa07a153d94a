// Original file: proto/ftrain.proto

import type { StageSource as _ftrain_v1_StageSource, StageSource__Output as _ftrain_v1_StageSource__Output } from '../../ftrain/v1/StageSource';

export interface CheckfreeAverage {
  'prev'?: (_ftrain_v1_StageSource | null);
  'next'?: (_ftrain_v1_StageSource | null);
  'a'?: (number | string);
  'b'?: (number | string);
}

export interface CheckfreeAverage__Output {
  'prev': (_ftrain_v1_StageSource__Output | null);
  'next': (_ftrain_v1_StageSource__Output | null);
  'a': (number);
  'b': (number);
}
