// Original file: proto/ftrain.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Ack as _ftrain_v1_Ack, Ack__Output as _ftrain_v1_Ack__Output } from '../../ftrain/v1/Ack';
import type { ConfigureRequest as _ftrain_v1_ConfigureRequest, ConfigureRequest__Output as _ftrain_v1_ConfigureRequest__Output } from '../../ftrain/v1/ConfigureRequest';
import type { FetchShardsRequest as _ftrain_v1_FetchShardsRequest, FetchShardsRequest__Output as _ftrain_v1_FetchShardsRequest__Output } from '../../ftrain/v1/FetchShardsRequest';
import type { FetchSnapshotRequest as _ftrain_v1_FetchSnapshotRequest, FetchSnapshotRequest__Output as _ftrain_v1_FetchSnapshotRequest__Output } from '../../ftrain/v1/FetchSnapshotRequest';
import type { ProtectionStatusReply as _ftrain_v1_ProtectionStatusReply, ProtectionStatusReply__Output as _ftrain_v1_ProtectionStatusReply__Output } from '../../ftrain/v1/ProtectionStatusReply';
import type { RebuildReply as _ftrain_v1_RebuildReply, RebuildReply__Output as _ftrain_v1_RebuildReply__Output } from '../../ftrain/v1/RebuildReply';
import type { RebuildRequest as _ftrain_v1_RebuildRequest, RebuildRequest__Output as _ftrain_v1_RebuildRequest__Output } from '../../ftrain/v1/RebuildRequest';
import type { ShardChunk as _ftrain_v1_ShardChunk, ShardChunk__Output as _ftrain_v1_ShardChunk__Output } from '../../ftrain/v1/ShardChunk';
import type { SnapshotChunk as _ftrain_v1_SnapshotChunk, SnapshotChunk__Output as _ftrain_v1_SnapshotChunk__Output } from '../../ftrain/v1/SnapshotChunk';

export interface SnapshotManagerClient extends grpc.Client {
  Configure(argument: _ftrain_v1_ConfigureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  Configure(argument: _ftrain_v1_ConfigureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  Configure(argument: _ftrain_v1_ConfigureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  Configure(argument: _ftrain_v1_ConfigureRequest, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  configure(argument: _ftrain_v1_ConfigureRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  configure(argument: _ftrain_v1_ConfigureRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  configure(argument: _ftrain_v1_ConfigureRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  configure(argument: _ftrain_v1_ConfigureRequest, callback: grpc.requestCallback<_ftrain_v1_ProtectionStatusReply__Output>): grpc.ClientUnaryCall;
  
  FetchShards(argument: _ftrain_v1_FetchShardsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_ShardChunk__Output>;
  FetchShards(argument: _ftrain_v1_FetchShardsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_ShardChunk__Output>;
  fetchShards(argument: _ftrain_v1_FetchShardsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_ShardChunk__Output>;
  fetchShards(argument: _ftrain_v1_FetchShardsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_ShardChunk__Output>;
  
  FetchSnapshot(argument: _ftrain_v1_FetchSnapshotRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  FetchSnapshot(argument: _ftrain_v1_FetchSnapshotRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  fetchSnapshot(argument: _ftrain_v1_FetchSnapshotRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  fetchSnapshot(argument: _ftrain_v1_FetchSnapshotRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  
  PutShard(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  PutShard(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  PutShard(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  PutShard(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  putShard(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  putShard(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  putShard(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  putShard(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ShardChunk>;
  
  Rebuild(argument: _ftrain_v1_RebuildRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  Rebuild(argument: _ftrain_v1_RebuildRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  Rebuild(argument: _ftrain_v1_RebuildRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  Rebuild(argument: _ftrain_v1_RebuildRequest, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  rebuild(argument: _ftrain_v1_RebuildRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  rebuild(argument: _ftrain_v1_RebuildRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  rebuild(argument: _ftrain_v1_RebuildRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  rebuild(argument: _ftrain_v1_RebuildRequest, callback: grpc.requestCallback<_ftrain_v1_RebuildReply__Output>): grpc.ClientUnaryCall;
  
}

export interface SnapshotManagerHandlers extends grpc.UntypedServiceImplementation {
  Configure: grpc.handleUnaryCall<_ftrain_v1_ConfigureRequest__Output, _ftrain_v1_ProtectionStatusReply>;
  
  FetchShards: grpc.handleServerStreamingCall<_ftrain_v1_FetchShardsRequest__Output, _ftrain_v1_ShardChunk>;
  
  FetchSnapshot: grpc.handleServerStreamingCall<_ftrain_v1_FetchSnapshotRequest__Output, _ftrain_v1_SnapshotChunk>;
  
  PutShard: grpc.handleClientStreamingCall<_ftrain_v1_ShardChunk__Output, _ftrain_v1_Ack>;
  
  Rebuild: grpc.handleUnaryCall<_ftrain_v1_RebuildRequest__Output, _ftrain_v1_RebuildReply>;
  
}

export interface SnapshotManagerDefinition extends grpc.ServiceDefinition {
  Configure: MethodDefinition<_ftrain_v1_ConfigureRequest, _ftrain_v1_ProtectionStatusReply, _ftrain_v1_ConfigureRequest__Output, _ftrain_v1_ProtectionStatusReply__Output>
  FetchShards: MethodDefinition<_ftrain_v1_FetchShardsRequest, _ftrain_v1_ShardChunk, _ftrain_v1_FetchShardsRequest__Output, _ftrain_v1_ShardChunk__Output>
  FetchSnapshot: MethodDefinition<_ftrain_v1_FetchSnapshotRequest, _ftrain_v1_SnapshotChunk, _ftrain_v1_FetchSnapshotRequest__Output, _ftrain_v1_SnapshotChunk__Output>
  PutShard: MethodDefinition<_ftrain_v1_ShardChunk, _ftrain_v1_Ack, _ftrain_v1_ShardChunk__Output, _ftrain_v1_Ack__Output>
  Rebuild: MethodDefinition<_ftrain_v1_RebuildRequest, _ftrain_v1_RebuildReply, _ftrain_v1_RebuildRequest__Output, _ftrain_v1_RebuildReply__Output>
}
