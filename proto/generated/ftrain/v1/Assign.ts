// Original file: proto/ftrain.proto


export interface Assign {
  'stage'?: (number);
  'numStages'?: (number);
  'prevAddress'?: (string);
  'nextAddress'?: (string);
  'jobJson'?: (string);
  'dataSha256'?: (string);
}

export interface Assign__Output {
  'stage': (number);
  'numStages': (number);
  'prevAddress': (string);
  'nextAddress': (string);
  'jobJson': (string);
  'dataSha256': (string);
}
