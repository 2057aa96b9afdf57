// Generated protobuf types and gRPC service definitions (capa.v1). Only the edges (bus codecs, gRPC server,
// CLI) import this package; the domain and placement packages never see generated types.
export * from "./gen/capa/v1/billing.js";
export * from "./gen/capa/v1/bus.js";
export * from "./gen/capa/v1/jobs.js";
export * from "./gen/capa/v1/operator.js";
export * from "./gen/capa/v1/services.js";
export * from "./gen/capa/v1/types.js";
