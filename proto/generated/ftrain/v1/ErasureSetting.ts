// Original file: proto/ftrain.proto

import type { ErasureCode as _ftrain_v1_ErasureCode, ErasureCode__Output as _ftrain_v1_ErasureCode__Output } from '../../ftrain/v1/ErasureCode';

export interface ErasureSetting {
  'auto'?: (boolean);
  'off'?: (boolean);
  'code'?: (_ftrain_v1_ErasureCode | null);
  'setting'?: "auto"|"off"|"code";
}

export interface ErasureSetting__Output {
  'auto'?: (boolean);
  'off'?: (boolean);
  'code'?: (_ftrain_v1_ErasureCode__Output | null);
  'setting'?: "auto"|"off"|"code";
}
