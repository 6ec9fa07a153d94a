// Original file: proto/ftrain.proto

import type { ProtectionPlan as _ftrain_v1_ProtectionPlan, ProtectionPlan__Output as _ftrain_v1_ProtectionPlan__Output } from '../../ftrain/v1/ProtectionPlan';

export interface Protect {
  'plan'?: (_ftrain_v1_ProtectionPlan | null);
}

export interface Protect__Output {
  'plan': (_ftrain_v1_ProtectionPlan__Output | null);
}
