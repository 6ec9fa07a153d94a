// Original file: proto/ftrain.proto

import type { ProtectionStatus as _ftrain_v1_ProtectionStatus, ProtectionStatus__Output as _ftrain_v1_ProtectionStatus__Output } from '../../ftrain/v1/ProtectionStatus';

export interface ProtectionReport {
  'nodeId'?: (string);
  'status'?: (_ftrain_v1_ProtectionStatus | null);
  'smpAddress'?: (string);
}

export interface ProtectionReport__Output {
  'nodeId': (string);
  'status': (_ftrain_v1_ProtectionStatus__Output | null);
  'smpAddress': (string);
}
