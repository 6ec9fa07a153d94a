// Original file: proto/ftrain.proto


export interface StageSource {
  'stage'?: (number);
  'address'?: (string);
}

export interface StageSource__Output {
  'stage': (number);
  'address': (string);
}
