// Original file: proto/ftrain.proto

import type { Assign as _ftrain_v1_Assign, Assign__Output as _ftrain_v1_Assign__Output } from '../../ftrain/v1/Assign';
import type { Start as _ftrain_v1_Start, Start__Output as _ftrain_v1_Start__Output } from '../../ftrain/v1/Start';
import type { Stop as _ftrain_v1_Stop, Stop__Output as _ftrain_v1_Stop__Output } from '../../ftrain/v1/Stop';
import type { Limit as _ftrain_v1_Limit, Limit__Output as _ftrain_v1_Limit__Output } from '../../ftrain/v1/Limit';
import type { Halt as _ftrain_v1_Halt, Halt__Output as _ftrain_v1_Halt__Output } from '../../ftrain/v1/Halt';
import type { Protect as _ftrain_v1_Protect, Protect__Output as _ftrain_v1_Protect__Output } from '../../ftrain/v1/Protect';
import type { Long } from '@grpc/proto-loader';

export interface Command {
  'assign'?: (_ftrain_v1_Assign | null);
  'start'?: (_ftrain_v1_Start | null);
  'stop'?: (_ftrain_v1_Stop | null);
  'limit'?: (_ftrain_v1_Limit | null);
  'halt'?: (_ftrain_v1_Halt | null);
  'protect'?: (_ftrain_v1_Protect | null);
  'term'?: (number | string | Long);
  'kind'?: "assign"|"start"|"stop"|"limit"|"halt"|"protect";
}

export interface Command__Output {
  'assign'?: (_ftrain_v1_Assign__Output | null);
  'start'?: (_ftrain_v1_Start__Output | null);
  'stop'?: (_ftrain_v1_Stop__Output | null);
  'limit'?: (_ftrain_v1_Limit__Output | null);
  'halt'?: (_ftrain_v1_Halt__Output | null);
  'protect'?: (_ftrain_v1_Protect__Output | null);
  'term': (number);
  'kind'?: "assign"|"start"|"stop"|"limit"|"halt"|"protect";
}
