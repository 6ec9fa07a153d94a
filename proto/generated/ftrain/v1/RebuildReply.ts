// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface RebuildReply {
  'bytes'?: (number | string | Long);
  'usedShards'?: (number)[];
  'corruptShards'?: (number)[];
  'fetchMs'?: (number | string);
  'decodeMs'?: (number | string);
}

export interface RebuildReply__Output {
  'bytes': (number);
  'usedShards': (number)[];
  'corruptShards': (number)[];
  'fetchMs': (number);
  'decodeMs': (number);
}
