// Original file: proto/ftrain.proto


export interface StateSource {
  'slot'?: (number);
  'address'?: (string);
}

export interface StateSource__Output {
  'slot': (number);
  'address': (string);
}
