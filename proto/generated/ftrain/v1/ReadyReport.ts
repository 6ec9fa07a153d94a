// Original file: proto/ftrain.proto

import type { RestoreTrace as _ftrain_v1_RestoreTrace, RestoreTrace__Output as _ftrain_v1_RestoreTrace__Output } from '../../ftrain/v1/RestoreTrace';
import type { Long } from '@grpc/proto-loader';

export interface ReadyReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'epoch'?: (number | string | Long);
  'checkpointSteps'?: (number | string | Long)[];
  'trace'?: (_ftrain_v1_RestoreTrace | null);
}

export interface ReadyReport__Output {
  'nodeId': (string);
  'stage': (number);
  'epoch': (number);
  'checkpointSteps': (number)[];
  'trace': (_ftrain_v1_RestoreTrace__Output | null);
}
