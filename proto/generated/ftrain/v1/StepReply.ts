// Original file: proto/ftrain.proto

import type { SnapshotInterval as _ftrain_v1_SnapshotInterval, SnapshotInterval__Output as _ftrain_v1_SnapshotInterval__Output } from '../../ftrain/v1/SnapshotInterval';
import type { Long } from '@grpc/proto-loader';

export interface StepReply {
  'protectedCommitStep'?: (number | string | Long);
  'snapshotInterval'?: (_ftrain_v1_SnapshotInterval | null);
}

export interface StepReply__Output {
  'protectedCommitStep': (number);
  'snapshotInterval': (_ftrain_v1_SnapshotInterval__Output | null);
}
