// Original file: proto/ftrain.proto

import type { NodeState as _ftrain_v1_NodeState, NodeState__Output as _ftrain_v1_NodeState__Output } from '../../ftrain/v1/NodeState';

export interface NodeSummary {
  'nodeId'?: (string);
  'state'?: (_ftrain_v1_NodeState);
  'stage'?: (number);
  'pid'?: (number);
  'smpPid'?: (number);
  'agentPid'?: (number);
  'hostname'?: (string);
  'address'?: (string);
  'smpAddress'?: (string);
  'zone'?: (string);
}

export interface NodeSummary__Output {
  'nodeId': (string);
  'state': (_ftrain_v1_NodeState__Output);
  'stage': (number);
  'pid': (number);
  'smpPid': (number);
  'agentPid': (number);
  'hostname': (string);
  'address': (string);
  'smpAddress': (string);
  'zone': (string);
}
