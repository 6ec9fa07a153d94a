// Original file: proto/ftrain.proto


export interface FaultReport {
  'nodeId'?: (string);
  'stage'?: (number);
  'message'?: (string);
}

export interface FaultReport__Output {
  'nodeId': (string);
  'stage': (number);
  'message': (string);
}
