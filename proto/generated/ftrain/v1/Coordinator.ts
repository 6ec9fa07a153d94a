// Original file: proto/ftrain.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Ack as _ftrain_v1_Ack, Ack__Output as _ftrain_v1_Ack__Output } from '../../ftrain/v1/Ack';
import type { Command as _ftrain_v1_Command, Command__Output as _ftrain_v1_Command__Output } from '../../ftrain/v1/Command';
import type { CommandsRequest as _ftrain_v1_CommandsRequest, CommandsRequest__Output as _ftrain_v1_CommandsRequest__Output } from '../../ftrain/v1/CommandsRequest';
import type { FaultReport as _ftrain_v1_FaultReport, FaultReport__Output as _ftrain_v1_FaultReport__Output } from '../../ftrain/v1/FaultReport';
import type { HaltedReport as _ftrain_v1_HaltedReport, HaltedReport__Output as _ftrain_v1_HaltedReport__Output } from '../../ftrain/v1/HaltedReport';
import type { HeartbeatReply as _ftrain_v1_HeartbeatReply, HeartbeatReply__Output as _ftrain_v1_HeartbeatReply__Output } from '../../ftrain/v1/HeartbeatReply';
import type { HeartbeatRequest as _ftrain_v1_HeartbeatRequest, HeartbeatRequest__Output as _ftrain_v1_HeartbeatRequest__Output } from '../../ftrain/v1/HeartbeatRequest';
import type { InjectionReport as _ftrain_v1_InjectionReport, InjectionReport__Output as _ftrain_v1_InjectionReport__Output } from '../../ftrain/v1/InjectionReport';
import type { LeaveRequest as _ftrain_v1_LeaveRequest, LeaveRequest__Output as _ftrain_v1_LeaveRequest__Output } from '../../ftrain/v1/LeaveRequest';
import type { MemoryReport as _ftrain_v1_MemoryReport, MemoryReport__Output as _ftrain_v1_MemoryReport__Output } from '../../ftrain/v1/MemoryReport';
import type { ProtectionReport as _ftrain_v1_ProtectionReport, ProtectionReport__Output as _ftrain_v1_ProtectionReport__Output } from '../../ftrain/v1/ProtectionReport';
import type { ReadyReport as _ftrain_v1_ReadyReport, ReadyReport__Output as _ftrain_v1_ReadyReport__Output } from '../../ftrain/v1/ReadyReport';
import type { RegisterReply as _ftrain_v1_RegisterReply, RegisterReply__Output as _ftrain_v1_RegisterReply__Output } from '../../ftrain/v1/RegisterReply';
import type { RegisterRequest as _ftrain_v1_RegisterRequest, RegisterRequest__Output as _ftrain_v1_RegisterRequest__Output } from '../../ftrain/v1/RegisterRequest';
import type { StatusReply as _ftrain_v1_StatusReply, StatusReply__Output as _ftrain_v1_StatusReply__Output } from '../../ftrain/v1/StatusReply';
import type { StatusRequest as _ftrain_v1_StatusRequest, StatusRequest__Output as _ftrain_v1_StatusRequest__Output } from '../../ftrain/v1/StatusRequest';
import type { StepReply as _ftrain_v1_StepReply, StepReply__Output as _ftrain_v1_StepReply__Output } from '../../ftrain/v1/StepReply';
import type { StepReport as _ftrain_v1_StepReport, StepReport__Output as _ftrain_v1_StepReport__Output } from '../../ftrain/v1/StepReport';

