// Original file: proto/ftrain.proto


export interface Ack {
}

export interface Ack__Output {
}
