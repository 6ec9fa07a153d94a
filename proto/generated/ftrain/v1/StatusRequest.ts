// Original file: proto/ftrain.proto


export interface StatusRequest {
}

export interface StatusRequest__Output {
}
