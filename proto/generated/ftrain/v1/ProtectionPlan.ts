// Original file: proto/ftrain.proto

import type { ErasureCode as _ftrain_v1_ErasureCode, ErasureCode__Output as _ftrain_v1_ErasureCode__Output } from '../../ftrain/v1/ErasureCode';
import type { PlacedNode as _ftrain_v1_PlacedNode, PlacedNode__Output as _ftrain_v1_PlacedNode__Output } from '../../ftrain/v1/PlacedNode';

export interface ProtectionPlan {
  'stage'?: (number);
  'code'?: (_ftrain_v1_ErasureCode | null);
  'holders'?: (_ftrain_v1_PlacedNode)[];
  'degraded'?: (boolean);
}

export interface ProtectionPlan__Output {
  'stage': (number);
  'code': (_ftrain_v1_ErasureCode__Output | null);
  'holders': (_ftrain_v1_PlacedNode__Output)[];
  'degraded': (boolean);
}
