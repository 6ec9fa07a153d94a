// Original file: proto/ftrain.proto


export interface CommandsRequest {
  'nodeId'?: (string);
}

export interface CommandsRequest__Output {
  'nodeId': (string);
}
