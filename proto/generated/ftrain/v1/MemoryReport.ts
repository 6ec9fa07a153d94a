// Original file: proto/ftrain.proto

import type { ProcessMemory as _ftrain_v1_ProcessMemory, ProcessMemory__Output as _ftrain_v1_ProcessMemory__Output } from '../../ftrain/v1/ProcessMemory';
import type { Long } from '@grpc/proto-loader';

export interface MemoryReport {
  'nodeId'?: (string);
  'smpAddress'?: (string);
  'process'?: (_ftrain_v1_ProcessMemory | null);
  'slotBytes'?: (number | string | Long);
  'peakSlotBytes'?: (number | string | Long);
  'shardBytes'?: (number | string | Long);
  'peakShardBytes'?: (number | string | Long);
}

export interface MemoryReport__Output {
  'nodeId': (string);
  'smpAddress': (string);
  'process': (_ftrain_v1_ProcessMemory__Output | null);
  'slotBytes': (number);
  'peakSlotBytes': (number);
  'shardBytes': (number);
  'peakShardBytes': (number);
}
