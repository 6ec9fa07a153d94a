// Original file: proto/ftrain.proto


export interface RebuildRequest {
  'orderJson'?: (string);
}

export interface RebuildRequest__Output {
  'orderJson': (string);
}
