// Original file: proto/ftrain.proto


export interface ProtectionStatusReply {
  'statusJson'?: (string);
}

export interface ProtectionStatusReply__Output {
  'statusJson': (string);
}
