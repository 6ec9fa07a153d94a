// Original file: proto/ftrain.proto

import type { Backend as _ftrain_v1_Backend, Backend__Output as _ftrain_v1_Backend__Output } from '../../ftrain/v1/Backend';
import type { Model as _ftrain_v1_Model, Model__Output as _ftrain_v1_Model__Output } from '../../ftrain/v1/Model';
import type { Injection as _ftrain_v1_Injection, Injection__Output as _ftrain_v1_Injection__Output } from '../../ftrain/v1/Injection';
import type { ErasureSetting as _ftrain_v1_ErasureSetting, ErasureSetting__Output as _ftrain_v1_ErasureSetting__Output } from '../../ftrain/v1/ErasureSetting';
import type { RecoveryPolicy as _ftrain_v1_RecoveryPolicy, RecoveryPolicy__Output as _ftrain_v1_RecoveryPolicy__Output } from '../../ftrain/v1/RecoveryPolicy';
import type { Long } from '@grpc/proto-loader';

export interface Job {
  'stages'?: (number);
  'steps'?: (number | string | Long);
  'seed'?: (number | string | Long);
  'data'?: (string);
  'backend'?: (_ftrain_v1_Backend);
  'microBatches'?: (number);
  'microBatchSize'?: (number);
  'model'?: (_ftrain_v1_Model | null);
  'learningRate'?: (number | string);
  'beta1'?: (number | string);
  'beta2'?: (number | string);
  'epsilon'?: (number | string);
  'clipNorm'?: (number | string);
  'heartbeatMs'?: (number | string | Long);
  'leaseMs'?: (number | string | Long);
  'dumpGradsDir'?: (string);
  'snapshotEvery'?: (number);
  'injections'?: (_ftrain_v1_Injection)[];
  'recoveryTimeoutMs'?: (number | string | Long);
  'checkpointEvery'?: (number);
  'checkpointDir'?: (string);
  'ec'?: (_ftrain_v1_ErasureSetting | null);
  'spares'?: (number);
  'recovery'?: (_ftrain_v1_RecoveryPolicy);
  'checkfreeLrScale'?: (number | string);
  'replicas'?: (number);
  'replicaCheckEvery'?: (number);
  'onReplicaLoss'?: (string);
  'snapshotShares'?: (string);
  'overlapReduce'?: (string);
}

export interface Job__Output {
  'stages': (number);
  'steps': (number);
  'seed': (number);
  'data': (string);
  'backend': (_ftrain_v1_Backend__Output);
  'microBatches': (number);
  'microBatchSize': (number);
  'model': (_ftrain_v1_Model__Output | null);
  'learningRate': (number);
  'beta1': (number);
  'beta2': (number);
  'epsilon': (number);
  'clipNorm': (number);
  'heartbeatMs': (number);
  'leaseMs': (number);
  'dumpGradsDir': (string);
  'snapshotEvery': (number);
  'injections': (_ftrain_v1_Injection__Output)[];
  'recoveryTimeoutMs': (number);
  'checkpointEvery': (number);
  'checkpointDir': (string);
  'ec': (_ftrain_v1_ErasureSetting__Output | null);
  'spares': (number);
  'recovery': (_ftrain_v1_RecoveryPolicy__Output);
  'checkfreeLrScale': (number);
  'replicas': (number);
  'replicaCheckEvery': (number);
  'onReplicaLoss': (string);
  'snapshotShares': (string);
  'overlapReduce': (string);
}
