// Original file: proto/ftrain.proto


export interface ReadyReport {
  'nodeId'?: (string);
  'stage'?: (number);
}

export interface ReadyReport__Output {
  'nodeId': (string);
  'stage': (number);
}
