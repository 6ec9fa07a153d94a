// Original file: proto/ftrain.proto

import type { SnapshotHeader as _ftrain_v1_SnapshotHeader, SnapshotHeader__Output as _ftrain_v1_SnapshotHeader__Output } from '../../ftrain/v1/SnapshotHeader';
import type { Long } from '@grpc/proto-loader';

export interface SnapshotChunk {
  'header'?: (_ftrain_v1_SnapshotHeader | null);
  'crc32'?: (number);
  'bytes'?: (number | string | Long);
  'data'?: (Buffer | Uint8Array | string);
}

export interface SnapshotChunk__Output {
  'header': (_ftrain_v1_SnapshotHeader__Output | null);
  'crc32': (number);
  'bytes': (number);
  'data': (Buffer);
}
