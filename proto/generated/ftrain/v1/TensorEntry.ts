// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface TensorEntry {
  'name'?: (string);
  'shape'?: (number)[];
  'offset'?: (number | string | Long);
  'length'?: (number | string | Long);
}

export interface TensorEntry__Output {
  'name': (string);
  'shape': (number)[];
  'offset': (number);
  'length': (number);
}
