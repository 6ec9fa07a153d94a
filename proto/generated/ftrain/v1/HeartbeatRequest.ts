// Original file: proto/ftrain.proto

import type { ProcessMemory as _ftrain_v1_ProcessMemory, ProcessMemory__Output as _ftrain_v1_ProcessMemory__Output } from '../../ftrain/v1/ProcessMemory';

export interface HeartbeatRequest {
  'nodeId'?: (string);
  'memory'?: (_ftrain_v1_ProcessMemory | null);
}

export interface HeartbeatRequest__Output {
  'nodeId': (string);
  'memory': (_ftrain_v1_ProcessMemory__Output | null);
}
