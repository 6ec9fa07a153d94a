// Original file: proto/ftrain.proto

import type { Long } from '@grpc/proto-loader';

export interface RegisterRequest {
  'nodeId'?: (string);
  'address'?: (string);
  'pid'?: (number);
  'hostname'?: (string);
  'snapshotStage'?: (number);
  'snapshotSteps'?: (number | string | Long)[];
  'smpAddress'?: (string);
  'smpPid'?: (number);
  'agentPid'?: (number);
  'zone'?: (string);
  'reattach'?: (boolean);
  'joinToken'?: (string);
}

export interface RegisterRequest__Output {
  'nodeId': (string);
  'address': (string);
  'pid': (number);
  'hostname': (string);
  'snapshotStage': (number);
  'snapshotSteps': (number)[];
  'smpAddress': (string);
  'smpPid': (number);
  'agentPid': (number);
  'zone': (string);
  'reattach': (boolean);
  'joinToken': (string);
}
