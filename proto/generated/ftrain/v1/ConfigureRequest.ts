// Original file: proto/ftrain.proto

import type { ProtectionPlan as _ftrain_v1_ProtectionPlan, ProtectionPlan__Output as _ftrain_v1_ProtectionPlan__Output } from '../../ftrain/v1/ProtectionPlan';
import type { Long } from '@grpc/proto-loader';

export interface ConfigureRequest {
  'plan'?: (_ftrain_v1_ProtectionPlan | null);
  'protectedCommitStep'?: (number | string | Long);
  'holdMs'?: (number);
}

export interface ConfigureRequest__Output {
  'plan': (_ftrain_v1_ProtectionPlan__Output | null);
  'protectedCommitStep': (number);
  'holdMs': (number);
}
