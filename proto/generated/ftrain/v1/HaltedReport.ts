// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface HaltedReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'epoch'?: (number | string | Long);
  'snapshotSteps'?: (number | string | Long)[];
  'memoryStep'?: (number | string | Long);
}

export interface HaltedReport__Output {
  'nodeId': (string);
  'stage': (number);
  'epoch': (number);
  'snapshotSteps': (number)[];
  'memoryStep': (number);
}
