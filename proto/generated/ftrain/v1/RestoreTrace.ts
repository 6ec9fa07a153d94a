// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface RestoreTrace {
  'buildMs'?: (number | string);
  'rebuildFetchMs'?: (number | string);
  'rebuildDecodeMs'?: (number | string);
  'rebuildMs'?: (number | string);
  'restoreMs'?: (number | string);
  'prepareMs'?: (number | string);
  'connectMs'?: (number | string);
  'bytes'?: (number | string | Long);
}

export interface RestoreTrace__Output {
  'buildMs': (number);
  'rebuildFetchMs': (number);
  'rebuildDecodeMs': (number);
  'rebuildMs': (number);
  'restoreMs': (number);
  'prepareMs': (number);
  'connectMs': (number);
  'bytes': (number);
}
