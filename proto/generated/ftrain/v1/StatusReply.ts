// Original file: proto/ftrain.proto


export interface StatusReply {
  'nodesJson'?: (string);
  'reportJson'?: (string);
}

export interface StatusReply__Output {
  'nodesJson': (string);
  'reportJson': (string);
}
