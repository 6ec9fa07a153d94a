// Original file: proto/ftrain.proto

import type { ShardLayout as _ftrain_v1_ShardLayout, ShardLayout__Output as _ftrain_v1_ShardLayout__Output } from '../../ftrain/v1/ShardLayout';
import type { SnapshotHeader as _ftrain_v1_SnapshotHeader, SnapshotHeader__Output as _ftrain_v1_SnapshotHeader__Output } from '../../ftrain/v1/SnapshotHeader';
import type { Long } from '@grpc/proto-loader';

export interface ShardHeader {
  'ownerNodeId'?: (string);
  'stage'?: (number);
  'step'?: (number | string | Long);
  'epoch'?: (number | string | Long);
  'index'?: (number);
  'crc32'?: (number);
  'bytes'?: (number | string | Long);
  'layout'?: (_ftrain_v1_ShardLayout | null);
  'snapshot'?: (_ftrain_v1_SnapshotHeader | null);
  'protectedCommitStep'?: (number | string | Long);
}

export interface ShardHeader__Output {
  'ownerNodeId': (string);
  'stage': (number);
  'step': (number);
  'epoch': (number);
  'index': (number);
  'crc32': (number);
  'bytes': (number);
  'layout': (_ftrain_v1_ShardLayout__Output | null);
  'snapshot': (_ftrain_v1_SnapshotHeader__Output | null);
  'protectedCommitStep': (number);
}
