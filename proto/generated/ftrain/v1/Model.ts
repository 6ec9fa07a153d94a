// Original file: proto/ftrain.proto


export interface Model {
  'seqLen'?: (number);
  'dModel'?: (number);
  'heads'?: (number);
  'layersPerStage'?: (number);
  'ffnMult'?: (number);
}

export interface Model__Output {
  'seqLen': (number);
  'dModel': (number);
  'heads': (number);
  'layersPerStage': (number);
  'ffnMult': (number);
}
