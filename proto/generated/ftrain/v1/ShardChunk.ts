// Original file: proto/ftrain.proto


export interface ShardChunk {
  'headerJson'?: (string);
  'data'?: (Buffer | Uint8Array | string);
}

export interface ShardChunk__Output {
  'headerJson': (string);
  'data': (Buffer);
}
