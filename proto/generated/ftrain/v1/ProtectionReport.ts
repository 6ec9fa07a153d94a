// Original file: proto/ftrain.proto


export interface ProtectionReport {
  'nodeId'?: (string);
  'statusJson'?: (string);
}

export interface ProtectionReport__Output {
  'nodeId': (string);
  'statusJson': (string);
}
