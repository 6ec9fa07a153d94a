// Original file: proto/ftrain.proto


export interface PlacedNode {
  'nodeId'?: (string);
  'address'?: (string);
}

export interface PlacedNode__Output {
  'nodeId': (string);
  'address': (string);
}