export interface CoordinatorClient extends grpc.Client {
  Commands(argument: _ftrain_v1_CommandsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_Command__Output>;
  Commands(argument: _ftrain_v1_CommandsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_Command__Output>;
  commands(argument: _ftrain_v1_CommandsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_Command__Output>;
  commands(argument: _ftrain_v1_CommandsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_Command__Output>;
  
  Heartbeat(argument: _ftrain_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _ftrain_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _ftrain_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  Heartbeat(argument: _ftrain_v1_HeartbeatRequest, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _ftrain_v1_HeartbeatRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _ftrain_v1_HeartbeatRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _ftrain_v1_HeartbeatRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  heartbeat(argument: _ftrain_v1_HeartbeatRequest, callback: grpc.requestCallback<_ftrain_v1_HeartbeatReply__Output>): grpc.ClientUnaryCall;
  
  Heartbeats(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply__Output>;
  Heartbeats(options?: grpc.CallOptions): grpc.ClientDuplexStream<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply__Output>;
  heartbeats(metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientDuplexStream<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply__Output>;
  heartbeats(options?: grpc.CallOptions): grpc.ClientDuplexStream<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply__Output>;
  
  Leave(argument: _ftrain_v1_LeaveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  Leave(argument: _ftrain_v1_LeaveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  Leave(argument: _ftrain_v1_LeaveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  Leave(argument: _ftrain_v1_LeaveRequest, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  leave(argument: _ftrain_v1_LeaveRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  leave(argument: _ftrain_v1_LeaveRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  leave(argument: _ftrain_v1_LeaveRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  leave(argument: _ftrain_v1_LeaveRequest, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  
  Register(argument: _ftrain_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _ftrain_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _ftrain_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  Register(argument: _ftrain_v1_RegisterRequest, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _ftrain_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _ftrain_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _ftrain_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  register(argument: _ftrain_v1_RegisterRequest, callback: grpc.requestCallback<_ftrain_v1_RegisterReply__Output>): grpc.ClientUnaryCall;
  
  ReportFault(argument: _ftrain_v1_FaultReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportFault(argument: _ftrain_v1_FaultReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportFault(argument: _ftrain_v1_FaultReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportFault(argument: _ftrain_v1_FaultReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportFault(argument: _ftrain_v1_FaultReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportFault(argument: _ftrain_v1_FaultReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportFault(argument: _ftrain_v1_FaultReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportFault(argument: _ftrain_v1_FaultReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  
  ReportHalted(argument: _ftrain_v1_HaltedReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportHalted(argument: _ftrain_v1_HaltedReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportHalted(argument: _ftrain_v1_HaltedReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportHalted(argument: _ftrain_v1_HaltedReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportHalted(argument: _ftrain_v1_HaltedReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportHalted(argument: _ftrain_v1_HaltedReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportHalted(argument: _ftrain_v1_HaltedReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportHalted(argument: _ftrain_v1_HaltedReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  
  ReportInjection(argument: _ftrain_v1_InjectionReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportInjection(argument: _ftrain_v1_InjectionReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportInjection(argument: _ftrain_v1_InjectionReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportInjection(argument: _ftrain_v1_InjectionReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportInjection(argument: _ftrain_v1_InjectionReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportInjection(argument: _ftrain_v1_InjectionReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportInjection(argument: _ftrain_v1_InjectionReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportInjection(argument: _ftrain_v1_InjectionReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  
  ReportMemory(argument: _ftrain_v1_MemoryReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportMemory(argument: _ftrain_v1_MemoryReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportMemory(argument: _ftrain_v1_MemoryReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportMemory(argument: _ftrain_v1_MemoryReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportMemory(argument: _ftrain_v1_MemoryReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportMemory(argument: _ftrain_v1_MemoryReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportMemory(argument: _ftrain_v1_MemoryReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportMemory(argument: _ftrain_v1_MemoryReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  
  ReportProtection(argument: _ftrain_v1_ProtectionReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportProtection(argument: _ftrain_v1_ProtectionReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportProtection(argument: _ftrain_v1_ProtectionReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportProtection(argument: _ftrain_v1_ProtectionReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportProtection(argument: _ftrain_v1_ProtectionReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportProtection(argument: _ftrain_v1_ProtectionReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportProtection(argument: _ftrain_v1_ProtectionReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportProtection(argument: _ftrain_v1_ProtectionReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  
  ReportReady(argument: _ftrain_v1_ReadyReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportReady(argument: _ftrain_v1_ReadyReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportReady(argument: _ftrain_v1_ReadyReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  ReportReady(argument: _ftrain_v1_ReadyReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportReady(argument: _ftrain_v1_ReadyReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportReady(argument: _ftrain_v1_ReadyReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportReady(argument: _ftrain_v1_ReadyReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  reportReady(argument: _ftrain_v1_ReadyReport, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientUnaryCall;
  
  ReportStep(argument: _ftrain_v1_StepReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportStep(argument: _ftrain_v1_StepReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportStep(argument: _ftrain_v1_StepReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  ReportStep(argument: _ftrain_v1_StepReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportStep(argument: _ftrain_v1_StepReport, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportStep(argument: _ftrain_v1_StepReport, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportStep(argument: _ftrain_v1_StepReport, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  reportStep(argument: _ftrain_v1_StepReport, callback: grpc.requestCallback<_ftrain_v1_StepReply__Output>): grpc.ClientUnaryCall;
  
  Status(argument: _ftrain_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  Status(argument: _ftrain_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  Status(argument: _ftrain_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  Status(argument: _ftrain_v1_StatusRequest, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  status(argument: _ftrain_v1_StatusRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  status(argument: _ftrain_v1_StatusRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  status(argument: _ftrain_v1_StatusRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  status(argument: _ftrain_v1_StatusRequest, callback: grpc.requestCallback<_ftrain_v1_StatusReply__Output>): grpc.ClientUnaryCall;
  
}

export interface CoordinatorHandlers extends grpc.UntypedServiceImplementation {
  Commands: grpc.handleServerStreamingCall<_ftrain_v1_CommandsRequest__Output, _ftrain_v1_Command>;
  
  Heartbeat: grpc.handleUnaryCall<_ftrain_v1_HeartbeatRequest__Output, _ftrain_v1_HeartbeatReply>;
  
  Heartbeats: grpc.handleBidiStreamingCall<_ftrain_v1_HeartbeatRequest__Output, _ftrain_v1_HeartbeatReply>;
  
  Leave: grpc.handleUnaryCall<_ftrain_v1_LeaveRequest__Output, _ftrain_v1_Ack>;
  
  Register: grpc.handleUnaryCall<_ftrain_v1_RegisterRequest__Output, _ftrain_v1_RegisterReply>;
  
  ReportFault: grpc.handleUnaryCall<_ftrain_v1_FaultReport__Output, _ftrain_v1_Ack>;
  
  ReportHalted: grpc.handleUnaryCall<_ftrain_v1_HaltedReport__Output, _ftrain_v1_Ack>;
  
  ReportInjection: grpc.handleUnaryCall<_ftrain_v1_InjectionReport__Output, _ftrain_v1_Ack>;
  
  ReportMemory: grpc.handleUnaryCall<_ftrain_v1_MemoryReport__Output, _ftrain_v1_StepReply>;
  
  ReportProtection: grpc.handleUnaryCall<_ftrain_v1_ProtectionReport__Output, _ftrain_v1_StepReply>;
  
  ReportReady: grpc.handleUnaryCall<_ftrain_v1_ReadyReport__Output, _ftrain_v1_Ack>;
  
  ReportStep: grpc.handleUnaryCall<_ftrain_v1_StepReport__Output, _ftrain_v1_StepReply>;
  
  Status: grpc.handleUnaryCall<_ftrain_v1_StatusRequest__Output, _ftrain_v1_StatusReply>;
  
}

export interface CoordinatorDefinition extends grpc.ServiceDefinition {
  Commands: MethodDefinition<_ftrain_v1_CommandsRequest, _ftrain_v1_Command, _ftrain_v1_CommandsRequest__Output, _ftrain_v1_Command__Output>
  Heartbeat: MethodDefinition<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply, _ftrain_v1_HeartbeatRequest__Output, _ftrain_v1_HeartbeatReply__Output>
  Heartbeats: MethodDefinition<_ftrain_v1_HeartbeatRequest, _ftrain_v1_HeartbeatReply, _ftrain_v1_HeartbeatRequest__Output, _ftrain_v1_HeartbeatReply__Output>
  Leave: MethodDefinition<_ftrain_v1_LeaveRequest, _ftrain_v1_Ack, _ftrain_v1_LeaveRequest__Output, _ftrain_v1_Ack__Output>
  Register: MethodDefinition<_ftrain_v1_RegisterRequest, _ftrain_v1_RegisterReply, _ftrain_v1_RegisterRequest__Output, _ftrain_v1_RegisterReply__Output>
  ReportFault: MethodDefinition<_ftrain_v1_FaultReport, _ftrain_v1_Ack, _ftrain_v1_FaultReport__Output, _ftrain_v1_Ack__Output>
  ReportHalted: MethodDefinition<_ftrain_v1_HaltedReport, _ftrain_v1_Ack, _ftrain_v1_HaltedReport__Output, _ftrain_v1_Ack__Output>
  ReportInjection: MethodDefinition<_ftrain_v1_InjectionReport, _ftrain_v1_Ack, _ftrain_v1_InjectionReport__Output, _ftrain_v1_Ack__Output>
  ReportMemory: MethodDefinition<_ftrain_v1_MemoryReport, _ftrain_v1_StepReply, _ftrain_v1_MemoryReport__Output, _ftrain_v1_StepReply__Output>
  ReportProtection: MethodDefinition<_ftrain_v1_ProtectionReport, _ftrain_v1_StepReply, _ftrain_v1_ProtectionReport__Output, _ftrain_v1_StepReply__Output>
  ReportReady: MethodDefinition<_ftrain_v1_ReadyReport, _ftrain_v1_Ack, _ftrain_v1_ReadyReport__Output, _ftrain_v1_Ack__Output>
  ReportStep: MethodDefinition<_ftrain_v1_StepReport, _ftrain_v1_StepReply, _ftrain_v1_StepReport__Output, _ftrain_v1_StepReply__Output>
  Status: MethodDefinition<_ftrain_v1_StatusRequest, _ftrain_v1_StatusReply, _ftrain_v1_StatusRequest__Output, _ftrain_v1_StatusReply__Output>
}
