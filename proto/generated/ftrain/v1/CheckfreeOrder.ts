// Original file: proto/ftrain.proto

import type { CheckfreeAverage as _ftrain_v1_CheckfreeAverage, CheckfreeAverage__Output as _ftrain_v1_CheckfreeAverage__Output } from '../../ftrain/v1/CheckfreeAverage';
import type { CheckfreeCopy as _ftrain_v1_CheckfreeCopy, CheckfreeCopy__Output as _ftrain_v1_CheckfreeCopy__Output } from '../../ftrain/v1/CheckfreeCopy';

export interface CheckfreeOrder {
  'learningRateScale'?: (number | string);
  'average'?: (_ftrain_v1_CheckfreeAverage | null);
  'copy'?: (_ftrain_v1_CheckfreeCopy | null);
  'source'?: "average"|"copy";
}

export interface CheckfreeOrder__Output {
  'learningRateScale': (number);
  'average'?: (_ftrain_v1_CheckfreeAverage__Output | null);
  'copy'?: (_ftrain_v1_CheckfreeCopy__Output | null);
  'source'?: "average"|"copy";
}
