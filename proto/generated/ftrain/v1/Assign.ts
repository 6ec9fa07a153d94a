// Original file: proto/ftrain.proto

import type { Job as _ftrain_v1_Job, Job__Output as _ftrain_v1_Job__Output } from '../../ftrain/v1/Job';
import type { ProtectionPlan as _ftrain_v1_ProtectionPlan, ProtectionPlan__Output as _ftrain_v1_ProtectionPlan__Output } from '../../ftrain/v1/ProtectionPlan';
import type { RebuildOrder as _ftrain_v1_RebuildOrder, RebuildOrder__Output as _ftrain_v1_RebuildOrder__Output } from '../../ftrain/v1/RebuildOrder';
import type { CheckfreeOrder as _ftrain_v1_CheckfreeOrder, CheckfreeOrder__Output as _ftrain_v1_CheckfreeOrder__Output } from '../../ftrain/v1/CheckfreeOrder';
import type { ReplicaCopyOrder as _ftrain_v1_ReplicaCopyOrder, ReplicaCopyOrder__Output as _ftrain_v1_ReplicaCopyOrder__Output } from '../../ftrain/v1/ReplicaCopyOrder';
import type { ShareSource as _ftrain_v1_ShareSource, ShareSource__Output as _ftrain_v1_ShareSource__Output } from '../../ftrain/v1/ShareSource';
import type { StateSource as _ftrain_v1_StateSource, StateSource__Output as _ftrain_v1_StateSource__Output } from '../../ftrain/v1/StateSource';
import type { Long } from '@grpc/proto-loader';

export interface Assign {
  'stage'?: (number);
  'numStages'?: (number);
  'prevAddress'?: (string);
  'nextAddress'?: (string);
  'job'?: (_ftrain_v1_Job | null);
  'dataSha256'?: (string);
  'epoch'?: (number | string | Long);
  'restoreStep'?: (number | string | Long);
  'plan'?: (_ftrain_v1_ProtectionPlan | null);
  'rebuild'?: (_ftrain_v1_RebuildOrder | null);
  'checkfree'?: (_ftrain_v1_CheckfreeOrder | null);
  'replica'?: (number);
  'replicaAddresses'?: (string)[];
  'replicaCopy'?: (_ftrain_v1_ReplicaCopyOrder | null);
  'guestReplicas'?: (number)[];
  'outReplicas'?: (number)[];
  'shareIndex'?: (number);
  'shareCount'?: (number);
  'shareSources'?: (_ftrain_v1_ShareSource)[];
  'stateSource'?: (_ftrain_v1_StateSource | null);
  'peerNodeIds'?: (string)[];
}

export interface Assign__Output {
  'stage': (number);
  'numStages': (number);
  'prevAddress': (string);
  'nextAddress': (string);
  'job': (_ftrain_v1_Job__Output | null);
  'dataSha256': (string);
  'epoch': (number);
  'restoreStep': (number);
  'plan': (_ftrain_v1_ProtectionPlan__Output | null);
  'rebuild': (_ftrain_v1_RebuildOrder__Output | null);
  'checkfree': (_ftrain_v1_CheckfreeOrder__Output | null);
  'replica': (number);
  'replicaAddresses': (string)[];
  'replicaCopy': (_ftrain_v1_ReplicaCopyOrder__Output | null);
  'guestReplicas': (number)[];
  'outReplicas': (number)[];
  'shareIndex': (number);
  'shareCount': (number);
  'shareSources': (_ftrain_v1_ShareSource__Output)[];
  'stateSource': (_ftrain_v1_StateSource__Output | null);
  'peerNodeIds': (string)[];
}
