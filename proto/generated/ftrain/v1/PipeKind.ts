// Original file: proto/ftrain.proto

export const PipeKind = {
  PIPE_KIND_UNSPECIFIED: 'PIPE_KIND_UNSPECIFIED',
  PIPE_KIND_ACTIVATION: 'PIPE_KIND_ACTIVATION',
  PIPE_KIND_GRADIENT: 'PIPE_KIND_GRADIENT',
  PIPE_KIND_EDGE_COPY: 'PIPE_KIND_EDGE_COPY',
} as const;

export type PipeKind =
  | 'PIPE_KIND_UNSPECIFIED'
  | 0
  | 'PIPE_KIND_ACTIVATION'
  | 1
  | 'PIPE_KIND_GRADIENT'
  | 2
  | 'PIPE_KIND_EDGE_COPY'
  | 3

export type PipeKind__Output = typeof PipeKind[keyof typeof PipeKind]
