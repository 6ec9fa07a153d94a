// Original file: proto/ftrain.proto

import type { StageSource as _ftrain_v1_StageSource, StageSource__Output as _ftrain_v1_StageSource__Output } from '../../ftrain/v1/StageSource';

export interface CheckfreeCopy {
  'from'?: (_ftrain_v1_StageSource | null);
}

export interface CheckfreeCopy__Output {
  'from': (_ftrain_v1_StageSource__Output | null);
}
