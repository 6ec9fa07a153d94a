// Original file: proto/ftrain.proto


export interface RegisterRequest {
  'nodeId'?: (string);
  'address'?: (string);
  'pid'?: (number);
  'hostname'?: (string);
}

export interface RegisterRequest__Output {
  'nodeId': (string);
  'address': (string);
  'pid': (number);
  'hostname': (string);
}
