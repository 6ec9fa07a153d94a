// Original file: proto/ftrain.proto

import type { RefusalReason as _ftrain_v1_RefusalReason, RefusalReason__Output as _ftrain_v1_RefusalReason__Output } from '../../ftrain/v1/RefusalReason';
import type { Long } from '@grpc/proto-loader';

export interface Refusal {
  'reason'?: (_ftrain_v1_RefusalReason);
  'message'?: (string);
  'runEpoch'?: (number | string | Long);
  'givenEpoch'?: (number | string | Long);
  'leaderAddress'?: (string);
  'leaderTerm'?: (number | string | Long);
}

export interface Refusal__Output {
  'reason': (_ftrain_v1_RefusalReason__Output);
  'message': (string);
  'runEpoch': (number);
  'givenEpoch': (number);
  'leaderAddress': (string);
  'leaderTerm': (number);
}
