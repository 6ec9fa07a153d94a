// Original file: proto/ftrain.proto

import type { TensorEntry as _ftrain_v1_TensorEntry, TensorEntry__Output as _ftrain_v1_TensorEntry__Output } from '../../ftrain/v1/TensorEntry';
import type { SnapshotShare as _ftrain_v1_SnapshotShare, SnapshotShare__Output as _ftrain_v1_SnapshotShare__Output } from '../../ftrain/v1/SnapshotShare';
import type { Long } from '@grpc/proto-loader';

export interface SnapshotHeader {
  'stage'?: (number);
  'step'?: (number | string | Long);
  'tensors'?: (_ftrain_v1_TensorEntry)[];
  'scalars'?: ({[key: string]: number | string});
  'epoch'?: (number | string | Long);
  'share'?: (_ftrain_v1_SnapshotShare | null);
}

export interface SnapshotHeader__Output {
  'stage': (number);
  'step': (number);
  'tensors': (_ftrain_v1_TensorEntry__Output)[];
  'scalars': ({[key: string]: number});
  'epoch': (number);
  'share': (_ftrain_v1_SnapshotShare__Output | null);
}
