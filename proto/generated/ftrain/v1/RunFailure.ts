// Original file: proto/ftrain.proto


export interface RunFailure {
  'nodeId'?: (string);
  'stage'?: (number);
  'detail'?: (string);
  'detectedAtMs'?: (number | string);
}

export interface RunFailure__Output {
  'nodeId': (string);
  'stage': (number);
  'detail': (string);
  'detectedAtMs': (number);
}
