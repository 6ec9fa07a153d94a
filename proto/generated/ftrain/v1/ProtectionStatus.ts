// Original file: proto/ftrain.proto

import type { ProtectedVersion as _ftrain_v1_ProtectedVersion, ProtectedVersion__Output as _ftrain_v1_ProtectedVersion__Output } from '../../ftrain/v1/ProtectedVersion';
import type { Long } from '@grpc/proto-loader';

export interface ProtectionStatus {
  'stage'?: (number);
  'versions'?: (_ftrain_v1_ProtectedVersion)[];
  'heldBytes'?: (number | string | Long);
  'heldShards'?: (number);
  'encodeMs'?: (number | string);
  'placeMs'?: (number | string);
  'lastError'?: (string);
}

export interface ProtectionStatus__Output {
  'stage': (number);
  'versions': (_ftrain_v1_ProtectedVersion__Output)[];
  'heldBytes': (number);
  'heldShards': (number);
  'encodeMs': (number);
  'placeMs': (number);
  'lastError': (string);
}
