// Original file: proto/ftrain.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Ack as _ftrain_v1_Ack, Ack__Output as _ftrain_v1_Ack__Output } from '../../ftrain/v1/Ack';
import type { FetchStateRequest as _ftrain_v1_FetchStateRequest, FetchStateRequest__Output as _ftrain_v1_FetchStateRequest__Output } from '../../ftrain/v1/FetchStateRequest';
import type { FetchWeightsRequest as _ftrain_v1_FetchWeightsRequest, FetchWeightsRequest__Output as _ftrain_v1_FetchWeightsRequest__Output } from '../../ftrain/v1/FetchWeightsRequest';
import type { PipeChunk as _ftrain_v1_PipeChunk, PipeChunk__Output as _ftrain_v1_PipeChunk__Output } from '../../ftrain/v1/PipeChunk';
import type { ReduceChunk as _ftrain_v1_ReduceChunk, ReduceChunk__Output as _ftrain_v1_ReduceChunk__Output } from '../../ftrain/v1/ReduceChunk';
import type { SnapshotChunk as _ftrain_v1_SnapshotChunk, SnapshotChunk__Output as _ftrain_v1_SnapshotChunk__Output } from '../../ftrain/v1/SnapshotChunk';
import type { TensorChunk as _ftrain_v1_TensorChunk, TensorChunk__Output as _ftrain_v1_TensorChunk__Output } from '../../ftrain/v1/TensorChunk';

export interface WorkerClient extends grpc.Client {
  AllReduce(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  AllReduce(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  AllReduce(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  AllReduce(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  allReduce(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  allReduce(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  allReduce(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  allReduce(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_ReduceChunk>;
  
  FetchState(argument: _ftrain_v1_FetchStateRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  FetchState(argument: _ftrain_v1_FetchStateRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  fetchState(argument: _ftrain_v1_FetchStateRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  fetchState(argument: _ftrain_v1_FetchStateRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_SnapshotChunk__Output>;
  
  FetchWeights(argument: _ftrain_v1_FetchWeightsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_TensorChunk__Output>;
  FetchWeights(argument: _ftrain_v1_FetchWeightsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_TensorChunk__Output>;
  fetchWeights(argument: _ftrain_v1_FetchWeightsRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_TensorChunk__Output>;
  fetchWeights(argument: _ftrain_v1_FetchWeightsRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_ftrain_v1_TensorChunk__Output>;
  
  KeepEdgeCopy(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  KeepEdgeCopy(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  KeepEdgeCopy(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  KeepEdgeCopy(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  keepEdgeCopy(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  keepEdgeCopy(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  keepEdgeCopy(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  keepEdgeCopy(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  
  Pipe(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  Pipe(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  Pipe(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  Pipe(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  pipe(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  pipe(metadata: grpc.Metadata, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  pipe(options: grpc.CallOptions, callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  pipe(callback: grpc.requestCallback<_ftrain_v1_Ack__Output>): grpc.ClientWritableStream<_ftrain_v1_PipeChunk>;
  
}

export interface WorkerHandlers extends grpc.UntypedServiceImplementation {
  AllReduce: grpc.handleClientStreamingCall<_ftrain_v1_ReduceChunk__Output, _ftrain_v1_Ack>;
  
  FetchState: grpc.handleServerStreamingCall<_ftrain_v1_FetchStateRequest__Output, _ftrain_v1_SnapshotChunk>;
  
  FetchWeights: grpc.handleServerStreamingCall<_ftrain_v1_FetchWeightsRequest__Output, _ftrain_v1_TensorChunk>;
  
  KeepEdgeCopy: grpc.handleClientStreamingCall<_ftrain_v1_PipeChunk__Output, _ftrain_v1_Ack>;
  
  Pipe: grpc.handleClientStreamingCall<_ftrain_v1_PipeChunk__Output, _ftrain_v1_Ack>;
  
}

export interface WorkerDefinition extends grpc.ServiceDefinition {
  AllReduce: MethodDefinition<_ftrain_v1_ReduceChunk, _ftrain_v1_Ack, _ftrain_v1_ReduceChunk__Output, _ftrain_v1_Ack__Output>
  FetchState: MethodDefinition<_ftrain_v1_FetchStateRequest, _ftrain_v1_SnapshotChunk, _ftrain_v1_FetchStateRequest__Output, _ftrain_v1_SnapshotChunk__Output>
  FetchWeights: MethodDefinition<_ftrain_v1_FetchWeightsRequest, _ftrain_v1_TensorChunk, _ftrain_v1_FetchWeightsRequest__Output, _ftrain_v1_TensorChunk__Output>
  KeepEdgeCopy: MethodDefinition<_ftrain_v1_PipeChunk, _ftrain_v1_Ack, _ftrain_v1_PipeChunk__Output, _ftrain_v1_Ack__Output>
  Pipe: MethodDefinition<_ftrain_v1_PipeChunk, _ftrain_v1_Ack, _ftrain_v1_PipeChunk__Output, _ftrain_v1_Ack__Output>
}
