// Original file: proto/ftrain.proto


export interface Stop {
  'reason'?: (string);
  'failed'?: (boolean);
}

export interface Stop__Output {
  'reason': (string);
  'failed': (boolean);
}
