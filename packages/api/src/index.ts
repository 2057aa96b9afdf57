// Generated protobuf types and gRPC service definitions (capa.v1). Only the edges (bus codecs, gRPC server,
// CLI) import this package; the domain and placement packages never see generated types.

export * from "./gen/capa/v1/auth.js";
export * from "./gen/capa/v1/billing.js";
export * from "./gen/capa/v1/bus.js";
export * from "./gen/capa/v1/jobs.js";
export * from "./gen/capa/v1/operator.js";
export * from "./gen/capa/v1/schedules.js";
export * from "./gen/capa/v1/services.js";
export * from "./gen/capa/v1/types.js";
export { FILE_DESCRIPTOR_PROTOS } from "./gen/descriptor-set.js";
// google.rpc's error model (the `grpc-status-details-bin` trailer) and the encoded descriptors reflection serves.
export { Any } from "./gen/google/protobuf/any.js";
export { BadRequest, BadRequest_FieldViolation } from "./gen/google/rpc/error_details.js";
export { Status as RpcStatus } from "./gen/google/rpc/status.js";
