// Original file: proto/ftrain.proto

import type { RunPhase as _ftrain_v1_RunPhase, RunPhase__Output as _ftrain_v1_RunPhase__Output } from '../../ftrain/v1/RunPhase';
import type { RunFailure as _ftrain_v1_RunFailure, RunFailure__Output as _ftrain_v1_RunFailure__Output } from '../../ftrain/v1/RunFailure';
import type { RecoveredFailure as _ftrain_v1_RecoveredFailure, RecoveredFailure__Output as _ftrain_v1_RecoveredFailure__Output } from '../../ftrain/v1/RecoveredFailure';
import type { Long } from '@grpc/proto-loader';

export interface RunSummary {
  'phase'?: (_ftrain_v1_RunPhase);
  'epoch'?: (number | string | Long);
  'completedSteps'?: (number | string | Long);
  'failure'?: (_ftrain_v1_RunFailure | null);
  'failures'?: (_ftrain_v1_RecoveredFailure)[];
}

export interface RunSummary__Output {
  'phase': (_ftrain_v1_RunPhase__Output);
  'epoch': (number);
  'completedSteps': (number);
  'failure': (_ftrain_v1_RunFailure__Output | null);
  'failures': (_ftrain_v1_RecoveredFailure__Output)[];
}
