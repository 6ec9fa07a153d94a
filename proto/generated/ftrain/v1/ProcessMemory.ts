// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface ProcessMemory {
  'rssBytes'?: (number | string | Long);
  'peakRssBytes'?: (number | string | Long);
}

export interface ProcessMemory__Output {
  'rssBytes': (number);
  'peakRssBytes': (number);
}
