// Original file: proto/ftrain.proto

import type { RebuildOrder as _ftrain_v1_RebuildOrder, RebuildOrder__Output as _ftrain_v1_RebuildOrder__Output } from '../../ftrain/v1/RebuildOrder';
import type { ReplicaCopyOrder as _ftrain_v1_ReplicaCopyOrder, ReplicaCopyOrder__Output as _ftrain_v1_ReplicaCopyOrder__Output } from '../../ftrain/v1/ReplicaCopyOrder';

export interface RebuildRequest {
  'order'?: (_ftrain_v1_RebuildOrder | null);
  'copy'?: (_ftrain_v1_ReplicaCopyOrder | null);
}

export interface RebuildRequest__Output {
  'order': (_ftrain_v1_RebuildOrder__Output | null);
  'copy': (_ftrain_v1_ReplicaCopyOrder__Output | null);
}
