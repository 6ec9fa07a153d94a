// Original file: proto/ftrain.proto

import type { ProtectionStatus as _ftrain_v1_ProtectionStatus, ProtectionStatus__Output as _ftrain_v1_ProtectionStatus__Output } from '../../ftrain/v1/ProtectionStatus';
import type { Long } from '@grpc/proto-loader';

export interface StepReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'step'?: (number | string | Long);
  'loss'?: (number | string);
  'gradNorm'?: (number | string);
  'clippedGradNorm'?: (number | string);
  'computeMs'?: (number | string);
  'waitMs'?: (number | string);
  'stepMs'?: (number | string);
  'tokens'?: (number | string | Long);
  'last'?: (boolean);
  'epoch'?: (number | string | Long);
  'snapshotStep'?: (number | string | Long);
  'snapshotStallMs'?: (number | string);
  'snapshotCopyMs'?: (number | string);
  'snapshotBytes'?: (number | string | Long);
  'protection'?: (_ftrain_v1_ProtectionStatus | null);
  'allReduceMs'?: (number | string);
  'weightsDigest'?: (string);
}

export interface StepReport__Output {
  'nodeId': (string);
  'stage': (number);
  'step': (number);
  'loss': (number);
  'gradNorm': (number);
  'clippedGradNorm': (number);
  'computeMs': (number);
  'waitMs': (number);
  'stepMs': (number);
  'tokens': (number);
  'last': (boolean);
  'epoch': (number);
  'snapshotStep': (number);
  'snapshotStallMs': (number);
  'snapshotCopyMs': (number);
  'snapshotBytes': (number);
  'protection': (_ftrain_v1_ProtectionStatus__Output | null);
  'allReduceMs': (number);
  'weightsDigest': (string);
}
