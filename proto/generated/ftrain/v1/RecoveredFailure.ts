// Original file: proto/ftrain.proto

import type { RecoveryMethod as _ftrain_v1_RecoveryMethod, RecoveryMethod__Output as _ftrain_v1_RecoveryMethod__Output } from '../../ftrain/v1/RecoveryMethod';
import type { Long } from '@grpc/proto-loader';

export interface RecoveredFailure {
  'step'?: (number | string | Long);
  'stage'?: (number);
  'nodeId'?: (string);
  'kind'?: (string);
  'method'?: (_ftrain_v1_RecoveryMethod);
  'detail'?: (string);
  'detectMs'?: (number | string);
  'detectedAtMs'?: (number | string);
  'recoverMs'?: (number | string);
  'handoverMs'?: (number | string);
  'lostSteps'?: (number | string | Long);
  'restoredStep'?: (number | string | Long);
  'caughtUpMs'?: (number | string);
}

export interface RecoveredFailure__Output {
  'step': (number);
  'stage': (number);
  'nodeId': (string);
  'kind': (string);
  'method': (_ftrain_v1_RecoveryMethod__Output);
  'detail': (string);
  'detectMs': (number);
  'detectedAtMs': (number);
  'recoverMs': (number);
  'handoverMs': (number);
  'lostSteps': (number);
  'restoredStep': (number);
  'caughtUpMs': (number);
}
