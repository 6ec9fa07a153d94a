// Original file: proto/ftrain.proto

import type { NodeSummary as _ftrain_v1_NodeSummary, NodeSummary__Output as _ftrain_v1_NodeSummary__Output } from '../../ftrain/v1/NodeSummary';
import type { RunSummary as _ftrain_v1_RunSummary, RunSummary__Output as _ftrain_v1_RunSummary__Output } from '../../ftrain/v1/RunSummary';
import type { Long } from '@grpc/proto-loader';

export interface StatusReply {
  'nodes'?: (_ftrain_v1_NodeSummary)[];
  'run'?: (_ftrain_v1_RunSummary | null);
  'term'?: (number | string | Long);
}

export interface StatusReply__Output {
  'nodes': (_ftrain_v1_NodeSummary__Output)[];
  'run': (_ftrain_v1_RunSummary__Output | null);
  'term': (number);
}
