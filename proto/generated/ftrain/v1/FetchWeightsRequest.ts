// Original file: proto/ftrain.proto


export interface FetchWeightsRequest {
  'stage'?: (number);
}

export interface FetchWeightsRequest__Output {
  'stage': (number);
}
