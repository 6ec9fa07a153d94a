// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ReadyReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'epoch'?: (number | string | Long);
  'checkpointSteps'?: (number | string | Long)[];
}

export interface ReadyReport__Output {
  'nodeId': (string);
  'stage': (number);
  'epoch': (number);
  'checkpointSteps': (number)[];
}
