// Original file: proto/ftrain.proto


export interface ErasureCode {
  'dataShards'?: (number);
  'parityShards'?: (number);
}

export interface ErasureCode__Output {
  'dataShards': (number);
  'parityShards': (number);
}
