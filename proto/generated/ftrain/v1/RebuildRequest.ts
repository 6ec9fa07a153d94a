// Original file: proto/ftrain.proto

import type { RebuildOrder as _ftrain_v1_RebuildOrder, RebuildOrder__Output as _ftrain_v1_RebuildOrder__Output } from '../../ftrain/v1/RebuildOrder';

export interface RebuildRequest {
  'order'?: (_ftrain_v1_RebuildOrder | null);
}

export interface RebuildRequest__Output {
  'order': (_ftrain_v1_RebuildOrder__Output | null);
}
