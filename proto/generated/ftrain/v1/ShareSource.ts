// Original file: proto/ftrain.proto


export interface ShareSource {
  'slot'?: (number);
  'smpAddress'?: (string);
}

export interface ShareSource__Output {
  'slot': (number);
  'smpAddress': (string);
}
