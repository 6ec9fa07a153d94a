// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface Halt {
  'epoch'?: (number | string | Long);
  'reason'?: (string);
  'resumeAtMost'?: (number | string | Long);
}

export interface Halt__Output {
  'epoch': (number);
  'reason': (string);
  'resumeAtMost': (number);
}
