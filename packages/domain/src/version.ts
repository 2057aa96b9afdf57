/** capa's release version (the root package.json's, checked by a test) and the gRPC API version it serves. */
export const CAPA_VERSION = "0.1.0";
export const API_VERSION = "capa.v1";
