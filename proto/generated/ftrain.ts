import type * as grpc from '@grpc/grpc-js';
import type { EnumTypeDefinition, MessageTypeDefinition } from '@grpc/proto-loader';

import type { Ack as _ftrain_v1_Ack, Ack__Output as _ftrain_v1_Ack__Output } from './ftrain/v1/Ack';
import type { Assign as _ftrain_v1_Assign, Assign__Output as _ftrain_v1_Assign__Output } from './ftrain/v1/Assign';
import type { CheckfreeAverage as _ftrain_v1_CheckfreeAverage, CheckfreeAverage__Output as _ftrain_v1_CheckfreeAverage__Output } from './ftrain/v1/CheckfreeAverage';
import type { CheckfreeCopy as _ftrain_v1_CheckfreeCopy, CheckfreeCopy__Output as _ftrain_v1_CheckfreeCopy__Output } from './ftrain/v1/CheckfreeCopy';
import type { CheckfreeOrder as _ftrain_v1_CheckfreeOrder, CheckfreeOrder__Output as _ftrain_v1_CheckfreeOrder__Output } from './ftrain/v1/CheckfreeOrder';
import type { Command as _ftrain_v1_Command, Command__Output as _ftrain_v1_Command__Output } from './ftrain/v1/Command';
import type { CommandsRequest as _ftrain_v1_CommandsRequest, CommandsRequest__Output as _ftrain_v1_CommandsRequest__Output } from './ftrain/v1/CommandsRequest';
import type { ConfigureRequest as _ftrain_v1_ConfigureRequest, ConfigureRequest__Output as _ftrain_v1_ConfigureRequest__Output } from './ftrain/v1/ConfigureRequest';
import type { CoordinatorClient as _ftrain_v1_CoordinatorClient, CoordinatorDefinition as _ftrain_v1_CoordinatorDefinition } from './ftrain/v1/Coordinator';
import type { ErasureCode as _ftrain_v1_ErasureCode, ErasureCode__Output as _ftrain_v1_ErasureCode__Output } from './ftrain/v1/ErasureCode';
import type { ErasureSetting as _ftrain_v1_ErasureSetting, ErasureSetting__Output as _ftrain_v1_ErasureSetting__Output } from './ftrain/v1/ErasureSetting';
import type { FaultReport as _ftrain_v1_FaultReport, FaultReport__Output as _ftrain_v1_FaultReport__Output } from './ftrain/v1/FaultReport';
import type { FetchShardsRequest as _ftrain_v1_FetchShardsRequest, FetchShardsRequest__Output as _ftrain_v1_FetchShardsRequest__Output } from './ftrain/v1/FetchShardsRequest';
import type { FetchSnapshotRequest as _ftrain_v1_FetchSnapshotRequest, FetchSnapshotRequest__Output as _ftrain_v1_FetchSnapshotRequest__Output } from './ftrain/v1/FetchSnapshotRequest';
import type { FetchStateRequest as _ftrain_v1_FetchStateRequest, FetchStateRequest__Output as _ftrain_v1_FetchStateRequest__Output } from './ftrain/v1/FetchStateRequest';
import type { FetchWeightsRequest as _ftrain_v1_FetchWeightsRequest, FetchWeightsRequest__Output as _ftrain_v1_FetchWeightsRequest__Output } from './ftrain/v1/FetchWeightsRequest';
import type { Halt as _ftrain_v1_Halt, Halt__Output as _ftrain_v1_Halt__Output } from './ftrain/v1/Halt';
import type { HaltedReport as _ftrain_v1_HaltedReport, HaltedReport__Output as _ftrain_v1_HaltedReport__Output } from './ftrain/v1/HaltedReport';
import type { HeartbeatReply as _ftrain_v1_HeartbeatReply, HeartbeatReply__Output as _ftrain_v1_HeartbeatReply__Output } from './ftrain/v1/HeartbeatReply';
import type { HeartbeatRequest as _ftrain_v1_HeartbeatRequest, HeartbeatRequest__Output as _ftrain_v1_HeartbeatRequest__Output } from './ftrain/v1/HeartbeatRequest';
import type { Injection as _ftrain_v1_Injection, Injection__Output as _ftrain_v1_Injection__Output } from './ftrain/v1/Injection';
import type { InjectionReport as _ftrain_v1_InjectionReport, InjectionReport__Output as _ftrain_v1_InjectionReport__Output } from './ftrain/v1/InjectionReport';
import type { Job as _ftrain_v1_Job, Job__Output as _ftrain_v1_Job__Output } from './ftrain/v1/Job';
import type { LeaveRequest as _ftrain_v1_LeaveRequest, LeaveRequest__Output as _ftrain_v1_LeaveRequest__Output } from './ftrain/v1/LeaveRequest';
import type { Limit as _ftrain_v1_Limit, Limit__Output as _ftrain_v1_Limit__Output } from './ftrain/v1/Limit';
import type { MemoryReport as _ftrain_v1_MemoryReport, MemoryReport__Output as _ftrain_v1_MemoryReport__Output } from './ftrain/v1/MemoryReport';
import type { Model as _ftrain_v1_Model, Model__Output as _ftrain_v1_Model__Output } from './ftrain/v1/Model';
import type { NodeSummary as _ftrain_v1_NodeSummary, NodeSummary__Output as _ftrain_v1_NodeSummary__Output } from './ftrain/v1/NodeSummary';
import type { PipeChunk as _ftrain_v1_PipeChunk, PipeChunk__Output as _ftrain_v1_PipeChunk__Output } from './ftrain/v1/PipeChunk';
import type { PlacedNode as _ftrain_v1_PlacedNode, PlacedNode__Output as _ftrain_v1_PlacedNode__Output } from './ftrain/v1/PlacedNode';
import type { ProcessMemory as _ftrain_v1_ProcessMemory, ProcessMemory__Output as _ftrain_v1_ProcessMemory__Output } from './ftrain/v1/ProcessMemory';
import type { Protect as _ftrain_v1_Protect, Protect__Output as _ftrain_v1_Protect__Output } from './ftrain/v1/Protect';
import type { ProtectedVersion as _ftrain_v1_ProtectedVersion, ProtectedVersion__Output as _ftrain_v1_ProtectedVersion__Output } from './ftrain/v1/ProtectedVersion';
import type { ProtectionPlan as _ftrain_v1_ProtectionPlan, ProtectionPlan__Output as _ftrain_v1_ProtectionPlan__Output } from './ftrain/v1/ProtectionPlan';
import type { ProtectionReport as _ftrain_v1_ProtectionReport, ProtectionReport__Output as _ftrain_v1_ProtectionReport__Output } from './ftrain/v1/ProtectionReport';
import type { ProtectionStatus as _ftrain_v1_ProtectionStatus, ProtectionStatus__Output as _ftrain_v1_ProtectionStatus__Output } from './ftrain/v1/ProtectionStatus';
import type { ProtectionStatusReply as _ftrain_v1_ProtectionStatusReply, ProtectionStatusReply__Output as _ftrain_v1_ProtectionStatusReply__Output } from './ftrain/v1/ProtectionStatusReply';
import type { ReadyReport as _ftrain_v1_ReadyReport, ReadyReport__Output as _ftrain_v1_ReadyReport__Output } from './ftrain/v1/ReadyReport';
import type { RebuildOrder as _ftrain_v1_RebuildOrder, RebuildOrder__Output as _ftrain_v1_RebuildOrder__Output } from './ftrain/v1/RebuildOrder';
import type { RebuildReply as _ftrain_v1_RebuildReply, RebuildReply__Output as _ftrain_v1_RebuildReply__Output } from './ftrain/v1/RebuildReply';
import type { RebuildRequest as _ftrain_v1_RebuildRequest, RebuildRequest__Output as _ftrain_v1_RebuildRequest__Output } from './ftrain/v1/RebuildRequest';
import type { RecoveredFailure as _ftrain_v1_RecoveredFailure, RecoveredFailure__Output as _ftrain_v1_RecoveredFailure__Output } from './ftrain/v1/RecoveredFailure';
import type { ReduceChunk as _ftrain_v1_ReduceChunk, ReduceChunk__Output as _ftrain_v1_ReduceChunk__Output } from './ftrain/v1/ReduceChunk';
import type { Refusal as _ftrain_v1_Refusal, Refusal__Output as _ftrain_v1_Refusal__Output } from './ftrain/v1/Refusal';
import type { RegisterReply as _ftrain_v1_RegisterReply, RegisterReply__Output as _ftrain_v1_RegisterReply__Output } from './ftrain/v1/RegisterReply';
import type { RegisterRequest as _ftrain_v1_RegisterRequest, RegisterRequest__Output as _ftrain_v1_RegisterRequest__Output } from './ftrain/v1/RegisterRequest';
import type { ReplicaCopyOrder as _ftrain_v1_ReplicaCopyOrder, ReplicaCopyOrder__Output as _ftrain_v1_ReplicaCopyOrder__Output } from './ftrain/v1/ReplicaCopyOrder';
import type { RestoreTrace as _ftrain_v1_RestoreTrace, RestoreTrace__Output as _ftrain_v1_RestoreTrace__Output } from './ftrain/v1/RestoreTrace';
import type { RunFailure as _ftrain_v1_RunFailure, RunFailure__Output as _ftrain_v1_RunFailure__Output } from './ftrain/v1/RunFailure';
import type { RunSummary as _ftrain_v1_RunSummary, RunSummary__Output as _ftrain_v1_RunSummary__Output } from './ftrain/v1/RunSummary';
import type { ShardChunk as _ftrain_v1_ShardChunk, ShardChunk__Output as _ftrain_v1_ShardChunk__Output } from './ftrain/v1/ShardChunk';
import type { ShardHeader as _ftrain_v1_ShardHeader, ShardHeader__Output as _ftrain_v1_ShardHeader__Output } from './ftrain/v1/ShardHeader';
import type { ShardLayout as _ftrain_v1_ShardLayout, ShardLayout__Output as _ftrain_v1_ShardLayout__Output } from './ftrain/v1/ShardLayout';
import type { ShareSource as _ftrain_v1_ShareSource, ShareSource__Output as _ftrain_v1_ShareSource__Output } from './ftrain/v1/ShareSource';
import type { SnapshotChunk as _ftrain_v1_SnapshotChunk, SnapshotChunk__Output as _ftrain_v1_SnapshotChunk__Output } from './ftrain/v1/SnapshotChunk';
import type { SnapshotHeader as _ftrain_v1_SnapshotHeader, SnapshotHeader__Output as _ftrain_v1_SnapshotHeader__Output } from './ftrain/v1/SnapshotHeader';
import type { SnapshotInterval as _ftrain_v1_SnapshotInterval, SnapshotInterval__Output as _ftrain_v1_SnapshotInterval__Output } from './ftrain/v1/SnapshotInterval';
import type { SnapshotManagerClient as _ftrain_v1_SnapshotManagerClient, SnapshotManagerDefinition as _ftrain_v1_SnapshotManagerDefinition } from './ftrain/v1/SnapshotManager';
import type { SnapshotShare as _ftrain_v1_SnapshotShare, SnapshotShare__Output as _ftrain_v1_SnapshotShare__Output } from './ftrain/v1/SnapshotShare';
import type { StageSource as _ftrain_v1_StageSource, StageSource__Output as _ftrain_v1_StageSource__Output } from './ftrain/v1/StageSource';
import type { Start as _ftrain_v1_Start, Start__Output as _ftrain_v1_Start__Output } from './ftrain/v1/Start';
import type { StateSource as _ftrain_v1_StateSource, StateSource__Output as _ftrain_v1_StateSource__Output } from './ftrain/v1/StateSource';
import type { StatusReply as _ftrain_v1_StatusReply, StatusReply__Output as _ftrain_v1_StatusReply__Output } from './ftrain/v1/StatusReply';
import type { StatusRequest as _ftrain_v1_StatusRequest, StatusRequest__Output as _ftrain_v1_StatusRequest__Output } from './ftrain/v1/StatusRequest';
import type { StepReply as _ftrain_v1_StepReply, StepReply__Output as _ftrain_v1_StepReply__Output } from './ftrain/v1/StepReply';
import type { StepReport as _ftrain_v1_StepReport, StepReport__Output as _ftrain_v1_StepReport__Output } from './ftrain/v1/StepReport';
import type { Stop as _ftrain_v1_Stop, Stop__Output as _ftrain_v1_Stop__Output } from './ftrain/v1/Stop';
import type { TensorChunk as _ftrain_v1_TensorChunk, TensorChunk__Output as _ftrain_v1_TensorChunk__Output } from './ftrain/v1/TensorChunk';
import type { TensorEntry as _ftrain_v1_TensorEntry, TensorEntry__Output as _ftrain_v1_TensorEntry__Output } from './ftrain/v1/TensorEntry';
import type { WorkerClient as _ftrain_v1_WorkerClient, WorkerDefinition as _ftrain_v1_WorkerDefinition } from './ftrain/v1/Worker';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  ftrain: {
    v1: {
      Ack: MessageTypeDefinition<_ftrain_v1_Ack, _ftrain_v1_Ack__Output>
      Assign: MessageTypeDefinition<_ftrain_v1_Assign, _ftrain_v1_Assign__Output>
      Backend: EnumTypeDefinition
      CheckfreeAverage: MessageTypeDefinition<_ftrain_v1_CheckfreeAverage, _ftrain_v1_CheckfreeAverage__Output>
      CheckfreeCopy: MessageTypeDefinition<_ftrain_v1_CheckfreeCopy, _ftrain_v1_CheckfreeCopy__Output>
      CheckfreeOrder: MessageTypeDefinition<_ftrain_v1_CheckfreeOrder, _ftrain_v1_CheckfreeOrder__Output>
      Command: MessageTypeDefinition<_ftrain_v1_Command, _ftrain_v1_Command__Output>
      CommandsRequest: MessageTypeDefinition<_ftrain_v1_CommandsRequest, _ftrain_v1_CommandsRequest__Output>
      ConfigureRequest: MessageTypeDefinition<_ftrain_v1_ConfigureRequest, _ftrain_v1_ConfigureRequest__Output>
      Coordinator: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_CoordinatorClient> & { service: _ftrain_v1_CoordinatorDefinition }
      ErasureCode: MessageTypeDefinition<_ftrain_v1_ErasureCode, _ftrain_v1_ErasureCode__Output>
      ErasureSetting: MessageTypeDefinition<_ftrain_v1_ErasureSetting, _ftrain_v1_ErasureSetting__Output>
      FaultReport: MessageTypeDefinition<_ftrain_v1_FaultReport, _ftrain_v1_FaultReport__Output>
      FetchShardsRequest: MessageTypeDefinition<_ftrain_v1_FetchShardsRequest, _ftrain_v1_FetchShardsRequest__Output>
      FetchSnapshotRequest: MessageTypeDefinition<_ftrain_v1_FetchSnapshotRequest, _ftrain_v1_FetchSnapshotRequest__Output>
      FetchStateRequest: MessageTypeDefinition<_ftrain_v1_FetchStateRequest, _ftrain_v1_FetchStateRequest__Output>
      FetchWeightsRequest: MessageTypeDefinition<_ftrain_v1_FetchWeightsRequest, _ftrain_v1_FetchWeightsRequest__Output>
      Halt: MessageTypeDefinition<_ftrain_v1_Halt, _ftrain_v1_Halt__Output>
      HaltedReport: MessageTypeDefinition<_ftrain_v1_HaltedReport, _ftrain_v1_HaltedReport__Output>
      HeartbeatReply: MessageTypeDefinition<_ftrain_v1_HeartbeatReply, _ftrain_v1_HeartbeatReply__Output>
      HeartbeatRequest: MessageTypeDefinition<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatRequest__Output>
      Injection: MessageTypeDefinition<_ftrain_v1_Injection, _ftrain_v1_Injection__Output>
      InjectionKind: EnumTypeDefinition
      InjectionReport: MessageTypeDefinition<_ftrain_v1_InjectionReport, _ftrain_v1_InjectionReport__Output>
      Job: MessageTypeDefinition<_ftrain_v1_Job, _ftrain_v1_Job__Output>
      LeaveRequest: MessageTypeDefinition<_ftrain_v1_LeaveRequest, _ftrain_v1_LeaveRequest__Output>
      Limit: MessageTypeDefinition<_ftrain_v1_Limit, _ftrain_v1_Limit__Output>
      MemoryReport: MessageTypeDefinition<_ftrain_v1_MemoryReport, _ftrain_v1_MemoryReport__Output>
      Model: MessageTypeDefinition<_ftrain_v1_Model, _ftrain_v1_Model__Output>
      NodeState: EnumTypeDefinition
      NodeSummary: MessageTypeDefinition<_ftrain_v1_NodeSummary, _ftrain_v1_NodeSummary__Output>
      PipeChunk: MessageTypeDefinition<_ftrain_v1_PipeChunk, _ftrain_v1_PipeChunk__Output>
      PipeKind: EnumTypeDefinition
      PlacedNode: MessageTypeDefinition<_ftrain_v1_PlacedNode, _ftrain_v1_PlacedNode__Output>
      ProcessMemory: MessageTypeDefinition<_ftrain_v1_ProcessMemory, _ftrain_v1_ProcessMemory__Output>
      Protect: MessageTypeDefinition<_ftrain_v1_Protect, _ftrain_v1_Protect__Output>
      ProtectedVersion: MessageTypeDefinition<_ftrain_v1_ProtectedVersion, _ftrain_v1_ProtectedVersion__Output>
      ProtectionPlan: MessageTypeDefinition<_ftrain_v1_ProtectionPlan, _ftrain_v1_ProtectionPlan__Output>
      ProtectionReport: MessageTypeDefinition<_ftrain_v1_ProtectionReport, _ftrain_v1_ProtectionReport__Output>
      ProtectionStatus: MessageTypeDefinition<_ftrain_v1_ProtectionStatus, _ftrain_v1_ProtectionStatus__Output>
      ProtectionStatusReply: MessageTypeDefinition<_ftrain_v1_ProtectionStatusReply, _ftrain_v1_ProtectionStatusReply__Output>
      ReadyReport: MessageTypeDefinition<_ftrain_v1_ReadyReport, _ftrain_v1_ReadyReport__Output>
      RebuildOrder: MessageTypeDefinition<_ftrain_v1_RebuildOrder, _ftrain_v1_RebuildOrder__Output>
      RebuildReply: MessageTypeDefinition<_ftrain_v1_RebuildReply, _ftrain_v1_RebuildReply__Output>
      RebuildRequest: MessageTypeDefinition<_ftrain_v1_RebuildRequest, _ftrain_v1_RebuildRequest__Output>
      RecoveredFailure: MessageTypeDefinition<_ftrain_v1_RecoveredFailure, _ftrain_v1_RecoveredFailure__Output>
      RecoveryMethod: EnumTypeDefinition
      RecoveryPolicy: EnumTypeDefinition
      ReduceChunk: MessageTypeDefinition<_ftrain_v1_ReduceChunk, _ftrain_v1_ReduceChunk__Output>
      Refusal: MessageTypeDefinition<_ftrain_v1_Refusal, _ftrain_v1_Refusal__Output>
      RefusalReason: EnumTypeDefinition
      RegisterReply: MessageTypeDefinition<_ftrain_v1_RegisterReply, _ftrain_v1_RegisterReply__Output>
      RegisterRequest: MessageTypeDefinition<_ftrain_v1_RegisterRequest, _ftrain_v1_RegisterRequest__Output>
      ReplicaCopyOrder: MessageTypeDefinition<_ftrain_v1_ReplicaCopyOrder, _ftrain_v1_ReplicaCopyOrder__Output>
      RestoreTrace: MessageTypeDefinition<_ftrain_v1_RestoreTrace, _ftrain_v1_RestoreTrace__Output>
      RunFailure: MessageTypeDefinition<_ftrain_v1_RunFailure, _ftrain_v1_RunFailure__Output>
      RunPhase: EnumTypeDefinition
      RunSummary: MessageTypeDefinition<_ftrain_v1_RunSummary, _ftrain_v1_RunSummary__Output>
      ShardChunk: MessageTypeDefinition<_ftrain_v1_ShardChunk, _ftrain_v1_ShardChunk__Output>
      ShardHeader: MessageTypeDefinition<_ftrain_v1_ShardHeader, _ftrain_v1_ShardHeader__Output>
      ShardLayout: MessageTypeDefinition<_ftrain_v1_ShardLayout, _ftrain_v1_ShardLayout__Output>
      ShareSource: MessageTypeDefinition<_ftrain_v1_ShareSource, _ftrain_v1_ShareSource__Output>
      SnapshotChunk: MessageTypeDefinition<_ftrain_v1_SnapshotChunk, _ftrain_v1_SnapshotChunk__Output>
      SnapshotHeader: MessageTypeDefinition<_ftrain_v1_SnapshotHeader, _ftrain_v1_SnapshotHeader__Output>
      SnapshotInterval: MessageTypeDefinition<_ftrain_v1_SnapshotInterval, _ftrain_v1_SnapshotInterval__Output>
      SnapshotManager: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_SnapshotManagerClient> & { service: _ftrain_v1_SnapshotManagerDefinition }
      SnapshotShare: MessageTypeDefinition<_ftrain_v1_SnapshotShare, _ftrain_v1_SnapshotShare__Output>
      StageSource: MessageTypeDefinition<_ftrain_v1_StageSource, _ftrain_v1_StageSource__Output>
      Start: MessageTypeDefinition<_ftrain_v1_Start, _ftrain_v1_Start__Output>
      StateSource: MessageTypeDefinition<_ftrain_v1_StateSource, _ftrain_v1_StateSource__Output>
      StatusReply: MessageTypeDefinition<_ftrain_v1_StatusReply, _ftrain_v1_StatusReply__Output>
      StatusRequest: MessageTypeDefinition<_ftrain_v1_StatusRequest, _ftrain_v1_StatusRequest__Output>
      StepReply: MessageTypeDefinition<_ftrain_v1_StepReply, _ftrain_v1_StepReply__Output>
      StepReport: MessageTypeDefinition<_ftrain_v1_StepReport, _ftrain_v1_StepReport__Output>
      Stop: MessageTypeDefinition<_ftrain_v1_Stop, _ftrain_v1_Stop__Output>
      TensorChunk: MessageTypeDefinition<_ftrain_v1_TensorChunk, _ftrain_v1_TensorChunk__Output>
      TensorEntry: MessageTypeDefinition<_ftrain_v1_TensorEntry, _ftrain_v1_TensorEntry__Output>
      Worker: SubtypeConstructor<typeof grpc.Client, _ftrain_v1_WorkerClient> & { service: _ftrain_v1_WorkerDefinition }
    }
  }
}

