// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ProtectedVersion {
  'step'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'holders'?: (string)[];
}

export interface ProtectedVersion__Output {
  'step': (number);
  'epoch': (number);
  'holders': (string)[];
}
