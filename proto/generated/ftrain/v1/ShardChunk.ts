// Original file: proto/ftrain.proto

import type { ShardHeader as _ftrain_v1_ShardHeader, ShardHeader__Output as _ftrain_v1_ShardHeader__Output } from '../../ftrain/v1/ShardHeader';

export interface ShardChunk {
  'header'?: (_ftrain_v1_ShardHeader | null);
  'data'?: (Buffer | Uint8Array | string);
}

export interface ShardChunk__Output {
  'header': (_ftrain_v1_ShardHeader__Output | null);
  'data': (Buffer);
}
