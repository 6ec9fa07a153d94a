// Original file: proto/ftrain.proto


export interface Protect {
  'planJson'?: (string);
}

export interface Protect__Output {
  'planJson': (string);
}
