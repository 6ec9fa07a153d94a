// Original file: proto/ftrain.proto


export interface HeartbeatRequest {
  'nodeId'?: (string);
}

export interface HeartbeatRequest__Output {
  'nodeId': (string);
}
