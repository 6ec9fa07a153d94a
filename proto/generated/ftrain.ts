import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _ftrain_v1_Ack, Ack__Output as _ftrain_v1_Ack__Output } from './ftrain/v1/Ack';
import type { Assign as _ftrain_v1_Assign, Assign__Output as _ftrain_v1_Assign__Output } from './ftrain/v1/Assign';
import type { Command as _ftrain_v1_Command, Command__Output as _ftrain_v1_Command__Output } from './ftrain/v1/Command';
import type { CommandsRequest as _ftrain_v1_CommandsRequest, CommandsRequest__Output as _ftrain_v1_CommandsRequest__Output } from './ftrain/v1/CommandsRequest';
import type { ConfigureRequest as _ftrain_v1_ConfigureRequest, ConfigureRequest__Output as _ftrain_v1_ConfigureRequest__Output } from './ftrain/v1/ConfigureRequest';
import type { CoordinatorClient as _ftrain_v1_CoordinatorClient, CoordinatorDefinition as _ftrain_v1_CoordinatorDefinition } from './ftrain/v1/Coordinator';
import type { FaultReport as _ftrain_v1_FaultReport, FaultReport__Output as _ftrain_v1_FaultReport__Output } from './ftrain/v1/FaultReport';
import type { FetchShardsRequest as _ftrain_v1_FetchShardsRequest, FetchShardsRequest__Output as _ftrain_v1_FetchShardsRequest__Output } from './ftrain/v1/FetchShardsRequest';
import type { FetchWeightsRequest as _ftrain_v1_FetchWeightsRequest, FetchWeightsRequest__Output as _ftrain_v1_FetchWeightsRequest__Output } from './ftrain/v1/FetchWeightsRequest';
import type { Halt as _ftrain_v1_Halt, Halt__Output as _ftrain_v1_Halt__Output } from './ftrain/v1/Halt';
import type { HaltedReport as _ftrain_v1_HaltedReport, HaltedReport__Output as _ftrain_v1_HaltedReport__Output } from './ftrain/v1/HaltedReport';
import type { HeartbeatReply as _ftrain_v1_HeartbeatReply, HeartbeatReply__Output as _ftrain_v1_HeartbeatReply__Output } from './ftrain/v1/HeartbeatReply';
import type { HeartbeatRequest as _ftrain_v1_HeartbeatRequest, HeartbeatRequest__Output as _ftrain_v1_HeartbeatRequest__Output } from './ftrain/v1/HeartbeatRequest';
import type { Inject as _ftrain_v1_Inject, Inject__Output as _ftrain_v1_Inject__Output } from './ftrain/v1/Inject';
import type { InjectionReport as _ftrain_v1_InjectionReport, InjectionReport__Output as _ftrain_v1_InjectionReport__Output } from './ftrain/v1/InjectionReport';
import type { LeaveRequest as _ftrain_v1_LeaveRequest, LeaveRequest__Output as _ftrain_v1_LeaveRequest__Output } from './ftrain/v1/LeaveRequest';
import type { Limit as _ftrain_v1_Limit, Limit__Output as _ftrain_v1_Limit__Output } from './ftrain/v1/Limit';
import type { PipeChunk as _ftrain_v1_PipeChunk, PipeChunk__Output as _ftrain_v1_PipeChunk__Output } from './ftrain/v1/PipeChunk';
import type { Protect as _ftrain_v1_Protect, Protect__Output as _ftrain_v1_Protect__Output } from './ftrain/v1/Protect';
import type { ProtectionReport as _ftrain_v1_ProtectionReport, ProtectionReport__Output as _ftrain_v1_ProtectionReport__Output } from './ftrain/v1/ProtectionReport';
import type { ProtectionStatusReply as _ftrain_v1_ProtectionStatusReply, ProtectionStatusReply__Output as _ftrain_v1_ProtectionStatusReply__Output } from './ftrain/v1/ProtectionStatusReply';
import type { ReadyReport as _ftrain_v1_ReadyReport, ReadyReport__Output as _ftrain_v1_ReadyReport__Output } from './ftrain/v1/ReadyReport';
import type { RebuildReply as _ftrain_v1_RebuildReply, RebuildReply__Output as _ftrain_v1_RebuildReply__Output } from './ftrain/v1/RebuildReply';
import type { RebuildRequest as _ftrain_v1_RebuildRequest, RebuildRequest__Output as _ftrain_v1_RebuildRequest__Output } from './ftrain/v1/RebuildRequest';
import type { RegisterReply as _ftrain_v1_RegisterReply, RegisterReply__Output as _ftrain_v1_RegisterReply__Output } from './ftrain/v1/RegisterReply';
import type { RegisterRequest as _ftrain_v1_RegisterRequest, RegisterRequest__Output as _ftrain_v1_RegisterRequest__Output } from './ftrain/v1/RegisterRequest';
import type { ShardChunk as _ftrain_v1_ShardChunk, ShardChunk__Output as _ftrain_v1_ShardChunk__Output } from './ftrain/v1/ShardChunk';
import type { SnapshotManagerClient as _ftrain_v1_SnapshotManagerClient, SnapshotManagerDefinition as _ftrain_v1_SnapshotManagerDefinition } from './ftrain/v1/SnapshotManager';
import type { Start as _ftrain_v1_Start, Start__Output as _ftrain_v1_Start__Output } from './ftrain/v1/Start';
import type { StatusReply as _ftrain_v1_StatusReply, StatusReply__Output as _ftrain_v1_StatusReply__Output } from './ftrain/v1/StatusReply';
import type { StatusRequest as _ftrain_v1_StatusRequest, StatusRequest__Output as _ftrain_v1_StatusRequest__Output } from './ftrain/v1/StatusRequest';
import type { StepReply as _ftrain_v1_StepReply, StepReply__Output as _ftrain_v1_StepReply__Output } from './ftrain/v1/StepReply';
import type { StepReport as _ftrain_v1_StepReport, StepReport__Output as _ftrain_v1_StepReport__Output } from './ftrain/v1/StepReport';
import type { Stop as _ftrain_v1_Stop, Stop__Output as _ftrain_v1_Stop__Output } from './ftrain/v1/Stop';
import type { TensorChunk as _ftrain_v1_TensorChunk, TensorChunk__Output as _ftrain_v1_TensorChunk__Output } from './ftrain/v1/TensorChunk';
import type { WorkerClient as _ftrain_v1_WorkerClient, WorkerDefinition as _ftrain_v1_WorkerDefinition } from './ftrain/v1/Worker';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  ftrain: {
    v1: {
      Ack: MessageTypeDefinition<_ftrain_v1_Ack, _ftrain_v1_Ack__Output>
      Assign: MessageTypeDefinition<_ftrain_v1_Assign, _ftrain_v1_Assign__Output>
      Command: MessageTypeDefinition<_ftrain_v1_Command, _ftrain_v1_Command__Output>
      CommandsRequest: MessageTypeDefinition<_ftrain_v1_CommandsRequest, _ftrain_v1_CommandsRequest__Output>
      ConfigureRequest: MessageTypeDefinition<_ftrain_v1_ConfigureRequest, _ftrain_v1_ConfigureRequest__Output>
      Coordinator: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_CoordinatorClient> & { service: _ftrain_v1_CoordinatorDefinition }
      FaultReport: MessageTypeDefinition<_ftrain_v1_FaultReport, _ftrain_v1_FaultReport__Output>
      FetchShardsRequest: MessageTypeDefinition<_ftrain_v1_FetchShardsRequest, _ftrain_v1_FetchShardsRequest__Output>
      FetchWeightsRequest: MessageTypeDefinition<_ftrain_v1_FetchWeightsRequest, _ftrain_v1_FetchWeightsRequest__Output>
      Halt: MessageTypeDefinition<_ftrain_v1_Halt, _ftrain_v1_Halt__Output>
      HaltedReport: MessageTypeDefinition<_ftrain_v1_HaltedReport, _ftrain_v1_HaltedReport__Output>
      HeartbeatReply: MessageTypeDefinition<_ftrain_v1_HeartbeatReply, _ftrain_v1_HeartbeatReply__Output>
      HeartbeatRequest: MessageTypeDefinition<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatRequest__Output>
      Inject: MessageTypeDefinition<_ftrain_v1_Inject, _ftrain_v1_Inject__Output>
      InjectionReport: MessageTypeDefinition<_ftrain_v1_InjectionReport, _ftrain_v1_InjectionReport__Output>
      LeaveRequest: MessageTypeDefinition<_ftrain_v1_LeaveRequest, _ftrain_v1_LeaveRequest__Output>
      Limit: MessageTypeDefinition<_ftrain_v1_Limit, _ftrain_v1_Limit__Output>
      PipeChunk: MessageTypeDefinition<_ftrain_v1_PipeChunk, _ftrain_v1_PipeChunk__Output>
      PipeKind: EnumTypeDefinition
      Protect: MessageTypeDefinition<_ftrain_v1_Protect, _ftrain_v1_Protect__Output>
      ProtectionReport: MessageTypeDefinition<_ftrain_v1_ProtectionReport, _ftrain_v1_ProtectionReport__Output>
      ProtectionStatusReply: MessageTypeDefinition<_ftrain_v1_ProtectionStatusReply, _ftrain_v1_ProtectionStatusReply__Output>
      ReadyReport: MessageTypeDefinition<_ftrain_v1_ReadyReport, _ftrain_v1_ReadyReport__Output>
      RebuildReply: MessageTypeDefinition<_ftrain_v1_RebuildReply, _ftrain_v1_RebuildReply__Output>
      RebuildRequest: MessageTypeDefinition<_ftrain_v1_RebuildRequest, _ftrain_v1_RebuildRequest__Output>
      RegisterReply: MessageTypeDefinition<_ftrain_v1_RegisterReply, _ftrain_v1_RegisterReply__Output>
      RegisterRequest: MessageTypeDefinition<_ftrain_v1_RegisterRequest, _ftrain_v1_RegisterRequest__Output>
      ShardChunk: MessageTypeDefinition<_ftrain_v1_ShardChunk, _ftrain_v1_ShardChunk__Output>
      SnapshotManager: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_SnapshotManagerClient> & { service: _ftrain_v1_SnapshotManagerDefinition }
      Start: MessageTypeDefinition<_ftrain_v1_Start, _ftrain_v1_Start__Output>
      StatusReply: MessageTypeDefinition<_ftrain_v1_StatusReply, _ftrain_v1_StatusReply__Output>
      StatusRequest: MessageTypeDefinition<_ftrain_v1_StatusRequest, _ftrain_v1_StatusRequest__Output>
      StepReply: MessageTypeDefinition<_ftrain_v1_StepReply, _ftrain_v1_StepReply__Output>
      StepReport: MessageTypeDefinition<_ftrain_v1_StepReport, _ftrain_v1_StepReport__Output>
      Stop: MessageTypeDefinition<_ftrain_v1_Stop, _ftrain_v1_Stop__Output>
      TensorChunk: MessageTypeDefinition<_ftrain_v1_TensorChunk, _ftrain_v1_TensorChunk__Output>
      Worker: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_WorkerClient> & { service: _ftrain_v1_WorkerDefinition }
    }
  }
}

