// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface Assign {
  'stage'?: (number);
  'numStages'?: (number);
  'prevAddress'?: (string);
  'nextAddress'?: (string);
  'jobJson'?: (string);
  'dataSha256'?: (string);
  'epoch'?: (number | string | Long);
  'restoreStep'?: (number | string | Long);
  'injectionsJson'?: (string);
  'planJson'?: (string);
  'rebuildJson'?: (string);
  'checkfreeJson'?: (string);
}

export interface Assign__Output {
  'stage': (number);
  'numStages': (number);
  'prevAddress': (string);
  'nextAddress': (string);
  'jobJson': (string);
  'dataSha256': (string);
  'epoch': (number);
  'restoreStep': (number);
  'injectionsJson': (string);
  'planJson': (string);
  'rebuildJson': (string);
  'checkfreeJson': (string);
}
