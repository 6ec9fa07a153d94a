// Original file: proto/ftrain.proto


export interface FetchWeightsRequest {
  'stage'?: (number);
  'edgeCopy'?: (boolean);
}

export interface FetchWeightsRequest__Output {
  'stage': (number);
  'edgeCopy': (boolean);
}
